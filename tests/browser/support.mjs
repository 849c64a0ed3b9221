// Shared by the browser tests: start `herald serve` on a free port, launch Chromium.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));

export function screenshotDir() {
  return process.env.SCREENSHOT_DIR ?? path.join(here, '..', '..', 'target', 'screenshots');
}

/** Starts `herald serve --addr 127.0.0.1:0` and resolves once it prints its address. */
export function startHerald(args = []) {
  const bin = process.env.HERALD_BIN ?? path.join(here, '..', '..', 'target', 'release', 'herald');
  const database = `sqlite://${mkdtempSync(path.join(tmpdir(), 'herald-browser-'))}/herald.db`;
  const child = spawn(bin, ['serve', '--addr', '127.0.0.1:0', '--database-url', database, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, HERALD_ADMIN_TOKEN: process.env.HERALD_ADMIN_TOKEN ?? 'browser-test-token' },
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`${bin} printed no address within 30 s`));
    }, 30000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${bin} exited early with ${code}`));
    });
    createInterface({ input: child.stdout }).on('line', (line) => {
      const match = line.match(/^herald listening on (\S+)/);
      if (match) {
        clearTimeout(timer);
        resolve({ url: match[1], stop: () => child.kill('SIGTERM') });
      }
    });
  });
}

export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
