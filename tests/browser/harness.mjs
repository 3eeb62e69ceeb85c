// What the browser tests share: the real server binary on a free port with a fresh
// data directory, Debian's Chromium driven by playwright-core, a small HTTP client that
// addresses tenant hosts by the Host header, and v1 request signatures.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHmac, randomBytes } from 'node:crypto';
import http from 'node:http';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const root = resolve(here, '../..');
export const screenshotDir = join(here, 'screenshots');
const binary = process.env.PERMETRIX_BIN ?? join(root, 'target/debug/permetrix');
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Waits for a condition with a bounded number of tries (never a fixed sleep for order). */
async function until(what, check, { timeoutMs = 20_000 } = {}) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `permetrix serve` on 127.0.0.1:0; resolves once it logs `listening on <addr>`. */
export async function startServer() {
  const dataDir = mkdtempSync(join(tmpdir(), 'permetrix-browser-'));
  const adminToken = `op-${randomBytes(16).toString('hex')}`;
  const child = spawn(binary, [
    'serve', '--bind', '127.0.0.1:0', '--data-dir', dataDir, '--workers', '2', '--arbiters', '2',
    '--base-domain', 'localhost',
  ], {
    env: { ...process.env, PERMETRIX_ADMIN_TOKEN: adminToken, RUST_LOG: 'info' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const log = [];
  const lines = createInterface({ input: child.stderr });
  const port = await new Promise((resolveReady, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`server exited (${code}) before it was ready:\n${log.join('\n')}`)));
    lines.on('line', (line) => {
      if (log.length < 500) log.push(line);
      const m = /listening on [^\s]*:(\d+)/.exec(line);
      if (m) resolveReady(Number(m[1]));
    });
  });
  return {
    port,
    adminToken,
    log,
    url: (host = 'localhost') => `http://${host}:${port}`,
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * A JSON request to the server with `Host: <host>:<port>` (tenant hosts need no DNS).
 * Resolves to { status, body }.
 */
export function call(server, method, host, path, { token, json, headers = {} } = {}) {
  const payload = json === undefined ? undefined : Buffer.from(JSON.stringify(json));
  const h = { Host: `${host}:${server.port}`, Accept: 'application/json', ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  if (payload) {
    h['Content-Type'] = 'application/json';
    h['Content-Length'] = String(payload.length);
  }
  return new Promise((resolveCall, reject) => {
    const req = http.request({ host: '127.0.0.1', port: server.port, method, path, headers: h }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body = text;
        try { body = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
        resolveCall({ status: res.statusCode, body, headers: res.headers });
      });
    });
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}

/** Like `call`, failing unless the status is the expected one. */
export async function expectCall(expected, server, method, host, path, opts) {
  const r = await call(server, method, host, path, opts);
  if (r.status !== expected) {
    throw new Error(`${method} ${host}${path}: expected ${expected}, got ${r.status} ${JSON.stringify(r.body)}`);
  }
  return r.body;
}

/** v1 signature headers of a borrow (API.md "Request signatures"). */
export function signV1({ secret, vendorId, tool, user, apiKey }) {
  const ts = String(Math.floor(Date.now() / 1000));
  const sig = createHmac('sha256', secret).update(`${tool}|${user}|${ts}|${apiKey}`).digest('hex');
  return { 'X-Signature': sig, 'X-Timestamp': ts, 'X-Vendor-ID': vendorId };
}

/** Borrows a seat through the API, signed as the vendor's client libraries do. */
export function borrow(server, tenant, { key, tool, user, secret, vendorId, waitSeconds }) {
  const json = waitSeconds === undefined ? { tool, user } : { tool, user, wait_seconds: waitSeconds };
  return expectCall(200, server, 'POST', `${tenant}.localhost`, '/licenses/borrow', {
    token: key,
    json,
    headers: signV1({ secret, vendorId, tool, user, apiKey: key }),
  });
}

/** Headless Chromium (Debian's package) with the flags a closed network needs. */
export async function startBrowser() {
  const profile = mkdtempSync(join(tmpdir(), 'permetrix-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    viewport: { width: 1366, height: 900 },
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--host-resolver-rules=MAP localhost 127.0.0.1, MAP *.localhost 127.0.0.1',
    ],
  });
  context.setDefaultTimeout(15_000);
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Saves a full-page screenshot under tests/browser/screenshots/ (git-ignored). */
export async function screenshot(page, name) {
  mkdirSync(screenshotDir, { recursive: true });
  await page.screenshot({ path: join(screenshotDir, `${name}.png`), fullPage: true, animations: 'disabled' });
}

/**
 * Collects into `problems` what a page logs as an error (a script error, a refused
 * Content-Security-Policy). Failed requests are left out: an API error the page shows
 * as a message is logged by Chromium too.
 */
export function watchConsole(page, problems) {
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(String(e)));
}

export { until };
