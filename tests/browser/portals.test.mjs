// The portals in a real browser against the real server: vendor login and provisioning,
// the package on the tenant's dashboard, live updates without reload, API keys, and a
// wrong password. Every wait is for a condition; no test sleeps.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, startBrowser, call, expectCall, borrow, screenshot, watchConsole,
} from './harness.mjs';

const VENDOR = 'toolco';
const VENDOR_PASSWORD = 'vendor-portal-pass-1';
const TENANT = 'acme';
const ADMIN_USER = 'alice';
const ADMIN_PASSWORD = 'alice-password-1';
const TOOL = 'Compiler Pro';
const SECOND_TOOL = 'Bus Analyser';

describe('permetrix portals', () => {
  let server;
  let browser;
  let signingSecret;
  let tenantAdminKey;
  let vendorPage;
  let tenantPage;
  const problems = [];

  before(async () => {
    server = await startServer();
    browser = await startBrowser();
    const vendor = await expectCall(201, server, 'POST', 'localhost', '/api/admin/vendors', {
      token: server.adminToken,
      json: { vendor_id: VENDOR, vendor_name: 'ToolCo GmbH', password: VENDOR_PASSWORD },
    });
    signingSecret = vendor.signing_secret;
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test('the landing page links to the vendor portal', async () => {
    const page = await browser.context.newPage();
    watchConsole(page, problems);
    await page.goto(server.url('localhost') + '/');
    await page.getByRole('heading', { name: 'Floating licenses for engineering tools' }).waitFor();
    const href = await page.getByRole('link', { name: 'Open the vendor portal' }).getAttribute('href');
    assert.equal(href, `//vendor.localhost:${server.port}/`);
    await screenshot(page, 'landing');
    await page.close();
  });

  test('a wrong password shows a readable error and no session', async () => {
    const page = await browser.context.newPage();
    watchConsole(page, problems);
    await page.goto(server.url('vendor.localhost') + '/');
    // No session: the portal sends the browser to its login page.
    await page.waitForURL('**/login');
    // Keyboard only: the user name has the focus, Tab moves on, Enter submits.
    await page.waitForFunction(() => document.activeElement?.id === 'username');
    await page.keyboard.type(VENDOR);
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'password');
    await page.keyboard.type('not-the-password');
    await page.keyboard.press('Enter');
    const alert = page.locator('#login-error');
    await alert.waitFor({ state: 'visible' });
    assert.match(await alert.textContent(), /username or password is wrong/i);
    assert.ok(page.url().endsWith('/login'));
    await screenshot(page, 'login-error');
    await page.close();
  });

  test('the vendor logs in, adds a customer and provisions a package', async () => {
    vendorPage = await browser.context.newPage();
    watchConsole(vendorPage, problems);
    await vendorPage.goto(server.url('vendor.localhost') + '/login');
    await vendorPage.getByLabel('User name').fill(VENDOR);
    await vendorPage.getByLabel('Password').fill(VENDOR_PASSWORD);
    await vendorPage.getByRole('button', { name: 'Sign in' }).click();
    await vendorPage.getByRole('heading', { name: 'Customers' }).waitFor();
    await vendorPage.getByText('No customers yet').waitFor();

    await vendorPage.getByLabel('Tenant id').fill(TENANT);
    await vendorPage.getByLabel('Company name').fill('ACME Automotive');
    await vendorPage.getByRole('button', { name: 'Add customer' }).click();
    const secret = vendorPage.locator('#new-customer-secret code');
    await secret.waitFor({ state: 'visible' });
    tenantAdminKey = (await secret.textContent()).trim();
    assert.match(tenantAdminKey, /^pmx_t_acme_/);
    await vendorPage.locator('.customer[data-tenant="acme"]').waitFor();

    await vendorPage.getByLabel('Customer', { exact: true }).selectOption(TENANT);
    await vendorPage.getByLabel('Product id').fill('cc-pro');
    await vendorPage.getByLabel('Product name').fill(TOOL);
    await vendorPage.getByLabel('Commit seats').fill('2');
    await vendorPage.getByLabel('Max overage seats').fill('1');
    assert.equal(await vendorPage.locator('#p-total').textContent(), '3');
    await vendorPage.getByLabel('Overage price per license').fill('12.5');
    await vendorPage.getByRole('button', { name: 'Provision' }).click();
    const row = vendorPage.locator(`.customer[data-tenant="acme"] tr[data-product="${TOOL}"]`);
    await row.waitFor();
    assert.match(await row.textContent(), /0 in use · 2 commit · 3 total/);
    // A second product for the same customer (the form keeps the chosen customer).
    assert.equal(await vendorPage.getByLabel('Customer', { exact: true }).inputValue(), TENANT);
    await vendorPage.getByLabel('Product id').fill('bus-an');
    await vendorPage.getByLabel('Product name').fill(SECOND_TOOL);
    await vendorPage.getByLabel('Commit seats').fill('4');
    await vendorPage.getByLabel('Max overage seats').fill('2');
    await vendorPage.getByRole('button', { name: 'Provision' }).click();
    await vendorPage.locator(`.customer[data-tenant="acme"] tr[data-product="${SECOND_TOOL}"]`).waitFor();

    // The customer's own host names: saved (folded and sorted), routed at once, and a
    // platform host refused with a readable error.
    const card = vendorPage.locator('.customer[data-tenant="acme"]');
    await vendorPage.getByLabel('Custom hosts of ACME Automotive').fill('LM.acme.example, licenses.acme.example');
    await card.getByRole('button', { name: 'Save hosts' }).click();
    await vendorPage.waitForFunction(() => document.querySelector(
      '.customer[data-tenant="acme"] input[name="custom_hosts"]',
    )?.value === 'licenses.acme.example, lm.acme.example');
    await expectCall(200, server, 'GET', 'licenses.acme.example', '/licenses/status', {
      token: tenantAdminKey,
    });
    await vendorPage.getByLabel('Custom hosts of ACME Automotive').fill('vendor.localhost');
    await card.getByRole('button', { name: 'Save hosts' }).click();
    const hostsError = card.locator('.hosts [role="alert"]');
    await hostsError.waitFor({ state: 'visible' });
    assert.match(await hostsError.textContent(), /platform's own hosts/);

    // An API error comes back as its readable detail.
    await vendorPage.getByLabel('Tenant id').fill(TENANT);
    await vendorPage.getByLabel('Company name').fill('ACME again');
    await vendorPage.getByRole('button', { name: 'Add customer' }).click();
    const addError = vendorPage.locator('#add-customer [role="alert"]');
    await addError.waitFor({ state: 'visible' });
    assert.ok((await addError.textContent()).length > 10);
    await vendorPage.getByLabel('Tenant id').fill('');
    await vendorPage.getByLabel('Company name').fill('');
  });

  test('the package is on the tenant dashboard', async () => {
    await expectCall(201, server, 'POST', `${TENANT}.localhost`, '/api/users', {
      token: tenantAdminKey,
      json: { username: ADMIN_USER, password: ADMIN_PASSWORD, role: 'admin' },
    });
    tenantPage = await browser.context.newPage();
    watchConsole(tenantPage, problems);
    await tenantPage.goto(server.url(`${TENANT}.localhost`) + '/');
    await tenantPage.waitForURL('**/login');
    await tenantPage.getByLabel('User name').fill(ADMIN_USER);
    await tenantPage.getByLabel('Password').fill(ADMIN_PASSWORD);
    await tenantPage.getByRole('button', { name: 'Sign in' }).click();
    const gauge = tenantPage.locator(`.gauge[data-tool="${TOOL}"]`);
    await gauge.waitFor();
    const meter = gauge.getByRole('meter');
    assert.equal(await meter.getAttribute('aria-valuemax'), '3');
    assert.equal(await meter.getAttribute('aria-valuenow'), '0');
    await tenantPage.locator('#live-state[data-state="live"]').waitFor();
  });

  test('a borrow through the API shows up live, without a reload', async () => {
    // A marker that a reload would wipe.
    await tenantPage.evaluate(() => { window.__sameDocument = true; });
    await borrow(server, TENANT, {
      key: tenantAdminKey, tool: SECOND_TOOL, user: 'hil-rig-2', secret: signingSecret, vendorId: VENDOR,
    });
    await tenantPage.waitForFunction(
      (tool) => document.querySelector(`.gauge[data-tool="${tool}"]`)?.dataset.borrowed === '1', SECOND_TOOL);
    const lease = await borrow(server, TENANT, {
      key: tenantAdminKey, tool: TOOL, user: 'build-agent-7', secret: signingSecret, vendorId: VENDOR,
    });
    const gauge = tenantPage.locator(`.gauge[data-tool="${TOOL}"]`);
    await tenantPage.waitForFunction(
      (tool) => document.querySelector(`.gauge[data-tool="${tool}"]`)?.dataset.borrowed === '1', TOOL);
    await tenantPage.locator(`#borrows tr[data-borrow="${lease.id}"]`).waitFor();
    await tenantPage.locator('#activity li.borrow', { hasText: 'build-agent-7' }).waitFor();
    assert.equal(await gauge.getByRole('meter').getAttribute('aria-valuenow'), '1');

    // Two more: the third is an overage seat.
    for (const user of ['build-agent-8', 'build-agent-9']) {
      await borrow(server, TENANT, { key: tenantAdminKey, tool: TOOL, user, secret: signingSecret, vendorId: VENDOR });
    }
    await tenantPage.waitForFunction(
      (tool) => document.querySelector(`.gauge[data-tool="${tool}"]`)?.dataset.borrowed === '3', TOOL);
    assert.equal(await gauge.locator('[data-f="overage"]').textContent(), '1');

    // The pool is full: the next borrow waits, and the dashboard's queue shows it.
    const waiting = borrow(server, TENANT, {
      key: tenantAdminKey, tool: TOOL, user: 'build-agent-10', secret: signingSecret, vendorId: VENDOR,
      waitSeconds: 60,
    });
    await tenantPage.locator('#queue tbody tr', { hasText: 'build-agent-10' }).waitFor();
    await tenantPage.locator('#activity li.queued', { hasText: 'build-agent-10' }).waitFor();
    await screenshot(tenantPage, 'tenant-dashboard');

    // Returned through the API: the seat goes to the waiter, and the dashboard follows.
    await expectCall(200, server, 'POST', `${TENANT}.localhost`, '/licenses/return', { json: { id: lease.id } });
    await tenantPage.locator('#activity li.return', { hasText: 'build-agent-7' }).waitFor();
    await tenantPage.locator('#activity li.borrow', { hasText: 'build-agent-10' }).waitFor();
    await tenantPage.locator('#queue tbody tr').waitFor({ state: 'detached' });
    await tenantPage.locator(`#borrows tr[data-borrow="${lease.id}"]`).waitFor({ state: 'detached' });
    assert.equal((await waiting).user, 'build-agent-10');

    // An admin forces a return from the dashboard (two clicks: arm, confirm).
    const row = tenantPage.locator('#borrows tbody tr', { hasText: 'build-agent-8' });
    const force = row.getByRole('button', { name: /Force return/ });
    await force.click();
    await row.getByRole('button', { name: 'Confirm return' }).click();
    await tenantPage.waitForFunction(
      (tool) => document.querySelector(`.gauge[data-tool="${tool}"]`)?.dataset.borrowed === '2', TOOL);
    await row.waitFor({ state: 'detached' });
    assert.equal(await tenantPage.evaluate(() => window.__sameDocument), true, 'the page was not reloaded');
  });

  test('an admin creates a key, sees its secret once, and revokes it', async () => {
    await tenantPage.getByLabel('Name', { exact: true }).fill('farm-east');
    await tenantPage.getByLabel('Scope').selectOption('borrow');
    await tenantPage.getByRole('button', { name: 'Create key' }).click();
    const secret = tenantPage.locator('#new-key code');
    await secret.waitFor({ state: 'visible' });
    const key = (await secret.textContent()).trim();
    assert.match(key, /^pmx_t_acme_/);
    const row = tenantPage.locator('#keys tbody tr', { hasText: 'farm-east' });
    await row.waitFor();
    // The listing never shows the secret.
    assert.ok(!(await tenantPage.locator('#keys').textContent()).includes(key));
    await expectCall(200, server, 'GET', `${TENANT}.localhost`, '/licenses/status', { token: key });

    await tenantPage.locator('#new-key').getByRole('button', { name: 'I have saved it' }).click();
    await secret.waitFor({ state: 'hidden' });

    await row.getByRole('button', { name: 'Revoke key farm-east' }).click();
    await row.getByRole('button', { name: 'Confirm revoke' }).click();
    await row.waitFor({ state: 'detached' });
    const refused = await call(server, 'GET', `${TENANT}.localhost`, '/licenses/status', { token: key });
    assert.equal(refused.status, 401);
  });

  test('the vendor portal shows the live usage and the usage report', async () => {
    await vendorPage.getByRole('button', { name: 'Refresh' }).click();
    const row = vendorPage.locator(`.customer[data-tenant="acme"] tr[data-product="${TOOL}"]`);
    await row.filter({ hasText: '2 in use · 2 commit · 3 total' }).waitFor();
    await vendorPage.getByRole('button', { name: 'Show' }).click();
    await vendorPage.locator('#usage-table tbody tr', { hasText: TOOL }).waitFor();
    await vendorPage.locator('#usage-chart canvas').waitFor();
    const csv = await vendorPage.locator('#usage-csv').getAttribute('href');
    assert.match(csv, /^\/api\/vendor\/usage\?format=csv&from=\d{4}-\d\d-\d\d&to=\d{4}-\d\d-\d\d$/);
    const download = await call(server, 'GET', 'vendor.localhost', csv, {
      headers: { Cookie: (await browser.context.cookies(server.url('vendor.localhost')))
        .map((c) => `${c.name}=${c.value}`).join('; ') },
    });
    assert.equal(download.status, 200);
    assert.match(String(download.body), /^tenant_id,company_name,product_id,tool/);
    await screenshot(vendorPage, 'vendor-portal');

    // Suspend, then resume, the package.
    await row.getByRole('button', { name: /^Suspend/ }).click();
    await row.locator('.badge.suspended').waitFor();
    await vendorPage.locator(`.customer[data-tenant="acme"] tr[data-product="${TOOL}"]`)
      .getByRole('button', { name: /^Resume/ }).click();
    await vendorPage.locator(`.customer[data-tenant="acme"] tr[data-product="${TOOL}"] .badge.active`).waitFor();
  });

  test('the vendor approves a request for more seats', async () => {
    await expectCall(201, server, 'POST', `${TENANT}.localhost`, '/api/customer/request-more', {
      token: tenantAdminKey,
      json: { tool: TOOL, requested_total: 5, message: 'release crunch' },
    });
    await vendorPage.getByRole('button', { name: 'Refresh' }).click();
    const request = vendorPage.locator('#requests tbody tr', { hasText: 'release crunch' });
    await request.waitFor();
    assert.match(await request.textContent(), /total 5/);
    await request.getByRole('button', { name: /^approve/i }).click();
    await request.waitFor({ state: 'detached' });
    await vendorPage.getByText('No pending requests.').waitFor();
    await vendorPage.locator(`.customer[data-tenant="acme"] tr[data-product="${TOOL}"]`)
      .filter({ hasText: '· 5 total' }).waitFor();
  });

  test('the vendor adds a webhook endpoint, sees its secret once, and deletes it', async () => {
    await vendorPage.getByText('No webhook endpoints yet.').waitFor();
    await vendorPage.getByLabel('URL', { exact: true }).fill('https://203.0.113.10/permetrix');
    await vendorPage.getByLabel('request.created').check();
    await vendorPage.getByRole('button', { name: 'Add endpoint' }).click();
    const secret = vendorPage.locator('#new-webhook-secret code[data-field="secret"]');
    await secret.waitFor({ state: 'visible' });
    const value = (await secret.textContent()).trim();
    assert.match(value, /^whsec_[0-9a-f]{64}$/);
    const row = vendorPage.locator('#webhooks tbody tr', { hasText: '203.0.113.10' });
    await row.waitFor();
    assert.match(await row.textContent(), /overage\.charged, request\.created/);
    assert.match(await row.textContent(), /active/);
    assert.ok(!(await vendorPage.locator('#webhooks').textContent()).includes(value));
    await vendorPage.locator('#new-webhook-secret').getByRole('button', { name: 'I have saved it' }).click();
    await secret.waitFor({ state: 'hidden' });
    await screenshot(vendorPage, 'vendor-webhooks');

    await row.getByRole('button', { name: /^Recent deliveries/ }).click();
    await vendorPage.getByText('Nothing delivered to this endpoint yet.').waitFor();
    await row.getByRole('button', { name: /^Delete/ }).click();
    await row.getByRole('button', { name: /^Really delete/ }).click();
    await vendorPage.getByText('No webhook endpoints yet.').waitFor();
  });

  test('the vendor adds an API client, sees its secret once, and revokes it', async () => {
    await vendorPage.getByText('No API clients yet.').waitFor();
    await vendorPage.getByLabel('Name', { exact: true }).fill('CRM sync');
    await vendorPage.getByLabel('customers:write').uncheck();
    await vendorPage.getByLabel('usage:read').uncheck();
    await vendorPage.getByRole('button', { name: 'Add client' }).click();
    const box = vendorPage.locator('#new-client-secret');
    const secret = box.locator('code[data-field="secret"]');
    await secret.waitFor({ state: 'visible' });
    const value = (await secret.textContent()).trim();
    assert.match(value, /^[0-9a-f]{64}$/);
    assert.match((await box.locator('code[data-field="client_id"]').textContent()).trim(),
      /^\S+\.[0-9a-f]{16}$/);
    const row = vendorPage.locator('#clients tbody tr', { hasText: 'CRM sync' });
    await row.waitFor();
    assert.match(await row.textContent(), /customers:read provision/);
    assert.match(await row.textContent(), /active/);
    assert.ok(!(await vendorPage.locator('#clients').textContent()).includes(value));
    await box.getByRole('button', { name: 'I have saved it' }).click();
    await secret.waitFor({ state: 'hidden' });
    await screenshot(vendorPage, 'vendor-api-clients');

    await row.getByRole('button', { name: /^Revoke/ }).click();
    await row.getByRole('button', { name: /^Really revoke/ }).click();
    await row.filter({ hasText: 'revoked' }).waitFor();
    assert.equal(await row.getByRole('button', { name: /^Revoke/ }).count(), 0);
  });

  test('every form control of the portals has a label', async () => {
    for (const page of [vendorPage, tenantPage]) {
      const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input, select, textarea')]
        .filter((e) => e.type !== 'hidden' && e.labels.length === 0 && !e.getAttribute('aria-label'))
        .map((e) => e.id || e.name));
      assert.deepEqual(unlabelled, [], page.url());
    }
  });

  test('pages and assets carry a strict policy; no page logged an error', async () => {
    const page = await call(server, 'GET', 'localhost', '/');
    assert.equal(page.status, 200);
    assert.match(page.headers['content-security-policy'], /script-src 'self'/);
    assert.doesNotMatch(page.headers['content-security-policy'], /unsafe-inline/);
    const asset = await call(server, 'GET', 'localhost', '/assets/js/api.js');
    assert.equal(asset.status, 200);
    assert.match(asset.headers['content-type'], /^text\/javascript/);
    const unknown = await call(server, 'GET', 'nobody.localhost', '/');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error, 'unknown_tenant');
    assert.deepEqual(problems, []);
  });
});
