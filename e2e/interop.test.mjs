// Interoperability, the other direction from server/tests/compat.rs: our
// release server against clients that behave exactly as the original
// JavaScript client of `web-socket-io` does (e2e/original-client.js, our
// own rewrite of npm `client-socket-io` 0.1.0), several of them at once in
// headless Chromium, in a page of the server's own origin (so the Origin
// check passes as it does for the original demo page served by its own
// server). The client module is fulfilled by a Playwright route; the
// socket and /healthz are the real server's.
//
// Every payload is compared byte for byte. Wherever a test says something
// did NOT arrive, it first proves the connection still works after the
// waiting window (a `ping` answered by `pong`), so silence is not a dead
// socket. Each page also records every frame its clients sent and
// received (a listener beside the client's own), so the tests check the
// wire too: request ids, the Reset's bytes, and which Responses came.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { createServer } from 'node:http';
import { chromium } from 'playwright-core';

const root = new URL('..', import.meta.url).pathname;
const binary = process.env.CHAT_SERVER_BIN ?? `${root}target/release/server`;
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const SUBPROTOCOL = 'websocket.io-rpc-v0.1';
const clientModule = readFileSync(`${root}e2e/original-client.js`, 'utf8');

let server, port, browser;
// The default store (SQLite on disk), as the original demo's users get it.
const data = mkdtempSync(joinPath(tmpdir(), 'chat-interop-'));

function startServer(dir = data, extra = []) {
  return new Promise((resolve, reject) => {
    const proc = spawn(binary, ['--addr', '127.0.0.1:0', '--data-dir', dir, ...extra], { stdio: ['ignore', 'pipe', 'ignore'] });
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

function stopServer(proc) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null) return resolve(proc.exitCode);
    proc.once('exit', (code) => resolve(code));
    proc.kill('SIGTERM');
  });
}

before(async () => {
  const started = await startServer();
  server = started.proc;
  port = Number(started.addr.split(':').pop());
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: FLAGS });
});

after(async () => {
  await browser?.close();
  if (server) await stopServer(server);
  rmSync(data, { recursive: true, force: true });
});

// The page's harness (runs in the browser). `h.open(label)` makes one
// original client on this page's origin and starts listening to `message`,
// `pong` and `msg` the way the demo page does (`for await` over `on`);
// payloads, and every frame sent and received, are kept as arrays of
// numbers for the test to compare.
const HARNESS = `
import { SocketIo, RPCAbortError } from '/original-client.js';
const clients = {};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const h = {
  SocketIo, RPCAbortError, sleep,
  c: (label) => clients[label],
  async open(label, names = ['message', 'pong', 'msg']) {
    const s = new SocketIo('ws://' + location.host + '/socket');
    const record = { s, events: {}, sent: [], received: [] };
    const send = s.ws.send.bind(s.ws);
    s.ws.send = (frame) => { record.sent.push(Array.from(frame)); send(frame); };
    s.ws.addEventListener('message', (ev) => {
      record.received.push(typeof ev.data === 'string' ? ev.data : Array.from(new Uint8Array(ev.data)));
    });
    clients[label] = record;
    await s.connect();
    for (const name of names) {
      record.events[name] = [];
      (async () => { for await (const p of s.on(name)) record.events[name].push(Array.from(p)); })();
    }
    await sleep(0);
    return { protocol: s.ws.protocol, binaryType: s.ws.binaryType, url: s.ws.url,
      readyState: s.ws.readyState, status: s.status() };
  },
  // Polls pred (sync or async) every 10 ms; fails after ms.
  async until(pred, what, ms = 8000) {
    const end = performance.now() + ms;
    for (;;) {
      if (await pred()) return;
      if (performance.now() > end) throw new Error('timed out waiting for ' + what);
      await sleep(10);
    }
  },
  async health() {
    const r = await fetch('/healthz', { cache: 'no-store' });
    return r.json();
  },
  // The liveness proof: a ping with a fresh token, answered by the pong
  // carrying exactly that token.
  async alive(label, token) {
    const rec = clients[label];
    const want = JSON.stringify(Array.from(new TextEncoder().encode(token)));
    rec.s.notify('ping', token);
    await h.until(() => rec.events.pong.some((p) => JSON.stringify(p) === want), label + ' pong ' + token);
  },
  dump(label) {
    const rec = clients[label];
    return { events: rec.events, sent: rec.sent, received: rec.received, status: rec.s.status() };
  },
};
window.h = h;
window.harnessReady = true;
`;

