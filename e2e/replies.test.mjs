// Replies in the app, end to end: the release binary (app embedded, port
// 0, its own data directory) in headless Chromium. Two guests in #lobby:
// ben answers amy's "question?" through its "Reply" action (the bar above
// the composer, Escape cancels, one pending reply per room) and amy sees
// the quote above "answer!". Hundreds of messages later a reply's quote
// names "an earlier message"; activating it loads older history until the
// original is there, which is highlighted and takes the cursor. A reply
// to a message its author then deletes says "a deleted message". axe-core
// checks the bar and the quotes. Screenshots: e2e/artifacts/replies-*.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE = require.resolve('axe-core/axe.min.js');
const root = new URL('..', import.meta.url).pathname;
const binary = process.env.CHAT_SERVER_BIN ?? `${root}target/release/server`;
const artifacts = `${root}e2e/artifacts`;
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
// Seeding hundreds of messages from one connection needs no rate limit.
const SERVER_FLAGS = ['--rate-limit', '0', '--max-connections-per-ip', '0',
  '--rooms-per-ip-per-minute', '0', '--sessions-per-ip-per-minute', '0'];
const DESKTOP = { width: 1100, height: 700 };
const WAIT = 15000;

let browser;
const dirs = [];

const log = (...args) => console.log('[replies]', ...args);

function startServer() {
  const dir = mkdtempSync(joinPath(tmpdir(), 'chat-replies-'));
  dirs.push(dir);
  return new Promise((resolve, reject) => {
    const proc = spawn(binary, ['--addr', '127.0.0.1:0', ...SERVER_FLAGS, '--data-dir', dir], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    let found = false;
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error('server did not start')); }, WAIT);
    // Keeps reading (the server logs to stdout) so that it never blocks.
    proc.stdout.on('data', (chunk) => {
      if (found) return;
      out += chunk;
      const m = out.match(/listening on http:\/\/\S+:(\d+)/);
      if (m) { found = true; clearTimeout(timer); resolve({ proc, base: `http://127.0.0.1:${m[1]}` }); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); if (!found) reject(new Error(`server exited ${code}`)); });
  });
}

function stopServer(proc) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve(proc.exitCode);
    const kill = setTimeout(() => proc.kill('SIGKILL'), WAIT);
    proc.once('exit', (code) => { clearTimeout(kill); resolve(code); });
    proc.kill('SIGTERM');
  });
}

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: FLAGS });
});

after(async () => {
  await browser?.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const exactly = (text) => new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);

// A guest who names themself in the nickname dialog, in a fresh browser.
async function guest(base, nick, opened) {
  const context = await browser.newContext({ viewport: DESKTOP, locale: 'en-US', bypassCSP: true });
  context.setDefaultTimeout(WAIT);
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  opened.push({ context, page, errors });
  await page.goto(`${base}/`);
  await online(page);
  await page.getByTestId('nick-input').fill(nick);
  await page.getByTestId('nick-input').press('Enter');
  await page.getByTestId('nick-dialog').waitFor({ state: 'hidden' });
  await page.getByTestId('nick-button').filter({ hasText: exactly(`Nickname: ${nick}`) }).waitFor();
  return page;
}

const online = (page) => page.getByTestId('banner-text').filter({ hasText: /^Online$/ }).waitFor();

// A plain protocol client in a page of the server's origin (so the
// socket's Origin is allowed), for seeding a room quickly.
async function rawClient(base, nick, opened) {
  const context = await browser.newContext();
  opened.push({ context, errors: [] });
  const page = await context.newPage();
  await page.goto(`${base}/healthz`);
  const hello = await page.evaluate(async ({ url, name }) => {
    const enc = new TextEncoder();
    const dec = new TextDecoder();
    const ws = new WebSocket(url, 'websocket.io-rpc-v0.1');
    ws.binaryType = 'arraybuffer';
    await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = () => fail(new Error('socket did not open')); });
    let nextId = 1;
    const waiting = new Map();
    ws.onmessage = (e) => {
      const b = new Uint8Array(e.data);
      if (b[0] !== 4) return;
      const id = new DataView(e.data).getUint32(1);
      const w = waiting.get(id);
      waiting.delete(id);
      if (w) w(JSON.parse(dec.decode(b.subarray(5))));
    };
    // Request: 0x02, u32 id, u8 name length, name, JSON payload.
    const call = (event, payload) => new Promise((resolve) => {
      const id = nextId;
      nextId += 1;
      waiting.set(id, resolve);
      const n = enc.encode(event);
      const p = enc.encode(JSON.stringify(payload));
      const buf = new Uint8Array(6 + n.length + p.length);
      buf[0] = 2;
      new DataView(buf.buffer).setUint32(1, id);
      buf[5] = n.length;
      buf.set(n, 6);
      buf.set(p, 6 + n.length);
      ws.send(buf);
    });
    // `say`s `prefix + i` for i in 1..=count, up to 60 unanswered at once.
    const seed = async (room, count, prefix) => {
      const errors = [];
      for (let i = 1; i <= count; i += 60) {
        const batch = [];
        for (let k = i; k < Math.min(i + 60, count + 1); k += 1) {
          batch.push(call('say', { room, text: `${prefix}${k}`, cid: `seed-${room}-${k}` }));
        }
        for (const body of await Promise.all(batch)) if (!body.ok) errors.push(body.err);
      }
      return errors;
    };
    window.raw = { call, seed };
    return call('hello', { v: 1, nick: name });
  }, { url: `${base.replace(/^http/, 'ws')}/socket`, name: nick });
  assert.ok(hello.ok, `raw hello: ${JSON.stringify(hello)}`);
  return {
    call: (event, payload) => page.evaluate(([e, p]) => window.raw.call(e, p), [event, payload]),
    seed: (room, count, prefix) => page.evaluate(([r, c, p]) => window.raw.seed(r, c, p), [room, count, prefix]),
  };
}

