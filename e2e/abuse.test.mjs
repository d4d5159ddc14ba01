// What a browser sees of the server's refusals: a socket opened from an
// origin that is not allowed never fires `open` (the handshake is refused
// with 403, no 101), and a socket closed for abuse reports code 1008 and
// its reason in the `close` event (the server flushes its close frame and
// keeps reading until the browser answers it, so the code is not lost to
// a reset connection as 1006). The real release binary, headless Chromium.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { chromium } from 'playwright-core';

const root = new URL('..', import.meta.url).pathname;
const binary = process.env.CHAT_SERVER_BIN ?? `${root}target/release/server`;
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const data = mkdtempSync(joinPath(tmpdir(), 'chat-e2e-abuse-'));

let server, addr, browser, foreign, foreignPort;

function startServer() {
  return new Promise((resolve, reject) => {
    // The default limits: nothing is relaxed for this test.
    const proc = spawn(binary, ['--addr', '127.0.0.1:0', '--data-dir', data], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    const timer = setTimeout(() => reject(new Error('server did not start')), 15000);
    proc.stdout.on('data', (chunk) => {
      out += chunk;
      const m = out.match(/listening on http:\/\/(\S+)/);
      if (m) { clearTimeout(timer); resolve({ proc, addr: m[1] }); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited ${code}`)); });
  });
}

before(async () => {
  ({ proc: server, addr } = await startServer());
  // A page on another origin (another port of the same host).
  foreign = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>elsewhere</title>');
  });
  await new Promise((r) => foreign.listen(0, '127.0.0.1', r));
  foreignPort = foreign.address().port;
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: FLAGS });
});

after(async () => {
  await browser?.close();
  foreign?.close();
  if (server && server.exitCode === null) {
    await new Promise((r) => { server.once('exit', r); server.kill('SIGTERM'); });
  }
  rmSync(data, { recursive: true, force: true });
});

// Opens the chat socket from the page and reports what it saw. With
// `flood`, the page sends Notify "ping" (opcode 1, name length 4, "ping")
// as fast as the socket takes them, far over the rate limit. It sends the
// next one only once the last has left (bufferedAmount 0): a browser calls
// a close unclean when the page still has unsent data, whatever the server
// does, and this test is about what the server does.
async function openSocket(page, url, { flood = false } = {}) {
  return page.evaluate(async ({ url, flood }) => {
    const seen = { open: false, events: [], sent: 0 };
    const ws = new WebSocket(url, 'websocket.io-rpc-v0.1');
    ws.binaryType = 'arraybuffer';
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve({ ...seen, timeout: true }), 15000);
      const ping = new Uint8Array([1, 4, 112, 105, 110, 103]);
      let closed = false;
      const tick = () => {
        if (closed || ws.readyState !== WebSocket.OPEN) return;
        if (ws.bufferedAmount === 0) { ws.send(ping); seen.sent += 1; }
        setTimeout(tick, 0);
      };
      ws.onopen = () => {
        seen.open = true;
        seen.events.push('open');
        if (flood) tick();
      };
      ws.onerror = () => seen.events.push('error');
      ws.onclose = (e) => {
        closed = true;
        clearTimeout(timer);
        resolve({ ...seen, code: e.code, reason: e.reason, clean: e.wasClean });
      };
    });
  }, { url, flood });
}

test('a socket opened from a foreign origin never opens', { timeout: 60000 }, async () => {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`http://127.0.0.1:${foreignPort}/`);
  const seen = await openSocket(page, `ws://${addr}/socket`);
  assert.equal(seen.open, false, `the handshake was refused: ${JSON.stringify(seen)}`);
  assert.equal(seen.code, 1006, 'a refused handshake closes without a code');
  assert.ok(seen.events.includes('error'));
  // The same page from the server's own origin opens fine.
  const own = await (await browser.newContext()).newPage();
  await own.goto(`http://${addr}/healthz`);
  const ok = await own.evaluate(async (url) => new Promise((resolve) => {
    const ws = new WebSocket(url, 'websocket.io-rpc-v0.1');
    ws.onopen = () => { ws.close(); resolve(true); };
    ws.onclose = () => resolve(false);
  }), `ws://${addr}/socket`);
  assert.equal(ok, true, 'same origin opens');
});

test('a socket closed for abuse sees 1008 and the reason', { timeout: 60000 }, async () => {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`http://${addr}/healthz`);
  const seen = await openSocket(page, `ws://${addr}/socket`, { flood: true });
  assert.equal(seen.open, true);
  assert.equal(seen.code, 1008, `close event: ${JSON.stringify(seen)}`);
  assert.equal(seen.reason, 'too many messages');
  assert.equal(seen.clean, true, 'a clean close, not a reset');
});