function pageHtml() {
  return `<!doctype html><meta charset="utf-8"><title>interop</title>
<script type="module">${HARNESS}</script>`;
}

// A page of the server's own origin. Chromium lets a page open a socket
// to a loopback address only if the page itself came from one (its Local
// Network Access checks; a page fulfilled by a route counts as public), so
// the page first loads a real response of the server (`/healthz`: no CSP,
// no script of its own), then its content is replaced by the harness, whose
// client module is fulfilled by a route. Everything else (the socket,
// /healthz) goes to the real server.
async function openPage(origin = `http://127.0.0.1:${port}`, first = `${origin}/healthz`) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  const consoleLines = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => consoleLines.push(m.text()));
  await page.route(`${origin}/original-client.js`, (route) =>
    route.fulfill({ status: 200, contentType: 'text/javascript; charset=utf-8', body: clientModule }));
  await page.goto(first);
  await page.setContent(pageHtml());
  await page.waitForFunction(() => window.harnessReady === true, null, { timeout: 10000 });
  assert.equal(await page.evaluate(() => location.origin), origin);
  return { context, page, errors, consoleLines };
}

async function openClients(page, labels) {
  const opened = {};
  for (const label of labels) {
    opened[label] = await page.evaluate((l) => window.h.open(l), label);
  }
  return opened;
}

const utf8 = (s) => Array.from(Buffer.from(s, 'utf8'));
const ALL_BYTES = Array.from({ length: 256 }, (_, i) => i);
const ALL_BYTES_REVERSED = [...ALL_BYTES].reverse();
const frameNotify = (name, payload) => [1, utf8(name).length, ...utf8(name), ...payload];
const idBytes = (id) => [(id >>> 24) & 255, (id >>> 16) & 255, (id >>> 8) & 255, id & 255];
const frameRequest = (id, name, payload) => [2, ...idBytes(id), utf8(name).length, ...utf8(name), ...payload];
const frameResponse = (id, payload) => [4, ...idBytes(id), ...payload];
const responsesIn = (received) => received.filter((f) => Array.isArray(f) && f[0] === 4);
const idOf = (frame) => ((frame[1] << 24) >>> 0) + (frame[2] << 16) + (frame[3] << 8) + frame[4];

// The local ports of this machine's established TCP connections to the
// server's port (the browser's sockets), from /proc/net/tcp.
function peerPortsOf(serverPort) {
  const ports = new Set();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 4 || cols[3] !== '01') continue;
    const [lip, lport] = cols[1].split(':');
    const [rip, rport] = cols[2].split(':');
    if (lip === '0100007F' && rip === '0100007F' && parseInt(rport, 16) === serverPort) {
      ports.add(parseInt(lport, 16));
    }
  }
  return ports;
}

