// /docs (Swagger UI) and /redoc in headless Chromium against a real `herald serve`: the webhook
// and its body schema are shown, and no request leaves the server's own origin.
//
// Needs HERALD_BIN (the built binary) and Chromium at /usr/bin/chromium; screenshots go to
// SCREENSHOT_DIR (default ../../target/screenshots).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { startHerald, launchBrowser, screenshotDir } from './support.mjs';

let server;
let browser;

before(async () => {
  server = await startHerald();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  server?.stop();
});

/** A page that records every request and every console error or page error. */
async function openPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1600 } });
  const page = await context.newPage();
  const requests = [];
  const errors = [];
  page.on('request', (request) => requests.push(request.url()));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(String(error)));
  return { page, requests, errors };
}

function assertAllLocal(requests) {
  const origin = new URL(server.url).origin;
  const foreign = requests.filter(
    (url) => !url.startsWith(origin + '/') && !url.startsWith('data:') && !url.startsWith('blob:'),
  );
  assert.deepEqual(foreign, [], 'every request stays on the server');
  assert.ok(requests.length > 0);
}

test('Swagger UI at /docs shows the webhook with its body schema expanded', async () => {
  const { page, requests, errors } = await openPage();
  await page.goto(`${server.url}/docs`);

  const route = page.locator('.opblock-summary-path', { hasText: '/users/' });
  await route.first().waitFor({ timeout: 15000 });
  const webhooks = page.locator('.webhooks h2', { hasText: /^Webhooks$/ });
  await webhooks.waitFor({ timeout: 15000 });

  const webhook = page.locator('.opblock-post', { hasText: 'new-subscription' });
  await webhook.waitFor();
  await webhook.locator('.opblock-summary').click();
  const body = webhook.locator('.opblock-section-request-body');
  await body.waitFor();
  // Swagger UI renders 3.1 schemas with its JSON Schema 2020-12 components; the Schema tab is
  // the default (defaultModelRendering: "model") and expanded, showing every property.
  const schema = body.locator('.json-schema-2020-12[data-json-schema-level="0"]');
  await schema.locator('.json-schema-2020-12__title', { hasText: 'Subscription' }).first().waitFor();
  assert.equal(await schema.locator('.json-schema-2020-12-accordion').first().getAttribute('aria-expanded'), 'true');
  for (const property of ['username', 'monthly_fee', 'start_date']) {
    await schema
      .locator('.json-schema-2020-12-property--required .json-schema-2020-12__title', { hasText: property })
      .first()
      .waitFor({ timeout: 5000 });
  }
  assert.match(await body.innerText(), /start_date[\s\S]*date-time/);
  assert.match(await webhook.innerText(), /When a new user subscribes to your service/);

  mkdirSync(screenshotDir(), { recursive: true });
  await page.screenshot({ path: `${screenshotDir()}/docs.png`, fullPage: true });
  assertAllLocal(requests);
  assert.deepEqual(errors, [], 'no console errors (a CSP violation would be one)');
});

test('Swagger UI shows each version of a versioned webhook with its own body', async () => {
  const { page, requests, errors } = await openPage();
  await page.goto(`${server.url}/docs`);
  await page.locator('.webhooks h2', { hasText: /^Webhooks$/ }).waitFor({ timeout: 15000 });
  for (const [key, schema, property] of [
    ['subscription-renewed@2026-01-01', 'Renewal', 'monthly_fee'],
    ['subscription-renewed', 'RenewalV2', 'fee'],
  ]) {
    const webhook = page.locator('.opblock-post').filter({
      has: page.locator('.opblock-summary-path', { hasText: new RegExp(`^${key.replace('.', '\\.')}$`) }),
    });
    await webhook.waitFor();
    await webhook.locator('.opblock-summary').click();
    const body = webhook.locator('.opblock-section-request-body .json-schema-2020-12[data-json-schema-level="0"]');
    await body.locator('.json-schema-2020-12__title', { hasText: new RegExp(`^${schema}$`) }).first().waitFor();
    await body.locator('.json-schema-2020-12__title', { hasText: new RegExp(`^${property}$`) }).first().waitFor();
    assert.match(await webhook.innerText(), /herald-event-version/);
  }
  assertAllLocal(requests);
  assert.deepEqual(errors, []);
});

test('Redoc at /redoc shows the webhook and its body schema', async () => {
  const { page, requests, errors } = await openPage();
  await page.goto(`${server.url}/redoc`);

  // Redoc lists webhooks in the menu with an "event" badge and titles them "… Webhook".
  const menuItem = page.locator('[role=menuitem]', { hasText: 'New Subscription' });
  await menuItem.waitFor({ timeout: 20000 });
  assert.match(await menuItem.innerText(), /event/i);
  await menuItem.click();

  const operation = page.locator('[data-section-id="operation/new_subscription"]');
  await operation.waitFor();
  await operation.locator('h2', { hasText: 'New Subscription Webhook' }).waitFor();
  const text = await operation.innerText();
  assert.match(text, /When a new user subscribes to your service/);
  assert.match(text, /Request Body schema: application\/json/i);
  for (const property of ['username', 'monthly_fee', 'start_date']) {
    assert.match(text, new RegExp(property));
  }
  assert.match(text, /date-time/);

  mkdirSync(screenshotDir(), { recursive: true });
  await page.screenshot({ path: `${screenshotDir()}/redoc.png`, fullPage: false });
  assertAllLocal(requests);
  assert.deepEqual(errors, [], 'no console errors (a CSP violation would be one)');
});

test("herald's own API has its own Swagger UI at /api/v1/docs, and Try it out calls it", async () => {
  const { page, requests, errors } = await openPage();
  await page.goto(`${server.url}/api/v1/docs`);

  const create = page.locator('.opblock-post', { hasText: '/api/v1/tenants' }).first();
  await create.waitFor({ timeout: 15000 });
  // The app's routes are in the app's document, not here.
  assert.equal(await page.locator('.opblock-summary-path', { hasText: '/users/' }).count(), 0);

  // Authorize with the admin token, then list tenants from the page.
  await page.locator('.btn.authorize').first().click();
  await page.locator('.modal-ux input[type=text], .modal-ux input[type=password]').first()
    .fill('browser-test-token');
  await page.locator('.modal-ux .btn.modal-btn.auth.authorize').click();
  await page.locator('.modal-ux .btn-done').click();
  const list = page.locator('.opblock-get', { hasText: '/api/v1/tenants' }).filter({ hasNotText: '{tenant}' }).first();
  await list.locator('.opblock-summary').click();
  await list.locator('.try-out__btn').click();
  const answered = page.waitForResponse((r) => r.url().startsWith(`${server.url}/api/v1/tenants`));
  await list.locator('.execute').click();
  assert.equal((await answered).status(), 200);

  mkdirSync(screenshotDir(), { recursive: true });
  await page.screenshot({ path: `${screenshotDir()}/api-docs.png`, fullPage: false });
  assertAllLocal(requests);
  assert.deepEqual(errors, [], 'no console errors (a CSP violation would be one)');
});
