// The development loop with accounts: `trunk serve` (a debug build with
// hot reload) in front, the server beside it, as the README's two
// terminals run them. The accounts API goes through trunk's proxy, so the
// cookie is the page's; the page's socket goes straight to the server and
// carries that cookie. Ports are picked free (not 8080 and 3000), with the
// same configuration as Trunk.toml otherwise.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { chromium } from 'playwright-core';

const root = new URL('..', import.meta.url).pathname;
const binary = process.env.CHAT_SERVER_BIN ?? `${root}target/release/server`;
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const WAIT = 15000;
// A debug build of the app from cold: minutes on a busy 2-core machine.
const BUILD_WAIT = 600000;

let browser;
const scratch = mkdtempSync(joinPath(tmpdir(), 'chat-devloop-'));
const children = [];

const freePort = () => new Promise((resolve, reject) => {
  const probe = createServer();
  probe.once('error', reject);
  probe.listen(0, '127.0.0.1', () => {
    const { port } = probe.address();
    probe.close(() => resolve(port));
  });
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function startServer(args) {
  return new Promise((resolve, reject) => {
    const proc = spawn(binary, ['--addr', '127.0.0.1:0', ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
    children.push(proc);
    let out = '';
    const timer = setTimeout(() => reject(new Error('server did not start')), WAIT);
    proc.stdout.on('data', (chunk) => {
      out += chunk;
      const m = out.match(/listening on http:\/\/\S+:(\d+)/);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited ${code}`)); });
  });
}

// Trunk.toml with this run's ports and a dist of its own; everything else
// (tools, offline) as the project's.
function trunkConfig(pagePort, serverPort) {
  const project = readFileSync(`${root}Trunk.toml`, 'utf8');
  const tools = project.match(/\[tools\][^[]*/)[0];
  assert.match(project, /backend = "http:\/\/127\.0\.0\.1:3000\/api\/"/, 'Trunk.toml proxies /api/ to the server');
  const config = `[build]
target = "${root}frontend/index.html"
dist = "${scratch}/dist"
offline = true

${tools}
[serve]
addresses = ["127.0.0.1"]
port = ${pagePort}

[[proxy]]
backend = "http://127.0.0.1:${serverPort}/api/"
`;
  const path = `${scratch}/Trunk.toml`;
  writeFileSync(path, config);
  return path;
}

before(async () => {
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: FLAGS });
});

after(async () => {
  await browser?.close();
  for (const child of children) {
    try { process.kill(-child.pid, 'SIGTERM'); } catch { /* not a group */ }
    child.kill('SIGTERM');
  }
  await sleep(500);
  rmSync(scratch, { recursive: true, force: true });
});

test('trunk serve with the server beside it: sign up through the proxy, and the socket is the account', { timeout: BUILD_WAIT + 120000 }, async () => {
  const pagePort = await freePort();
  const page0 = `http://127.0.0.1:${pagePort}`;
  const serverPort = await startServer(['--in-memory', '--allowed-origin', page0]);
  const config = trunkConfig(pagePort, serverPort);
  const trunk = spawn('trunk', ['serve', '--config', config], {
    cwd: root, stdio: ['ignore', 'pipe', 'pipe'], detached: true,
    env: { ...process.env, PATH: `${root}node_modules/.bin:${process.env.PATH}` },
  });
  children.push(trunk);
  let log = '';
  trunk.stdout.on('data', (c) => { log += c; });
  trunk.stderr.on('data', (c) => { log += c; });
  // Up once the page is served (the first build done).
  const started = Date.now();
  for (;;) {
    if (trunk.exitCode !== null) assert.fail(`trunk serve exited ${trunk.exitCode}:\n${log.slice(-3000)}`);
    const ok = await fetch(`${page0}/`).then((r) => r.ok && r.text()).catch(() => false);
    if (ok && ok.includes('<script')) break;
    if (Date.now() - started > BUILD_WAIT) assert.fail(`trunk serve did not serve the app:\n${log.slice(-3000)}`);
    await sleep(1000);
  }

  const context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
  try {
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${page0}/?socket=${encodeURIComponent(`ws://127.0.0.1:${serverPort}/socket`)}`);
    await page.getByTestId('banner-text').filter({ hasText: /^Online$/ }).waitFor({ timeout: 60000 });
    await page.getByTestId('nick-signin').click();
    await page.getByTestId('account-mode').click();
    await page.getByTestId('account-username').fill('dev');
    await page.getByTestId('account-password').fill('tq7-vexa-plum');
    await page.getByTestId('account-submit').click();
    // Signed in through the proxy; after the reload the socket says so.
    await page.getByTestId('account-name').filter({ hasText: /^Signed in as dev$/ }).waitFor({ timeout: 60000 });
    await page.getByTestId('banner-text').filter({ hasText: /^Online$/ }).waitFor({ timeout: WAIT });
    const cookies = await context.cookies(page0);
    assert.deepEqual(cookies.map((c) => [c.name, c.httpOnly, c.sameSite]), [['chat_session', true, 'Lax']],
      'the cookie came through the proxy, for the page');
    await page.getByTestId('composer').fill('from the dev loop');
    await page.getByTestId('composer').press('Enter');
    await page.locator('[data-testid=message][data-delivery=sent]').filter({ hasText: 'from the dev loop' }).waitFor({ timeout: WAIT });
    assert.equal(await page.getByTestId('author').last().textContent(), 'dev', 'the socket chats as the account');
    // The server, asked directly with the page's cookie, agrees.
    const me = await fetch(`http://127.0.0.1:${serverPort}/api/me`, {
      headers: { cookie: `chat_session=${cookies[0].value}` },
    }).then((r) => r.json());
    assert.deepEqual(me, { username: 'dev', admin: false });
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});