test('the original client opens the socket: subprotocol echoed, binary as ArrayBuffer, several at once', { timeout: 30000 }, async () => {
  const { context, page, errors } = await openPage();
  try {
    const opened = await openClients(page, ['a', 'b', 'c']);
    for (const label of ['a', 'b', 'c']) {
      assert.deepEqual(opened[label], {
        protocol: SUBPROTOCOL,
        binaryType: 'arraybuffer',
        url: `ws://127.0.0.1:${port}/socket`,
        readyState: 1,
        status: { pending: [], events: ['message', 'pong', 'msg'] },
      }, label);
    }
    // Nothing arrives unasked: the server greets a seed client with no frame.
    for (const label of ['a', 'b', 'c']) await page.evaluate((l) => window.h.alive(l, 'first'), label);
    for (const label of ['a', 'b', 'c']) {
      const d = await page.evaluate((l) => window.h.dump(l), label);
      assert.deepEqual(d.received, [frameNotify('pong', utf8('first'))], `${label}: only its pong`);
      assert.deepEqual(d.sent, [frameNotify('ping', utf8('first'))], `${label}: the original client's Notify bytes`);
    }
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

test('notify ping: pong with the same payload, text or every byte value, to the sender only', { timeout: 30000 }, async () => {
  const { context, page, errors } = await openPage();
  try {
    await openClients(page, ['a', 'b', 'c']);
    const text = 'héllo, wörld ✓ 👋 — ping';
    await page.evaluate(async ({ text, all, reversed }) => {
      const a = window.h.c('a');
      a.s.notify('ping', text);
      a.s.notify('ping', new Uint8Array(all)); // a Uint8Array
      a.s.notify('ping', reversed); // a plain Array, as the original accepts
      a.s.notify('ping', ''); // empty payload
      await window.h.until(() => a.events.pong.length === 4, 'four pongs');
    }, { text, all: ALL_BYTES, reversed: ALL_BYTES_REVERSED });
    await page.evaluate(() => window.h.alive('b', 'b-token'));
    await page.evaluate(() => window.h.alive('c', 'c-token'));
    await page.evaluate(() => window.h.alive('a', 'a-token'));

    const a = await page.evaluate(() => window.h.dump('a'));
    assert.deepEqual(a.events.pong, [utf8(text), ALL_BYTES, ALL_BYTES_REVERSED, [], utf8('a-token')]);
    assert.deepEqual(a.sent.slice(0, 4), [
      frameNotify('ping', utf8(text)),
      frameNotify('ping', ALL_BYTES),
      frameNotify('ping', ALL_BYTES_REVERSED),
      frameNotify('ping', []),
    ]);
    assert.deepEqual(a.received, [
      frameNotify('pong', utf8(text)),
      frameNotify('pong', ALL_BYTES),
      frameNotify('pong', ALL_BYTES_REVERSED),
      frameNotify('pong', []),
      frameNotify('pong', utf8('a-token')),
    ], 'a: nothing but its pongs');
    // b and c got their own pong only (proved alive above, so a's pongs
    // would have reached them by now if they were sent to them).
    for (const label of ['b', 'c']) {
      const d = await page.evaluate((l) => window.h.dump(l), label);
      assert.deepEqual(d.received, [frameNotify('pong', utf8(`${label}-token`))], label);
      assert.deepEqual(d.events.message, []);
    }
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

test('broadcast: text and all 256 byte values reach every original client as message, byte for byte, sender included', { timeout: 30000 }, async () => {
  const { context, page, errors } = await openPage();
  try {
    await openClients(page, ['a', 'b', 'c']);
    const text = 'bonjour ☕ from a — ünïcödé, 日本語, 👋🏽';
    // One at a time, each seen by all three before the next is sent.
    const sends = [
      ['a', text],
      ['b', ALL_BYTES],
      ['c', ALL_BYTES_REVERSED],
      ['a', [0xff]],
      ['b', [0x68, 0x69, 0x80]], // "hi" and a lone continuation byte: not UTF-8
    ];
    for (const [i, [from, payload]] of sends.entries()) {
      await page.evaluate(async ({ from, payload, n, asText }) => {
        const h = window.h;
        h.c(from).s.notify('broadcast', asText ? payload : new Uint8Array(payload));
        for (const l of ['a', 'b', 'c']) {
          await h.until(() => h.c(l).events.message.length === n, `${l} gets broadcast ${n}`);
        }
      }, { from, payload, n: i + 1, asText: typeof payload === 'string' });
    }
    for (const label of ['a', 'b', 'c']) await page.evaluate((l) => window.h.alive(l, 'after'), label);

    const expected = [utf8(text), ALL_BYTES, ALL_BYTES_REVERSED, [0xff], [0x68, 0x69, 0x80]];
    for (const label of ['a', 'b', 'c']) {
      const d = await page.evaluate((l) => window.h.dump(l), label);
      assert.deepEqual(d.events.message, expected, `${label}: every broadcast once, exactly`);
      assert.deepEqual(d.received.filter((f) => f[0] === 1 && f[1] === 7), expected.map((p) => frameNotify('message', p)),
        `${label}: the message frames on the wire`);
    }
    const b = await page.evaluate(() => window.h.dump('b'));
    assert.deepEqual(b.sent[0], frameNotify('broadcast', ALL_BYTES));
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

// The original demo server delivers one sender's broadcasts in the order
// sent, whatever their bytes (one room task, one FIFO channel per client).
// Ours stores text before delivering it and relays bytes that are not
// UTF-8 as they are; the relay waits behind the messages still being
// stored (before that fix a binary broadcast overtook the text sent before
// it: #2, #4, #1, #3, #5 on every run with the on-disk store).
test('broadcasts sent back to back arrive in the order sent, text and binary mixed', {
  timeout: 30000,
}, async () => {
  const { context, page, errors } = await openPage();
  try {
    await openClients(page, ['a', 'b']);
    const sent = ['one', ALL_BYTES, 'two', [0xc0, 0xff], 'three'];
    await page.evaluate(async (sent) => {
      const h = window.h;
      for (const p of sent) h.c('a').s.notify('broadcast', typeof p === 'string' ? p : new Uint8Array(p));
      for (const l of ['a', 'b']) {
        await h.until(() => h.c(l).events.message.length === sent.length, `${l} gets all`);
      }
    }, sent);
    for (const label of ['a', 'b']) await page.evaluate((l) => window.h.alive(l, 'after'), label);
    const expected = sent.map((p) => (typeof p === 'string' ? utf8(p) : p));
    const name = (bytes) => {
      const i = expected.findIndex((e) => JSON.stringify(e) === JSON.stringify(bytes));
      return i < 0 ? 'unknown' : `#${i + 1}`;
    };
    for (const label of ['a', 'b']) {
      const d = await page.evaluate((l) => window.h.dump(l), label);
      assert.deepEqual(d.events.message, expected,
        `${label}: in the order a sent them (got ${d.events.message.map(name).join(', ')})`);
    }
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

test('call: myip, uppercase (Unicode), ids counted from 1, concurrent calls matched by id', { timeout: 30000 }, async () => {
  const { context, page, errors } = await openPage();
  try {
    await openClients(page, ['a', 'b', 'c']);
    const ips = {};
    for (const label of ['a', 'b', 'c']) {
      ips[label] = await page.evaluate(async (l) => new TextDecoder().decode(await window.h.c(l).s.call('myip', '')), label);
    }
    const peers = peerPortsOf(port);
    const seenPorts = new Set();
    for (const [label, ip] of Object.entries(ips)) {
      const m = ip.match(/^127\.0\.0\.1:(\d+)$/);
      assert.ok(m, `${label}: myip is the peer address: ${ip}`);
      const p = Number(m[1]);
      assert.ok(peers.has(p), `${label}: ${p} is one of the browser's connections to the server (${[...peers]})`);
      seenPorts.add(p);
    }
    assert.equal(seenPorts.size, 3, 'three sockets, three peer addresses');

    // Unicode upper-casing: one char to many (ß, ﬁ, ŉ), title-case digraphs,
    // dotless i, Cyrillic, Greek with diacritics; emoji and digits untouched.
    const input = 'stra\u00dfe \ufb01ne \u0149 \u01c6 \u0131 \u0451 \u0390 123 👋 abc';
    const upper = 'STRASSE FINE \u02bcN \u01c4 I \u0401 \u0399\u0308\u0301 123 👋 ABC';
    const a = await page.evaluate(async ({ input }) => {
      const s = window.h.c('a').s;
      const one = Array.from(await s.call('uppercase', input));
      // Five calls in flight at once, each answered under its own id.
      const words = ['alpha', 'βήτα', 'gamma', 'δέλτα', 'épsilon'];
      const many = await Promise.all(words.map((w) => s.call('uppercase', w)));
      const bytes = Array.from(await s.call('uppercase', new Uint8Array([0x61, 0xff])));
      const unknown = new TextDecoder().decode(await s.call('no_such_event', 'x'));
      return { one, many: many.map((m) => new TextDecoder().decode(m)), bytes, unknown, status: s.status() };
    }, { input });
    assert.deepEqual(a.one, utf8(upper));
    assert.deepEqual(a.many, ['ALPHA', 'ΒΉΤΑ', 'GAMMA', 'ΔΈΛΤΑ', 'ÉPSILON']);
    // Ours, documented: non-UTF-8 gets a bad_request envelope, an unknown
    // request an unknown_event one, so the original client is never left
    // waiting forever (the original demo server answers neither).
    assert.equal(JSON.parse(Buffer.from(a.bytes).toString('utf8')).err.code, 'bad_request');
    assert.equal(JSON.parse(a.unknown).err.code, 'unknown_event');
    assert.deepEqual(a.status.pending, []);

    const d = await page.evaluate(() => window.h.dump('a'));
    assert.deepEqual(d.sent, [
      frameRequest(1, 'myip', []),
      frameRequest(2, 'uppercase', utf8(input)),
      frameRequest(3, 'uppercase', utf8('alpha')),
      frameRequest(4, 'uppercase', utf8('βήτα')),
      frameRequest(5, 'uppercase', utf8('gamma')),
      frameRequest(6, 'uppercase', utf8('δέλτα')),
      frameRequest(7, 'uppercase', utf8('épsilon')),
      frameRequest(8, 'uppercase', [0x61, 0xff]),
      frameRequest(9, 'no_such_event', utf8('x')),
    ]);
    const responses = responsesIn(d.received);
    assert.deepEqual(responses.map(idOf), [1, 2, 3, 4, 5, 6, 7, 8, 9], 'one Response per Request, ids as sent');
    assert.deepEqual(responses[0], frameResponse(1, utf8(ips.a)));
    assert.deepEqual(responses[1], frameResponse(2, utf8(upper)));
    assert.deepEqual(responses[2], frameResponse(3, utf8('ALPHA')));
    assert.deepEqual(responses[6], frameResponse(7, utf8('ÉPSILON')));
    // b and c counted their own ids from 1 too.
    for (const label of ['b', 'c']) {
      const o = await page.evaluate((l) => window.h.dump(l), label);
      assert.deepEqual(o.sent, [frameRequest(1, 'myip', [])]);
      assert.deepEqual(responsesIn(o.received), [frameResponse(1, utf8(ips[label]))]);
    }
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

test('long_runing_task: done! after 3 s', { timeout: 30000 }, async () => {
  const { context, page, errors } = await openPage();
  try {
    await openClients(page, ['a']);
    const r = await page.evaluate(async () => {
      const h = window.h;
      const s = h.c('a').s;
      const t0 = performance.now();
      const call = s.call('long_runing_task', []); // the demo's payload: []
      const pendingWhile = s.status().pending;
      await h.until(async () => (await h.health()).long_tasks === 1, 'the task to run');
      const out = Array.from(await call);
      return { out, ms: performance.now() - t0, pendingWhile, pendingAfter: s.status().pending, tasks: (await h.health()).long_tasks };
    });
    assert.deepEqual(r.out, utf8('done!'));
    // Not before its 3 s (the task starts after t0). No upper bound but
    // the test's own timeout: lateness on a busy machine is not the point.
    assert.ok(r.ms >= 3000, `answered after ${r.ms} ms`);
    assert.deepEqual(r.pendingWhile, ['1']);
    assert.deepEqual(r.pendingAfter, []);
    assert.equal(r.tasks, 0);
    const d = await page.evaluate(() => window.h.dump('a'));
    assert.deepEqual(d.sent, [frameRequest(1, 'long_runing_task', [])]);
    assert.deepEqual(d.received, [frameResponse(1, utf8('done!'))]);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

test('long_runing_task cancelled with an AbortSignal: Reset sent, work stopped, never answered; the other call still is', { timeout: 30000 }, async () => {
  const { context, page, errors } = await openPage();
  try {
    await openClients(page, ['a', 'b']);
    const r = await page.evaluate(async () => {
      const h = window.h;
      const a = h.c('a');
      const s = a.s;
      const health = async () => (await h.health()).long_tasks;
      const t0 = performance.now();
      // As the demo's window.long_runing_task(timeout) does: abort from a
      // timer, with a reason.
      const ctrl = new AbortController();
      const cancelled = s.call('long_runing_task', [], { signal: ctrl.signal }).then(
        (v) => ({ resolved: Array.from(v) }),
        (e) => ({ isAbortError: e instanceof h.RPCAbortError, id: e.id, name: e.name, message: e.message, data: e.data }));
      const kept = s.call('long_runing_task', []);
      await h.until(async () => (await health()) === 2, 'both tasks running');
      const pendingBefore = s.status().pending;
      await h.sleep(Math.max(0, 500 - (performance.now() - t0)));
      ctrl.abort('TimeOut!');
      const abortedAt = performance.now() - t0;
      const rejection = await cancelled;
      await h.until(async () => (await health()) === 1, 'the cancelled task to stop', 10000);
      const stoppedAt = performance.now() - t0;
      const pendingAfterAbort = s.status().pending;
      const keptOut = Array.from(await kept);
      const keptAt = performance.now() - t0;
      await h.until(async () => (await health()) === 0, 'no task left');
      // Wait well past the moment the cancelled task would have answered
      // (3 s after it started), then prove the socket is alive.
      await h.sleep(Math.max(0, 4500 - (performance.now() - t0)));
      await h.alive('a', 'still here');
      await h.alive('b', 'b too');
      return { rejection, abortedAt, stoppedAt, keptOut, keptAt, pendingBefore, pendingAfterAbort, pendingEnd: s.status().pending };
    });
    assert.deepEqual(r.rejection, { isAbortError: true, id: 1, name: 'long_runing_task', message: 'TimeOut!', data: [] });
    assert.deepEqual(r.pendingBefore, ['1', '2']);
    assert.deepEqual(r.pendingAfterAbort, ['2']);
    assert.deepEqual(r.pendingEnd, []);
    // The server stopped the work on the Reset: before it could have ended
    // by itself (3 s after it started, which is after t0). In practice a
    // few milliseconds after the abort at 0.5 s.
    assert.ok(r.stoppedAt < 3000,
      `stopped ${Math.round(r.stoppedAt - r.abortedAt)} ms after the abort, ${Math.round(r.stoppedAt)} ms after the start`);
    assert.deepEqual(r.keptOut, utf8('done!'));
    assert.ok(r.keptAt >= 3000, `the other call answered after ${r.keptAt} ms`);

    const d = await page.evaluate(() => window.h.dump('a'));
    // Exactly one Response: the kept call's. None ever for the reset id,
    // though the socket answered a ping after the window.
    assert.deepEqual(responsesIn(d.received), [frameResponse(2, utf8('done!'))]);
    assert.deepEqual(d.sent, [
      frameRequest(1, 'long_runing_task', []),
      frameRequest(2, 'long_runing_task', []),
      [3, 0, 0, 0, 1], // Reset of id 1
      frameNotify('ping', utf8('still here')),
    ]);
    assert.deepEqual(d.received, [frameResponse(2, utf8('done!')), frameNotify('pong', utf8('still here'))]);
    const b = await page.evaluate(() => window.h.dump('b'));
    assert.deepEqual(b.received, [frameNotify('pong', utf8('b too'))], 'b saw nothing of a\'s calls');
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

test('an original client and a chat client in the lobby talk to each other', { timeout: 30000 }, async () => {
  const { context, page, errors } = await openPage();
  try {
    await openClients(page, ['a', 'b', 'app']);
    const said = 'from the app: héllo ✓';
    const shouted = 'from the demo page 👋';
    const r = await page.evaluate(async ({ said, shouted, all }) => {
      const h = window.h;
      const dec = (u8) => JSON.parse(new TextDecoder().decode(u8));
      const app = h.c('app').s;
      const hello = dec(await app.call('hello', JSON.stringify({ v: 1, nick: 'interop' })));
      const say = dec(await app.call('say', JSON.stringify({ room: 'lobby', text: said, cid: 'c-1' })));
      for (const l of ['a', 'b']) await h.until(() => h.c(l).events.message.length === 1, `${l} gets the say`);
      await h.until(() => h.c('app').events.msg.length === 1, 'app gets its msg');
      h.c('a').s.notify('broadcast', shouted);
      for (const l of ['a', 'b']) await h.until(() => h.c(l).events.message.length === 2, `${l} gets the broadcast`);
      await h.until(() => h.c('app').events.msg.length === 2, 'app gets the broadcast as msg');
      // Bytes that are not text go to the original clients only.
      h.c('b').s.notify('broadcast', new Uint8Array(all));
      for (const l of ['a', 'b']) await h.until(() => h.c(l).events.message.length === 3, `${l} gets the bytes`);
      for (const l of ['a', 'b', 'app']) await h.alive(l, 'after');
      return { hello, say };
    }, { said, shouted, all: ALL_BYTES });
    assert.equal(r.hello.ok.nick, 'interop');
    assert.equal(typeof r.say.ok.seq, 'number');
    for (const label of ['a', 'b']) {
      const d = await page.evaluate((l) => window.h.dump(l), label);
      assert.deepEqual(d.events.message, [utf8(said), utf8(shouted), ALL_BYTES], label);
      assert.deepEqual(d.events.msg, [], `${label}: no chat-layer frames for an original client`);
    }
    const app = await page.evaluate(() => window.h.dump('app'));
    assert.deepEqual(app.events.message, [], 'a chat client gets no raw message');
    const msgs = app.events.msg.map((m) => JSON.parse(Buffer.from(m).toString('utf8')));
    assert.equal(msgs.length, 2, 'the bytes were not given to the chat client');
    assert.deepEqual([msgs[0].room, msgs[0].from, msgs[0].text, msgs[0].cid, msgs[0].seq],
      ['lobby', 'interop', said, 'c-1', r.say.ok.seq]);
    assert.deepEqual([msgs[1].room, msgs[1].text, msgs[1].seq], ['lobby', shouted, r.say.ok.seq + 1]);
    assert.match(msgs[1].from, /^guest-\d+$/);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

test('the original client\'s connect() rejects on a page of a foreign origin: refused with 403, never open', { timeout: 30000 }, async () => {
  // A page on another port of the same host (a real loopback server, so
  // only our server's Origin check can refuse the socket).
  const foreign = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>elsewhere</title>');
  });
  await new Promise((r) => foreign.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${foreign.address().port}`;
  const { context, page, errors, consoleLines } = await openPage(origin, `${origin}/`);
  try {
    const r = await page.evaluate(async (url) => {
      const s = new window.h.SocketIo(url);
      let opened = false;
      s.ws.addEventListener('open', () => { opened = true; });
      try {
        await s.connect();
        return { connected: true };
      } catch (e) {
        await window.h.sleep(200);
        return { connected: false, rejectedWith: e.type, readyState: s.ws.readyState, opened };
      }
    }, `ws://127.0.0.1:${port}/socket`);
    assert.deepEqual(r, { connected: false, rejectedWith: 'error', readyState: 3, opened: false });
    assert.ok(consoleLines.some((l) => l.includes('Unexpected response code: 403')),
      `the server refused the handshake: ${consoleLines.join(' | ')}`);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
    foreign.close();
  }
});

test('with --guests deny, the original client opens and is closed at once with 1008 and a reason a person can read', { timeout: 30000 }, async () => {
  const dir = mkdtempSync(joinPath(tmpdir(), 'chat-interop-deny-'));
  const denying = await startServer(dir, ['--guests', 'deny']);
  const denyPort = Number(denying.addr.split(':').pop());
  const { context, page, errors } = await openPage(`http://127.0.0.1:${denyPort}`);
  try {
    const r = await page.evaluate(async () => {
      const s = new window.h.SocketIo('ws://' + location.host + '/socket');
      const closed = new Promise((resolve) => s.ws.addEventListener('close', (e) => resolve({ code: e.code, reason: e.reason, clean: e.wasClean })));
      let connected = true;
      try { await s.connect(); } catch { connected = false; }
      return { connected, ...(await closed) };
    });
    assert.deepEqual(r, {
      connected: true, code: 1008, reason: 'sign in to chat here: this server does not allow guests', clean: true,
    });
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
    await stopServer(denying.proc);
    rmSync(dir, { recursive: true, force: true });
  }
  // The default server (guests allowed) still chats with it: the tests above.
  const { context: ok, page: okPage } = await openPage();
  try {
    await openClients(okPage, ['still']);
    await okPage.evaluate(() => window.h.alive('still', 'guests allowed'));
  } finally {
    await ok.close();
  }
});
