// Validates AsyncAPI documents with the AsyncAPI project's own parser: `node
// validate-asyncapi.mjs FILE...`. An error or a warning fails the run; information and hints
// are printed.
import { readFile } from 'node:fs/promises';
import { Parser, DiagnosticSeverity } from '@asyncapi/parser';

const parser = new Parser();
let failed = false;
for (const file of process.argv.slice(2)) {
  const { document, diagnostics } = await parser.parse(await readFile(file, 'utf8'));
  for (const d of diagnostics) {
    const severity = ['error', 'warning', 'information', 'hint'][d.severity];
    console.log(`${file}: ${severity} ${d.code} at /${d.path.join('/')}: ${d.message}`);
    if (d.severity <= DiagnosticSeverity.Warning) failed = true;
  }
  if (!document) failed = true;
  else console.log(`${file}: AsyncAPI ${document.version()}, ` +
    `${document.channels().length} channels, ${document.operations().length} operations`);
}
process.exit(failed ? 1 : 0);
