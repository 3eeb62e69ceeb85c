// Measures how long a borrow made through the API takes to show on an open tenant
// dashboard (API answer -> gauge updated), N times. Not a test: prints figures only.
//   PERMETRIX_BIN=target/debug/permetrix node tests/browser/measure-live.mjs [N]
import { startServer, startBrowser, expectCall, borrow } from './harness.mjs';

const n = Number(process.argv[2] ?? 20);
const server = await startServer();
const browser = await startBrowser();
try {
  const v = await expectCall(201, server, 'POST', 'localhost', '/api/admin/vendors', {
    token: server.adminToken, json: { vendor_id: 'toolco', vendor_name: 'ToolCo', password: 'vendor-pass-123' },
  });
  const c = await expectCall(201, server, 'POST', 'vendor.localhost', '/api/vendor/customers', {
    token: v.api_key, json: { tenant_id: 'acme', company_name: 'ACME' },
  });
  await expectCall(201, server, 'POST', 'vendor.localhost', '/api/vendor/provision', {
    token: v.api_key,
    json: { tenant_id: 'acme', product_id: 'cc', product_name: 'CC', total: n + 1, commit_qty: n + 1, max_overage: 0 },
  });
  await expectCall(201, server, 'POST', 'acme.localhost', '/api/users', {
    token: c.admin_api_key, json: { username: 'alice', password: 'alice-password', role: 'admin' },
  });
  const page = await browser.context.newPage();
  await page.goto(server.url('acme.localhost') + '/login');
  await page.getByLabel('User name').fill('alice');
  await page.getByLabel('Password').fill('alice-password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#live-state[data-state="live"]').waitFor();
  const samples = [];
  for (let i = 1; i <= n; i += 1) {
    await borrow(server, 'acme', { key: c.admin_api_key, tool: 'CC', user: `u${i}`, secret: v.signing_secret, vendorId: 'toolco' });
    const t0 = performance.now();
    await page.waitForFunction((want) => document.querySelector('.gauge[data-tool="CC"]')?.dataset.borrowed === want,
      String(i), { polling: 'raf' });
    samples.push(performance.now() - t0);
  }
  samples.sort((a, b) => a - b);
  const q = (p) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))].toFixed(0);
  console.log(`borrow answered -> dashboard gauge updated, n=${n}: min ${q(0)} ms, median ${q(0.5)} ms, p90 ${q(0.9)} ms, max ${q(1)} ms`);
} finally {
  await browser.close();
  await server.stop();
}