async function say(page, text) {
  await page.getByTestId('composer').fill(text);
  await page.getByTestId('composer').press('Enter');
}

async function join(page, room) {
  await page.getByTestId('join-input').fill(room);
  await page.getByTestId('join-button').click();
  await page.getByTestId('room-title').filter({ hasText: exactly(`#${room}`) }).waitFor();
}

// The row of the message whose text is `text`.
const row = (page, text) => page.getByTestId('message')
  .filter({ has: page.getByTestId('message-text').filter({ hasText: exactly(text) }) });
const byKey = (page, key) => page.locator(`[data-testid=message][data-key="${key}"]`);
const active = (page) => page.evaluate(() => document.activeElement?.dataset?.testid ?? document.activeElement?.tagName);
const activeKey = (page) => page.evaluate(() => document.activeElement?.dataset?.key);
const shot = (page, name) => page.screenshot({ path: `${artifacts}/replies-${name}.png` });

// Polls `check` until it returns a truthy value.
async function until(check, what, timeout = WAIT) {
  const end = Date.now() + timeout;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// The stored key (`s<seq>`) of the row whose text is `text`.
const keyOf = (page, text) => until(async () => {
  const k = await row(page, text).getAttribute('data-key');
  return /^s\d+$/.test(k) && k;
}, `"${text}" to be stored`);

// axe-core's violations on the page (none expected).
async function axe(page, state) {
  await page.addScriptTag({ path: AXE });
  const result = await page.evaluate(() => window.axe.run(document, {
    rules: { 'label-content-name-mismatch': { enabled: true } },
    resultTypes: ['violations'],
  }));
  const violations = result.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  log(`axe ${state}: ${violations.length} violation(s)`);
  assert.deepEqual(violations, [], `axe finds nothing (${state})`);
}

// Chooses "Reply" on the row `r` (its actions show on hover).
async function reply(r) {
  await r.hover();
  await r.getByTestId('reply-message').click();
}

test('a guest replies through the UI; the other sees the quote; a quote far back loads older history and goes to the original', { timeout: 180000 }, async () => {
  const { proc, base } = await startServer();
  const opened = [];
  try {
    const a = await guest(base, 'amy', opened);
    const b = await guest(base, 'ben', opened);
    await say(a, 'question?');
    const key = await keyOf(b, 'question?');
    const seq = Number(key.slice(1));

    // "Reply" shows the bar above the composer, with the cursor in it.
    await reply(row(b, 'question?'));
    const bar = b.getByTestId('reply-bar');
    await bar.getByTestId('reply-what').filter({ hasText: exactly('Replying to amy: question?') }).waitFor();
    await until(async () => await active(b) === 'composer', 'the cursor in the composer');
    assert.equal(await bar.getByRole('button', { name: 'Cancel reply' }).count(), 1);
    await shot(b, 'bar');
    await axe(b, 'reply bar open');

    // Escape cancels; ✕ too (the cursor back in the composer).
    await b.keyboard.press('Escape');
    await bar.waitFor({ state: 'detached' });
    await reply(row(b, 'question?'));
    await bar.getByTestId('reply-cancel').click();
    await bar.waitFor({ state: 'detached' });
    await until(async () => await active(b) === 'composer', 'the cursor back in the composer');

    // One pending reply per room: another room has none, and coming back
    // finds this one's again.
    await reply(row(b, 'question?'));
    await bar.waitFor();
    await join(b, 'side');
    assert.equal(await bar.count(), 0, 'no reply pending in #side');
    await b.getByTestId('room-lobby').click();
    await b.getByTestId('room-title').filter({ hasText: exactly('#lobby') }).waitFor();
    await bar.getByTestId('reply-what').filter({ hasText: exactly('Replying to amy: question?') }).waitFor();

    // Sending attaches the reply and clears the bar.
    await say(b, 'answer!');
    await bar.waitFor({ state: 'detached' });
    const answer = row(a, 'answer!');
    await answer.waitFor();
    const quote = answer.getByRole('button', { name: 'In reply to amy: question?. Go to message' });
    await quote.waitFor();
    assert.equal(await quote.textContent(), '↩amy: question?');
    // The quote is above the text.
    const [qBox, tBox] = [await quote.boundingBox(), await answer.getByTestId('message-text').boundingBox()];
    assert.ok(qBox.y + qBox.height <= tBox.y + 1, 'the quote sits above the text');
    await row(b, 'answer!').getByTestId('reply-quote').waitFor();
    await shot(a, 'quote');
    await axe(a, 'a quote');

    // Activating it (here, loaded) goes to the original.
    await quote.click();
    await until(async () => await activeKey(a) === key, 'the cursor on the original');
    assert.equal(await byKey(a, key).evaluate((el) => el.classList.contains('highlighted')), true);

    // Hundreds of messages later, a reply to the same question: after a
    // reload only the newest messages are loaded, so the quote says "an
    // earlier message" until it is activated.
    const raw = await rawClient(base, 'seeder', opened);
    assert.ok((await raw.call('join', { room: 'lobby' })).ok);
    assert.deepEqual(await raw.seed('lobby', 450, 'filler '), []);
    const late = await raw.call('say', { room: 'lobby', text: 'late answer', cid: 'late-1', reply: seq });
    assert.ok(late.ok, JSON.stringify(late));
    await a.reload();
    await online(a);
    const lateRow = row(a, 'late answer');
    await lateRow.waitFor();
    const far = lateRow.getByRole('button', { name: 'In reply to an earlier message. Go to message' });
    await far.waitFor();
    assert.equal(await byKey(a, key).count(), 0, 'the original is not loaded');
    await far.click();
    await until(async () => await activeKey(a) === key, 'the cursor on the original, loaded from older history', 30000);
    const original = byKey(a, key);
    assert.equal(await original.evaluate((el) => el.classList.contains('highlighted')), true, 'highlighted');
    assert.equal(await original.getByTestId('message-text').textContent(), 'question?');
    const box = await original.boundingBox();
    const list = await a.getByTestId('messages').boundingBox();
    assert.ok(box.y >= list.y - 1 && box.y + box.height <= list.y + list.height + 1, 'scrolled into view');
    await shot(a, 'gone-to-original');
    // The window moved back there (hundreds of lines from the reply).
    assert.equal(await lateRow.count(), 0, 'the window moved to the original');
    // The highlight is brief.
    await until(async () => !(await original.evaluate((el) => el.classList.contains('highlighted'))), 'the highlight to fade', 8000);

    for (const u of opened) assert.deepEqual(u.errors, [], 'no errors in the page');
  } finally {
    for (const u of opened) await u.context.close().catch(() => {});
    await stopServer(proc);
  }
});

test('a reply to a message its author then deletes says "a deleted message"', { timeout: 120000 }, async () => {
  const { proc, base } = await startServer();
  const opened = [];
  try {
    const a = await guest(base, 'amy', opened);
    const b = await guest(base, 'ben', opened);
    await say(a, 'soon gone');
    const key = await keyOf(b, 'soon gone');
    await reply(row(b, 'soon gone'));
    await say(b, 'replying to it');
    await row(a, 'replying to it').getByRole('button', { name: 'In reply to amy: soon gone. Go to message' }).waitFor();

    // amy deletes her own message.
    await byKey(a, key).hover();
    await byKey(a, key).getByTestId('delete-message').click();
    await byKey(a, key).getByTestId('confirm-delete-yes').click();
    await byKey(a, key).getByTestId('message-deleted').waitFor();

    for (const page of [a, b]) {
      const quote = row(page, 'replying to it').getByTestId('reply-quote');
      await quote.filter({ hasText: /a deleted message$/ }).waitFor();
      assert.equal(await quote.getAttribute('aria-label'), 'In reply to a deleted message. Go to message');
    }
    assert.equal(await byKey(b, key).getByTestId('reply-message').count(), 0, 'no "Reply" on a deleted message');
    await shot(b, 'deleted-quote');
    await axe(b, 'a quote of a deleted message');
    for (const u of opened) assert.deepEqual(u.errors, [], 'no errors in the page');
  } finally {
    for (const u of opened) await u.context.close().catch(() => {});
    await stopServer(proc);
  }
});
