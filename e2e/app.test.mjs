// End-to-end tests of the app's UI fixes (the items 1 to 11, plus
// axe-core in light/dark × desktop/phone and a room of 100,000 messages),
// each against its own release binary (app embedded, port 0) in headless
// Chromium. Every test asserts what a person sees (texts, focus, places),
// with bounded waits; screenshots of each fixed state go to
// e2e/artifacts/app-NN-*.png; figures are printed on lines starting "[app]".
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer as createTcpServer, connect } from 'node:net';
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
// No limit gets in the way of a test that opens many sessions and rooms.
const SERVER_FLAGS = ['--rate-limit', '0', '--max-connections-per-ip', '0',
  '--rooms-per-ip-per-minute', '0', '--sessions-per-ip-per-minute', '0'];
const DESKTOP = { width: 1100, height: 700 };
const PHONE = { width: 390, height: 844 };
const WAIT = 15000;

let browser;
const servers = new Set();
const dataDirs = new Set();

const log = (...args) => console.log('[app]', ...args);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- servers

function startServer({ port = 0, data, extra = [] } = {}) {
  if (!data) {
    data = mkdtempSync(joinPath(tmpdir(), 'chat-e2e-app-'));
    dataDirs.add(data);
  }
  return new Promise((resolve, reject) => {
    const proc = spawn(binary, ['--addr', `127.0.0.1:${port}`, ...SERVER_FLAGS, '--data-dir', data, ...extra],
      { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    let found = false;
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error('server did not start')); }, 15000);
    // Keeps reading (the server logs to stdout) so that it never blocks.
    proc.stdout.on('data', (chunk) => {
      if (found) return;
      out += chunk;
      const m = out.match(/listening on http:\/\/\S+:(\d+)/);
      if (m) {
        found = true;
        clearTimeout(timer);
        const server = { proc, port: Number(m[1]), data, extra, base: `http://127.0.0.1:${m[1]}` };
        servers.add(server);
        resolve(server);
      }
    });
    proc.on('exit', (code) => { clearTimeout(timer); if (!found) reject(new Error(`server exited ${code}`)); });
  });
}

function stopServer(server) {
  servers.delete(server);
  const { proc } = server;
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve(proc.exitCode);
    const kill = setTimeout(() => proc.kill('SIGKILL'), 15000);
    proc.once('exit', (code) => { clearTimeout(kill); resolve(code); });
    proc.kill('SIGTERM');
  });
}

// The same server again: same port, same data.
const restartServer = (s) => startServer({ port: s.port, data: s.data, extra: s.extra });

// A TCP gate in front of the server that passes plain HTTP always, and the
// socket (`GET /socket`) only while `holdSockets` is false; `cutSockets`
// drops the sockets passing now. The page loads through it, so a reload
// works while its socket is held off.
function socketGate() {
  const gate = { holdSockets: false, target: 0, port: 0, live: new Set() };
  const srv = createTcpServer((client) => {
    client.on('error', () => {});
    client.once('data', (first) => {
      const isSocket = /^GET \/socket[ ?]/.test(first.toString('latin1', 0, 32));
      if (isSocket && gate.holdSockets) { client.destroy(); return; }
      const upstream = connect(gate.target, '127.0.0.1');
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
      upstream.write(first);
      client.pipe(upstream);
      upstream.pipe(client);
      if (isSocket) {
        gate.live.add(client);
        client.on('close', () => gate.live.delete(client));
      }
    });
  });
  gate.listen = () => new Promise((r) => srv.listen(0, '127.0.0.1', () => { gate.port = srv.address().port; r(); }));
  gate.cutSockets = () => { for (const c of gate.live) c.destroy(); };
  gate.close = () => new Promise((r) => { gate.cutSockets(); srv.close(r); });
  return gate;
}

// ---------------------------------------------------------------- pages

// Helpers every app page has (added before the app's own scripts).
function pageHelpers() {
  window.__t = {
    list: () => document.querySelector('[data-testid=messages]'),
    // The row at the top of the message list's view, and how far below the
    // list's top edge it starts.
    top() {
      const list = this.list();
      if (!list) return null;
      const box = list.getBoundingClientRect();
      for (const el of list.querySelectorAll('[data-key]')) {
        const r = el.getBoundingClientRect();
        if (r.bottom > box.top + 1) {
          const text = el.querySelector('[data-testid=message-text]')?.textContent ?? el.textContent;
          return { key: el.dataset.key, text, offset: Math.round((r.top - box.top) * 10) / 10 };
        }
      }
      return null;
    },
    // The same, among messages only (what a person reads).
    topMessage() {
      const list = this.list();
      const box = list.getBoundingClientRect();
      for (const el of list.querySelectorAll('[data-testid=message]')) {
        const r = el.getBoundingClientRect();
        if (r.bottom > box.top + 1) {
          const text = el.querySelector('[data-testid=message-text]').textContent;
          return { key: el.dataset.key, text, offset: Math.round((r.top - box.top) * 10) / 10 };
        }
      }
      return null;
    },
    // Where the row `key` starts below the list's top edge (null: not in the page).
    offsetOf(key) {
      const list = this.list();
      const el = list.querySelector(`[data-key="${key}"]`);
      if (!el) return null;
      return Math.round((el.getBoundingClientRect().top - list.getBoundingClientRect().top) * 10) / 10;
    },
    atBottom() {
      const el = this.list();
      return el.scrollHeight - el.scrollTop - el.clientHeight < 2;
    },
    inView(text) {
      const list = this.list();
      const box = list.getBoundingClientRect();
      const el = [...list.querySelectorAll('[data-testid=message-text]')].find((e) => e.textContent === text);
      if (!el) return false;
      const r = el.getBoundingClientRect();
      return r.top >= box.top - 1 && r.bottom <= box.bottom + 1;
    },
    frames: (n = 2) => new Promise((resolve) => {
      const step = (k) => (k === 0 ? resolve() : requestAnimationFrame(() => step(k - 1)));
      step(n);
    }),
    active() {
      const a = document.activeElement;
      if (!a) return null;
      return a.dataset?.testid ?? a.tagName;
    },
    // The list's rows in order: "day:LABEL", "new", "notice:TEXT" or "msg:TEXT".
    rows() {
      const rows = '[data-testid=day-divider], [data-testid=new-line], [data-testid=notice], [data-testid=message]';
      return [...this.list().querySelectorAll(rows)].map((el) => {
        const id = el.dataset.testid;
        if (id === 'day-divider') return `day:${el.textContent}`;
        if (id === 'new-line') return 'new';
        if (id === 'notice') return `notice:${el.textContent}`;
        return `msg:${el.querySelector('[data-testid=message-text]').textContent}`;
      });
    },
  };
}

async function newUser(base, { viewport = DESKTOP, colorScheme = 'light', bypassCSP = false, mobile = false, timezoneId } = {}) {
  const context = await browser.newContext({
    viewport, colorScheme, bypassCSP, locale: 'en-US', timezoneId,
    ...(mobile ? { isMobile: true, hasTouch: true, deviceScaleFactor: 1 } : {}),
  });
  context.setDefaultTimeout(WAIT);
  await context.addInitScript(pageHelpers);
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  return { context, page, errors, base, close: () => context.close() };
}

const online = (page) => page.getByTestId('banner-text').filter({ hasText: /^Online$/ }).waitFor();
const exactly = (text) => new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
const nickIs = (page, nick) => page.getByTestId('nick-button').filter({ hasText: exactly(`Nickname: ${nick}`) }).waitFor();

// A new visitor who names themself in the nickname dialog.
async function openUser(base, nick, options) {
  const user = await newUser(base, options);
  const { page } = user;
  try {
    await page.goto(`${base}/`);
    await online(page);
    await page.getByTestId('nick-dialog').waitFor({ state: 'visible' });
    await page.getByTestId('nick-input').fill(nick);
    await page.getByTestId('nick-input').press('Enter');
    await page.getByTestId('nick-dialog').waitFor({ state: 'hidden' });
    await nickIs(page, nick);
  } catch (e) {
    // What the page showed instead (the user is not tracked yet).
    const seen = await page.evaluate(() => {
      const text = (id) => document.querySelector(`[data-testid=${id}]`)?.textContent ?? null;
      return {
        nick: text('nick-button'), banner: text('banner-text'), nickError: text('nick-error'),
        composerError: text('composer-error'), dialogOpen: document.querySelector('[data-testid=nick-dialog]')?.open ?? null,
      };
    }).catch((why) => String(why));
    await page.screenshot({ path: `${artifacts}/open-user-${nick}-failed.png` }).catch(() => {});
    await user.close().catch(() => {});
    throw new Error(`${nick} could not name themself: the page showed ${JSON.stringify(seen)}`, { cause: e });
  }
  return user;
}

async function join(page, room) {
  await page.getByTestId('join-input').fill(room);
  await page.getByTestId('join-button').click();
  await page.getByTestId('room-title').filter({ hasText: exactly(`#${room}`) }).waitFor();
}

async function pick(page, room) {
  await page.getByTestId(`room-${room}`).click();
  await page.getByTestId('room-title').filter({ hasText: exactly(`#${room}`) }).waitFor();
}

async function send(page, text) {
  await page.getByTestId('composer').fill(text);
  await page.getByTestId('composer').press('Enter');
}

const texts = (page) => page.getByTestId('message-text').allTextContents();
const notices = (page) => page.getByTestId('notice').allTextContents();
const shown = (page, text) => page.getByTestId('message-text').filter({ hasText: exactly(text) }).waitFor();
const typingText = (page) => page.getByTestId('typing').textContent();
const active = (page) => page.evaluate(() => window.__t.active());
const frames = (page, n = 2) => page.evaluate((k) => window.__t.frames(k), n);
const members = (page) => page.locator('[data-testid=members] li').allTextContents();
const roomIds = (page) => page.locator('[data-testid=rooms] [data-testid^=room-]')
  .evaluateAll((els) => els.map((e) => e.dataset.testid));
const line = (page, text, state) => page
  .locator(state ? `[data-testid=message][data-delivery=${state}]` : '[data-testid=message]')
  .filter({ has: page.getByTestId('message-text').filter({ hasText: exactly(text) }) });

// The accessible name Chromium computes for the element at `selector`.
async function axName(page, selector) {
  const cdp = await page.context().newCDPSession(page);
  try {
    const { root } = await cdp.send('DOM.getDocument', { depth: 0 });
    const { nodeId } = await cdp.send('DOM.querySelector', { nodeId: root.nodeId, selector });
    assert.ok(nodeId, `${selector} is in the page`);
    const { nodes } = await cdp.send('Accessibility.getPartialAXTree', { nodeId, fetchRelatives: false });
    return (nodes[0]?.name?.value ?? '').replace(/\s+/g, ' ').trim();
  } finally {
    await cdp.detach();
  }
}

async function shot(page, name) {
  await page.screenshot({ path: `${artifacts}/app-${name}.png` });
}

// Waits until `locator`'s text is `text` (for elements hidden while empty).
async function textIs(locator, text, what) {
  let last;
  try {
    await until(async () => { last = await locator.textContent(); return last === text; }, what);
  } catch (e) {
    throw new Error(`${e.message}: the text is ${JSON.stringify(last)}, not ${JSON.stringify(text)}`);
  }
}

// Polls `check` (sync or async) until it returns a truthy value.
async function until(check, what, timeout = WAIT, every = 50) {
  const end = Date.now() + timeout;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await sleep(every);
  }
}

// ---------------------------------------------------------------- a raw client

// A plain `websocket.io-rpc-v0.1` client in a page of the server's origin
// (so the socket's Origin is allowed): for seeding rooms and for sending
// exactly the frames a test wants.
async function rawClient(base, nick) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${base}/healthz`);
  const hello = await page.evaluate(async ({ url, nick: name }) => {
    const enc = new TextEncoder();
    const dec = new TextDecoder();
    const ws = new WebSocket(url, 'websocket.io-rpc-v0.1');
    ws.binaryType = 'arraybuffer';
    await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = () => fail(new Error('socket did not open')); });
    let nextId = 1;
    const waiting = new Map();
    const raw = { events: [], msgs: 0, closed: null };
    ws.onclose = (e) => {
      raw.closed = e.code;
      for (const w of waiting.values()) w({ err: { code: 'closed', message: `closed ${e.code}` } });
      waiting.clear();
    };
    ws.onmessage = (e) => {
      const b = new Uint8Array(e.data);
      if (b[0] === 4) {
        const id = new DataView(e.data).getUint32(1);
        const w = waiting.get(id);
        waiting.delete(id);
        if (w) w(JSON.parse(dec.decode(b.subarray(5))));
      } else if (b[0] === 1) {
        const n = b[1];
        const event = dec.decode(b.subarray(2, 2 + n));
        if (event === 'msg') { raw.msgs += 1; return; }
        let payload = null;
        try { payload = JSON.parse(dec.decode(b.subarray(2 + n))); } catch { /* not JSON */ }
        raw.events.push({ name: event, payload, at: Date.now() });
      }
    };
    // Request: 0x02, u32 id, u8 name length, name, payload. Notify: 0x01,
    // u8 name length, name, payload.
    const frame = (op, id, event, payload) => {
      const n = enc.encode(event);
      const p = enc.encode(JSON.stringify(payload));
      const head = op === 2 ? 6 : 2;
      const buf = new Uint8Array(head + n.length + p.length);
      buf[0] = op;
      if (op === 2) {
        new DataView(buf.buffer).setUint32(1, id);
        buf[5] = n.length;
      } else {
        buf[1] = n.length;
      }
      buf.set(n, head);
      buf.set(p, head + n.length);
      return buf;
    };
    raw.call = (event, payload) => new Promise((resolve) => {
      const id = nextId;
      nextId += 1;
      waiting.set(id, resolve);
      ws.send(frame(2, id, event, payload));
    });
    raw.notify = (event, payload) => ws.send(frame(1, 0, event, payload));
    // `say`s `prefix + i` for i in first..=last, pipelined: up to `window`
    // unanswered at once.
    raw.seed = (room, first, last, prefix, window = 60) => new Promise((resolve) => {
      const started = performance.now();
      const total = last - first + 1;
      let next = first;
      let inflight = 0;
      let done = 0;
      const errors = [];
      const said = {};
      const pump = () => {
        while (next <= last && inflight < window) {
          const i = next;
          next += 1;
          inflight += 1;
          raw.call('say', { room, text: `${prefix}${i}`, cid: `seed-${room}-${i}` }).then((body) => {
            inflight -= 1;
            done += 1;
            if (body.ok) {
              if (i === first || i === last) said[i] = body.ok;
            } else if (errors.length < 5) {
              errors.push({ i, err: body.err });
            } else {
              errors.push(null);
            }
            if (done === total) resolve({ count: total, ms: performance.now() - started, errors, said });
            else if (!raw.closed) pump();
          });
        }
      };
      pump();
    });
    raw.close = () => ws.close(1000);
    window.raw = raw;
    return raw.call('hello', { v: 1, nick: name });
  }, { url: `${base.replace(/^http/, 'ws')}/socket`, nick });
  assert.ok(hello.ok, `raw hello: ${JSON.stringify(hello)}`);
  return {
    page,
    nick: hello.ok.nick,
    call: (event, payload) => page.evaluate(([e, p]) => window.raw.call(e, p), [event, payload]),
    notify: (event, payload) => page.evaluate(([e, p]) => window.raw.notify(e, p), [event, payload]),
    seed: (room, first, last, prefix) => page.evaluate(([r, a, b, p]) => window.raw.seed(r, a, b, p), [room, first, last, prefix]),
    events: () => page.evaluate(() => window.raw.events),
    close: () => context.close(),
  };
}

// ---------------------------------------------------------------- set-up

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: FLAGS });
});

after(async () => {
  await browser?.close();
  for (const s of [...servers]) await stopServer(s);
  for (const d of dataDirs) rmSync(d, { recursive: true, force: true });
});

let failures = 0;

// Runs `body` with a fresh server and closes everything it opened.
async function withServer(body, options) {
  const server = await startServer(options);
  const opened = [];
  const track = (thing) => { opened.push(thing); return thing; };
  try {
    await body(server, track);
  } catch (e) {
    // What each page showed when it failed.
    failures += 1;
    for (const [i, thing] of opened.entries()) {
      if (!thing.page || !thing.errors) continue;
      try {
        await thing.page.screenshot({ path: `${artifacts}/app-failed-${failures}-${i}.png` });
        const state = await thing.page.evaluate(() => ({
          title: document.querySelector('[data-testid=room-title]')?.textContent,
          nick: document.querySelector('[data-testid=nick-button]')?.textContent,
          rows: window.__t.list() ? window.__t.rows().slice(-12) : null,
        }));
        log(`failed (${failures}), page ${i}: ${JSON.stringify(state)} (app-failed-${failures}-${i}.png)`);
      } catch { /* the page is gone */ }
    }
    throw e;
  } finally {
    for (const thing of opened.reverse()) await thing.close().catch(() => {});
    for (const s of [...servers]) await stopServer(s);
  }
}

const noErrors = (...users) => { for (const u of users) assert.deepEqual(u.errors, [], 'no errors in the page'); };

// ---------------------------------------------------------------- 1

test('1. a new visitor names themself: the dialog has the cursor, Enter sets the nickname and posts nothing', { timeout: 90000 }, async () => {
  await withServer(async (s, track) => {
    const bob = track(await openUser(s.base, 'bob'));
    const kira = track(await newUser(s.base));
    const { page } = kira;
    await page.goto(`${s.base}/`);
    await online(page);
    const dialog = page.getByTestId('nick-dialog');
    await dialog.waitFor({ state: 'visible' });
    assert.equal(await dialog.evaluate((d) => d.tagName === 'DIALOG' && d.matches(':modal')), true, 'a modal <dialog>');
    assert.equal(await active(page), 'nick-input', 'the cursor is in the nickname box, not in the composer');
    await shot(page, '01-first-visit');

    // Typed as a person types: into whatever has the focus.
    await page.keyboard.type('kira');
    await page.keyboard.press('Enter');
    await dialog.waitFor({ state: 'hidden' });
    await nickIs(page, 'kira');
    assert.equal(await page.getByTestId('nick-error').textContent(), '');
    assert.equal(await page.getByTestId('composer').inputValue(), '', 'nothing went to the composer');
    assert.equal(await active(page), 'composer', 'the cursor goes to the composer once the dialog closes');
    assert.equal(await page.evaluate(() => localStorage.getItem('chat.nick')), 'kira', 'remembered');
    await bob.page.getByTestId('members').getByText('kira', { exact: true }).waitFor();
    assert.deepEqual(await members(bob.page), ['bob', 'kira']);

    // A message sent after it: once bob has it, anything posted before
    // (the nickname, as guest-N) would be there too.
    await send(page, 'hello, I am kira');
    await shown(bob.page, 'hello, I am kira');
    assert.deepEqual(await texts(bob.page), ['hello, I am kira'], 'the nickname was not posted to #lobby');
    assert.deepEqual(await bob.page.getByTestId('author').allTextContents(), ['kira']);
    assert.deepEqual(await notices(bob.page), [], 'no "guest-N is now kira" line (item 11)');
    assert.deepEqual(await texts(page), ['hello, I am kira']);
    await shot(page, '01-named-nothing-posted');
    noErrors(bob, kira);
  });
});

// ---------------------------------------------------------------- 2

test('2. incoming messages and typing never move the cursor: every keystroke lands where the person types', { timeout: 120000 }, async () => {
  await withServer(async (s, track) => {
    const alice = track(await openUser(s.base, 'alice'));
    const bob = track(await openUser(s.base, 'bob'));
    const a = alice.page;
    // bob types (alice is told he is typing) and sends; alice has both
    // before her next keystroke.
    const interrupt = async (text) => {
      await bob.page.getByTestId('composer').pressSequentially(text);
      await a.getByTestId('typing').filter({ hasText: /^bob is typing…$/ }).waitFor();
      await bob.page.getByTestId('composer').press('Enter');
      await shown(a, text);
    };

    // The join box.
    await a.getByTestId('join-input').click();
    const pings = [];
    for (const ch of 'support') {
      await a.keyboard.type(ch);
      const text = `ping ${pings.length + 1}`;
      pings.push(text);
      await interrupt(text);
      assert.equal(await active(a), 'join-input', `the cursor stays in the join box after "${text}"`);
    }
    assert.equal(await a.getByTestId('join-input').inputValue(), 'support', 'every keystroke landed in the join box');
    assert.equal(await a.getByTestId('composer').inputValue(), '', 'none in the composer');
    assert.deepEqual(await texts(a), pings);
    await shot(a, '02-join-box-kept-every-key');
    await a.keyboard.press('Enter');
    await a.getByTestId('room-title').filter({ hasText: /^#support$/ }).waitFor();
    assert.equal(await active(a), 'composer', 'joining (a person\'s action) puts the cursor in the composer');
    assert.deepEqual(await texts(bob.page), pings, 'nothing of "support" was posted to #lobby');

    // The rename dialog, with bob talking in the room on screen.
    await join(bob.page, 'support');
    await a.getByTestId('members').getByText('bob', { exact: true }).waitFor();
    await a.getByTestId('nick-button').click();
    await a.getByTestId('nick-dialog').waitFor({ state: 'visible' });
    assert.equal(await active(a), 'nick-input');
    const renames = [];
    for (const ch of 'alicia') {
      // The first key replaces the selected old nickname.
      await a.keyboard.type(ch);
      const text = `rename ${renames.length + 1}`;
      renames.push(text);
      await interrupt(text);
      assert.equal(await active(a), 'nick-input', `the cursor stays in the dialog after "${text}"`);
    }
    assert.equal(await a.getByTestId('nick-input').inputValue(), 'alicia');
    assert.equal(await a.getByTestId('composer').inputValue(), '');
    await shot(a, '02-rename-dialog-kept-every-key');
    await a.keyboard.press('Enter');
    await a.getByTestId('nick-dialog').waitFor({ state: 'hidden' });
    await nickIs(a, 'alicia');
    assert.equal(await active(a), 'nick-button', 'focus goes back to what opened the dialog');
    await send(bob.page, 'after the rename');
    await shown(a, 'after the rename');
    assert.deepEqual(await texts(bob.page), [...renames, 'after the rename'], 'nothing typed in the dialog was posted');
    assert.deepEqual(await texts(a), [...renames, 'after the rename']);
    noErrors(alice, bob);
  });
});

// ---------------------------------------------------------------- 3

test('3. /leave in #lobby is refused at the composer, and #lobby has no leave button', { timeout: 90000 }, async () => {
  await withServer(async (s, track) => {
    const alice = track(await openUser(s.base, 'alice'));
    const bob = track(await openUser(s.base, 'bob'));
    const a = alice.page;
    await join(a, 'side');
    await pick(a, 'lobby');
    assert.deepEqual(await roomIds(a), ['room-lobby', 'room-side']);
    assert.equal(await a.getByTestId('leave-lobby').count(), 0, 'no leave button for #lobby');
    assert.equal(await a.getByTestId('leave-side').count(), 1);

    await send(a, '/leave');
    await a.getByTestId('composer-error').filter({ hasText: /^#lobby cannot be left: everyone is in it$/ }).waitFor();
    assert.equal(await a.getByTestId('composer-error').getAttribute('role'), 'alert');
    assert.equal(await a.getByTestId('composer').inputValue(), '/leave', 'the text stays to be corrected');
    assert.equal(await a.getByTestId('composer').getAttribute('aria-invalid'), 'true');
    assert.deepEqual(await roomIds(a), ['room-lobby', 'room-side'], 'still in #lobby');
    assert.deepEqual(await notices(a), [], 'said at the input, not in the chat log');
    await shot(a, '03-leave-lobby-refused');
    // Still a member: bob's message in #lobby reaches alice.
    await send(bob.page, 'still together');
    await shown(a, 'still together');
    assert.deepEqual(await members(bob.page), ['alice', 'bob']);

    // Other mistakes are said there too; /leave elsewhere leaves.
    await send(a, '/frobnicate');
    await a.getByTestId('composer-error').filter({ hasText: /^unknown command \/frobnicate; try \/help$/ }).waitFor();
    await a.getByTestId('composer').fill('');
    await pick(a, 'side');
    await send(a, '/leave');
    await a.getByTestId('room-title').filter({ hasText: /^#lobby$/ }).waitFor();
    await until(async () => (await roomIds(a)).join() === 'room-lobby', '#side to be left');
    assert.deepEqual(await notices(a), []);
    noErrors(alice, bob);
  });
});

// ---------------------------------------------------------------- 4

test('4. "X is typing…": said at most every 3 s, ends when X switches rooms, and expires 6 s after the last word', { timeout: 120000 }, async () => {
  await withServer(async (s, track) => {
    const alice = track(await openUser(s.base, 'alice'));
    const bob = track(await openUser(s.base, 'bob'));
    const watcher = track(await rawClient(s.base, 'watcher'));
    const a = alice.page;
    await join(a, 'x');
    await join(bob.page, 'x');
    await pick(a, 'lobby');
    await pick(bob.page, 'lobby');
    const typing = bob.page.getByTestId('typing');
    const aliceTyping = async () => (await watcher.events())
      .filter((e) => e.name === 'typing' && e.payload?.nick === 'alice');

    // The sender: "on" at most every 3 s while typing, "off" 3 s after the
    // last key.
    const composer = a.getByTestId('composer');
    await composer.click();
    const started = Date.now();
    await composer.pressSequentially('a'.repeat(70), { delay: 100 });
    const lastKey = Date.now();
    await until(async () => (await aliceTyping()).some((e) => !e.payload.on), 'typing off', 8000);
    const cadence = await aliceTyping();
    const ons = cadence.filter((e) => e.payload.on).map((e) => e.at);
    const offs = cadence.filter((e) => !e.payload.on).map((e) => e.at);
    log(`typing for ${lastKey - started} ms sent "on" at +${ons.map((t) => t - started).join(', +')} ms and "off" ${offs.map((t) => t - lastKey).join(', ')} ms after the last key`);
    // At most one "on" per 3 s of typing (however long a busy machine made it take).
    assert.ok(ons.length >= 2 && ons.length <= Math.floor((lastKey - started) / 2900) + 1,
      `"on" ${ons.length} times in ${lastKey - started} ms`);
    for (let i = 1; i < ons.length; i += 1) assert.ok(ons[i] - ons[i - 1] >= 2900, 'at most every 3 s');
    assert.equal(offs.length, 1, 'one "off"');
    assert.ok(offs[0] > ons.at(-1), '"off" comes last');
    // Not before the 3 s idle timer (less the time the last key took to
    // reach the page); no tight upper bound: a busy machine delays timers.
    assert.ok(offs[0] - lastKey >= 2500 && offs[0] - lastKey <= 15000, `"off" ${offs[0] - lastKey} ms after the last key`);
    assert.ok(cadence.every((e) => e.payload.room === 'lobby'));
    await typing.filter({ hasText: /^$/ }).waitFor();

    // Mid-sentence, alice picks #x: bob's #lobby stops showing her typing at once.
    await composer.pressSequentially(' hello wor');
    await typing.filter({ hasText: /^alice is typing…$/ }).waitFor();
    await shot(bob.page, '04-alice-typing');
    let t0 = Date.now();
    await a.getByTestId('room-x').click();
    // It ends on the "off" (proven below to go to #lobby), measured here at
    // tens of ms; the deadline is generous for a busy machine.
    await typing.filter({ hasText: /^$/ }).waitFor({ timeout: 10000 });
    const afterClick = Date.now() - t0;
    const stopped = (await aliceTyping()).filter((e) => e.at >= t0);
    assert.deepEqual(stopped.map((e) => [e.payload.room, e.payload.on]), [['lobby', false]], '"off" goes to #lobby');

    // The same without leaving the composer: /join from the keyboard.
    await pick(a, 'lobby');
    assert.equal(await composer.inputValue(), `${'a'.repeat(70)} hello wor`, '#lobby\'s draft');
    await composer.press('End');
    await composer.pressSequentially(' again');
    await typing.filter({ hasText: /^alice is typing…$/ }).waitFor();
    // The "off" leaves as soon as the box holds a command (a command is not
    // a message), so the clock starts before the command is typed.
    t0 = Date.now();
    await composer.fill('/join y');
    await composer.press('Enter');
    await a.getByTestId('room-title').filter({ hasText: /^#y$/ }).waitFor();
    await typing.filter({ hasText: /^$/ }).waitFor({ timeout: 10000 });
    const afterJoin = Date.now() - t0;
    const stoppedByJoin = (await aliceTyping()).filter((e) => e.at >= t0);
    assert.deepEqual(stoppedByJoin.map((e) => [e.payload.room, e.payload.on]), [['lobby', false]], '"off" goes to #lobby');
    log(`"alice is typing…" ended ${afterClick} ms after she picked #x, ${afterJoin} ms after /join y`);
    await shot(bob.page, '04-typing-ended-on-switch');

    // The receiver: a typist who never says "off" expires 6 s after their
    // last "on" (repeated "on"s keep it).
    const say = (on) => watcher.notify('typing', { room: 'lobby', on });
    await say(true);
    await typing.filter({ hasText: /^watcher is typing…$/ }).waitFor();
    await sleep(3000);
    await say(true);
    await sleep(3000);
    await say(true);
    const lastOn = Date.now();
    await sleep(2500);
    assert.equal(await typingText(bob.page), 'watcher is typing…', 'kept alive by the repeats (8.5 s after the first)');
    await typing.filter({ hasText: /^$/ }).waitFor({ timeout: 30000 });
    const expired = Date.now() - lastOn;
    log(`a silent typist disappeared ${expired} ms after the last "on"`);
    // Not before the 6 s it is kept (less a second for this test's clock
    // against the page's); it does end (the wait above), however late.
    assert.ok(expired >= 5000, `expired after ${expired} ms`);
    noErrors(alice, bob);
  });
});

// ---------------------------------------------------------------- 5

test('5. each room has its own draft, kept across a reload; Enter posts only where it was typed', { timeout: 90000 }, async () => {
  await withServer(async (s, track) => {
    const alice = track(await openUser(s.base, 'alice'));
    const bob = track(await openUser(s.base, 'bob'));
    const a = alice.page;
    const composer = a.getByTestId('composer');
    await join(a, 'x');
    await join(bob.page, 'x');
    await pick(bob.page, 'lobby');

    await composer.pressSequentially('draft for x');
    await pick(a, 'lobby');
    assert.equal(await composer.inputValue(), '', '#lobby has its own (empty) draft');
    assert.equal(await active(a), 'composer');
    await a.keyboard.press('Enter');
    await a.keyboard.type('lobby line');
    await a.keyboard.press('Enter');
    await shown(bob.page, 'lobby line');
    assert.deepEqual(await texts(bob.page), ['lobby line'], 'the draft of #x was not posted to #lobby');
    await a.keyboard.type('lobby draft');
    await pick(a, 'x');
    assert.equal(await composer.inputValue(), 'draft for x', 'back in #x, its draft');
    await shot(a, '05-draft-of-x');

    await a.reload();
    await online(a);
    await a.getByTestId('room-title').filter({ hasText: /^#lobby$/ }).waitFor();
    assert.equal(await composer.inputValue(), 'lobby draft', 'kept across a reload');
    await pick(a, 'x');
    assert.equal(await composer.inputValue(), 'draft for x');
    await composer.press('Enter');
    await line(a, 'draft for x', 'sent').waitFor();
    assert.equal(await composer.inputValue(), '');
    assert.equal(await a.evaluate(() => localStorage.getItem('chat.draft.x')), null, 'a sent draft is forgotten');
    assert.equal(await a.evaluate(() => localStorage.getItem('chat.draft.lobby')), 'lobby draft');
    await pick(bob.page, 'x');
    await shown(bob.page, 'draft for x');
    assert.deepEqual(await texts(bob.page), ['draft for x']);
    await pick(bob.page, 'lobby');
    assert.deepEqual(await texts(bob.page), ['lobby line']);
    await pick(a, 'lobby');
    assert.equal(await composer.inputValue(), 'lobby draft');
    await shot(a, '05-lobby-draft-after-reload');
    noErrors(alice, bob);
  });
});

// ---------------------------------------------------------------- 6

test('6. a refused nickname is said inside the dialog; a second tab of the same browser offers to take over, as the same person', { timeout: 90000 }, async () => {
  await withServer(async (s, track) => {
    const bob = track(await openUser(s.base, 'taken'));
    const carol = track(await newUser(s.base));
    const c = carol.page;
    await c.goto(`${s.base}/`);
    await online(c);
    await c.getByTestId('nick-dialog').waitFor({ state: 'visible' });
    await c.keyboard.type('taken');
    await c.keyboard.press('Enter');
    const error = c.getByTestId('nick-error');
    await error.filter({ hasText: /^cannot use that nickname: 'taken' is taken$/ }).waitFor();
    assert.equal(await c.getByTestId('nick-dialog').isVisible(), true, 'the dialog stays open');
    assert.equal(await c.getByTestId('nick-input').getAttribute('aria-invalid'), 'true');
    assert.equal(await error.getAttribute('role'), 'alert');
    // Inside the dialog, and nothing covers it.
    assert.equal(await error.evaluate((el) => {
      const r = el.getBoundingClientRect();
      const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
      return el.closest('dialog') !== null && (top === el || el.contains(top));
    }), true, 'the error shows in the dialog, uncovered');
    assert.equal(await active(c), 'nick-input');
    await shot(c, '06-nickname-refused-in-dialog');
    await c.keyboard.press('Control+A');
    await c.keyboard.type('carol');
    assert.equal(await error.textContent(), '', 'the error goes once the name changes');
    await c.keyboard.press('Enter');
    await c.getByTestId('nick-dialog').waitFor({ state: 'hidden' });
    await nickIs(c, 'carol');

    // With the dialog closed, /nick's refusal is said at the composer.
    await send(c, '/nick taken');
    await c.getByTestId('composer-error').filter({ hasText: /^cannot use that nickname: 'taken' is taken$/ }).waitFor();
    await nickIs(c, 'carol');
    await c.getByTestId('composer').fill('');

    // A second tab of carol's browser.
    await until(async () => (await members(bob.page)).join() === 'carol,taken', 'bob to see carol');
    const seen = new Set();
    const watch = setInterval(async () => {
      for (const n of await members(bob.page).catch(() => [])) seen.add(n);
    }, 50);
    try {
      const tab = await carol.context.newPage();
      tab.on('pageerror', (e) => carol.errors.push(String(e)));
      await tab.goto(`${s.base}/`);
      await tab.getByTestId('elsewhere').waitFor();
      assert.equal(await tab.locator('[data-testid=elsewhere] h1').textContent(), 'Chat is open in another tab');
      assert.equal(await tab.getByTestId('composer').count(), 0);
      assert.equal(await tab.getByTestId('nick-dialog').count(), 0);
      await shot(tab, '06-second-tab-elsewhere');
      await sleep(1000);
      assert.equal(await c.getByTestId('banner-text').textContent(), 'Online', 'the first tab chats on');
      await nickIs(c, 'carol');

      await tab.getByTestId('use-here').click();
      await online(tab);
      await nickIs(tab, 'carol');
      await c.getByTestId('elsewhere').waitFor();
      await send(tab, 'from the second tab');
      await shown(bob.page, 'from the second tab');
      assert.deepEqual(await bob.page.getByTestId('author').allTextContents(), ['carol']);
      await until(async () => (await members(bob.page)).join() === 'carol,taken', 'bob to see carol once');
      await shot(tab, '06-second-tab-took-over');
      await shot(c, '06-first-tab-now-elsewhere');
    } finally {
      clearInterval(watch);
    }
    // Nobody else ever appeared: no carol-2. (A socket is a guest in the
    // lobby from the moment it opens until its hello, as in the original
    // protocol, so the taking tab may show as guest-N for that moment.)
    const others = [...seen].filter((n) => n !== 'carol' && n !== 'taken');
    assert.deepEqual(others.filter((n) => !/^guest-\d+$/.test(n)), [], `nobody else ever appeared (no carol-2): ${JSON.stringify([...seen])}`);
    noErrors(bob, carol);
  });
});

// ---------------------------------------------------------------- 7

test('7. scrolling keeps the reader\'s place: older pages, one\'s own message, switching rooms', { timeout: 150000 }, async () => {
  await withServer(async (s, track) => {
    const seed = track(await rawClient(s.base, 'seed'));
    assert.ok((await seed.call('join', { room: 'scroll' })).ok);
    const seeded = await seed.seed('scroll', 1, 400, 'line ');
    assert.deepEqual(seeded.errors, []);
    const alice = track(await openUser(s.base, 'alice'));
    const bob = track(await openUser(s.base, 'bob'));
    const a = alice.page;
    await join(bob.page, 'scroll');
    await join(a, 'scroll');
    await shown(a, 'line 400');
    const pill = a.getByTestId('new-messages');
    const number = (text) => Number(/^line (\d+)$/.exec(text)?.[1]);
    // Waits until the list's first row and the view stop changing.
    const settle = async () => {
      let last = '';
      await until(async () => {
        const now = JSON.stringify(await a.evaluate(() => [window.__t.list().querySelector('[data-key]')?.dataset.key, window.__t.top()]));
        const same = now === last;
        last = now;
        return same;
      }, 'the list to settle', WAIT, 300);
    };
    // The message texts in the page form one unbroken run.
    const contiguous = async () => {
      const nums = (await texts(a)).filter((t) => t.startsWith('line ')).map(number);
      for (let i = 1; i < nums.length; i += 1) assert.equal(nums[i], nums[i - 1] + 1, `line ${nums[i - 1]} then ${nums[i]}`);
      return nums;
    };
    await settle();

    // (a) The reader goes near the top (as a flick of the wheel does) or
    // to the very top (as dragging the scroll bar does), again and again:
    // the window moves up and older pages load above, the line being read
    // stays exactly where it was, and no "new messages" pill appears.
    const firstLoaded = Math.min(...(await texts(a)).map(number));
    let moves = 0;
    for (let i = 0; i < 40 && !(await texts(a)).includes('line 1'); i += 1) {
      // What the reader sees there, before the app hears of the scroll.
      const anchor = await a.evaluate((to) => {
        window.__t.list().scrollTop = to;
        return window.__t.topMessage();
      }, i % 2 === 0 ? 300 : 0);
      await settle();
      const offset = await a.evaluate((k) => window.__t.offsetOf(k), anchor.key);
      log(`scrolled to the top (${i % 2 === 0 ? 300 : 0} px): "${anchor.text}" was ${anchor.offset} px below the list's top, then ${offset} px`);
      assert.ok(offset !== null && Math.abs(offset - anchor.offset) <= 2, `"${anchor.text}" stays in place (${anchor.offset} → ${offset})`);
      assert.equal(await pill.count(), 0, 'no "new messages" pill for older ones');
      const nums = await contiguous();
      assert.ok(nums[0] < number(anchor.text), 'older lines are above it');
      moves += 1;
    }
    const all = await texts(a);
    assert.ok(all.includes('line 1'), 'the whole room was loaded');
    log(`older pages: the first line loaded was "line ${firstLoaded}"; ${moves} moves to the top reached "line 1"`);
    assert.ok(moves >= 2, 'several moves');
    await shot(a, '07-older-page-kept-place');

    // (b) Scrolled up: bob's message shows the pill and moves nothing;
    // alice's own message brings the view down.
    await a.evaluate(async () => { const el = window.__t.list(); el.scrollTop = el.scrollHeight / 2; await window.__t.frames(2); });
    await settle();
    const reading = await a.evaluate(() => window.__t.top());
    await send(bob.page, 'bob while alice reads');
    await pill.waitFor();
    assert.equal(await pill.textContent(), 'New messages ↓');
    assert.deepEqual(await a.evaluate(() => window.__t.top()), reading, 'the view did not move');
    await a.getByTestId('composer').fill('my own line');
    await a.getByTestId('composer').press('Enter');
    await until(() => a.evaluate(() => window.__t.atBottom() && window.__t.inView('my own line')), 'the own message in view');
    await pill.waitFor({ state: 'detached' });
    assert.equal(await a.evaluate(() => window.__t.inView('bob while alice reads')), true);
    const tail = (await texts(a)).slice(-3);
    assert.deepEqual(tail, ['line 400', 'bob while alice reads', 'my own line']);
    await shot(a, '07-own-message-in-view');

    // (c) Another room and back: the same line at the same place.
    await a.evaluate(async () => { const el = window.__t.list(); el.scrollTop = el.scrollHeight / 3; await window.__t.frames(2); });
    await settle();
    const place = await a.evaluate(() => window.__t.top());
    await pick(a, 'lobby');
    await pick(a, 'scroll');
    await settle();
    const back = await a.evaluate(() => window.__t.top());
    log(`switching rooms: "${place.text}" at ${place.offset} px, back at "${back.text}" ${back.offset} px`);
    assert.equal(back.key, place.key, 'the same line at the top');
    assert.ok(Math.abs(back.offset - place.offset) <= 2, `at the same place (${place.offset} → ${back.offset})`);
    await shot(a, '07-room-switch-kept-place');
    noErrors(alice, bob);
  });
});

// ---------------------------------------------------------------- 8

test('8. phone width: the drawer closes on a choice and on a tap outside, the title shows beside a long nickname, the menu counts unread', { timeout: 90000 }, async () => {
  await withServer(async (s, track) => {
    const long = 'Maximiliana Wolfeschlegelsteinha';
    assert.equal([...long].length, 32);
    const alice = track(await openUser(s.base, long, { viewport: PHONE, mobile: true }));
    const bob = track(await openUser(s.base, 'bob'));
    const a = alice.page;
    const menu = a.getByTestId('menu-button');
    const drawer = a.locator('#rooms-drawer');
    const expanded = () => menu.getAttribute('aria-expanded');

    // The title has room beside the longest nickname.
    const title = () => a.getByTestId('room-title').evaluate((el) => ({
      text: el.textContent, width: el.clientWidth, needs: el.scrollWidth, right: el.getBoundingClientRect().right,
    }));
    const topbar = async () => a.evaluate(() => [...document.querySelectorAll('.topbar > *')]
      .filter((el) => el.getBoundingClientRect().width > 0)
      .map((el) => Math.round(el.getBoundingClientRect().right)));
    const lobbyTitle = await title();
    log(`phone title "${lobbyTitle.text}": ${lobbyTitle.width} px shown of ${lobbyTitle.needs} px`);
    assert.ok(lobbyTitle.needs <= lobbyTitle.width, '"#lobby" is shown whole');
    assert.ok(Math.max(...await topbar()) <= PHONE.width, 'the top bar fits the screen');
    assert.equal(await expanded(), 'false');
    assert.equal(await drawer.isVisible(), false);
    await shot(a, '08-phone-long-nickname');

    // Joining from the drawer closes it.
    await menu.tap();
    assert.equal(await expanded(), 'true');
    await drawer.waitFor({ state: 'visible' });
    await shot(a, '08-phone-drawer-open');
    await a.getByTestId('join-input').tap();
    await a.keyboard.type('phone-room');
    await a.keyboard.press('Enter');
    await a.getByTestId('room-title').filter({ hasText: /^#phone-room$/ }).waitFor();
    await drawer.waitFor({ state: 'hidden' });
    assert.equal(await expanded(), 'false');
    const roomTitle = await title();
    assert.ok(roomTitle.needs <= roomTitle.width, '"#phone-room" is shown whole');
    await shot(a, '08-phone-joined-drawer-closed');

    // Picking a room closes it.
    await menu.tap();
    await drawer.waitFor({ state: 'visible' });
    await a.getByTestId('room-lobby').tap();
    await a.getByTestId('room-title').filter({ hasText: /^#lobby$/ }).waitFor();
    await drawer.waitFor({ state: 'hidden' });
    assert.equal(await expanded(), 'false');

    // A tap outside it closes it.
    await menu.tap();
    await drawer.waitFor({ state: 'visible' });
    const drawerRight = (await drawer.boundingBox()).x + (await drawer.boundingBox()).width;
    assert.ok(drawerRight < 360);
    await a.touchscreen.tap(370, 500);
    await drawer.waitFor({ state: 'hidden' });
    assert.equal(await expanded(), 'false');
    await a.getByTestId('room-title').filter({ hasText: /^#lobby$/ }).waitFor();

    // Unread messages in another room show on the menu button.
    await join(bob.page, 'phone-room');
    await send(bob.page, 'one');
    await send(bob.page, 'two');
    const badge = a.getByTestId('menu-unread');
    await badge.filter({ hasText: /^2 unread$/ }).waitFor();
    assert.equal(await badge.isVisible(), true);
    assert.equal(await axName(a, '[data-testid=menu-button]'), 'Rooms 2 unread');
    await shot(a, '08-phone-menu-unread');
    await menu.tap();
    await drawer.waitFor({ state: 'visible' });
    await textIs(a.getByTestId('room-phone-room').getByTestId('unread'), '2', 'the room\'s badge');
    assert.equal(await axName(a, '[data-testid=room-phone-room]'), '#phone-room, 2 members, 2 unread');
    await a.getByTestId('room-phone-room').tap();
    await drawer.waitFor({ state: 'hidden' });
    await shown(a, 'two');
    await badge.waitFor({ state: 'detached' });
    noErrors(alice, bob);
  });
});

// ---------------------------------------------------------------- 9

test('9. the nickname dialog is modal: Tab stays inside, the page behind takes no clicks, Escape closes it, focus goes back', { timeout: 60000 }, async () => {
  await withServer(async (s, track) => {
    const alice = track(await openUser(s.base, 'alice'));
    const a = alice.page;
    const dialog = a.getByTestId('nick-dialog');
    const inDialog = () => a.evaluate(() => {
      const el = document.activeElement;
      return { id: el?.dataset?.testid ?? el?.tagName, inside: !!el?.closest('dialog') };
    });
    await a.getByTestId('nick-button').click();
    await dialog.waitFor({ state: 'visible' });
    assert.equal(await a.getByRole('dialog', { name: 'Choose a nickname', exact: true }).getAttribute('data-testid'), 'nick-dialog');
    assert.equal(await a.locator('form[role=dialog]').count(), 0, 'no role=dialog on a form');
    assert.deepEqual(await inDialog(), { id: 'nick-input', inside: true });
    assert.equal(await a.evaluate(() => window.getSelection().toString() || document.activeElement.value.slice(
      document.activeElement.selectionStart, document.activeElement.selectionEnd)), 'alice', 'the old nickname is selected');

    const walk = async (key) => {
      const visited = [];
      for (let i = 0; i < 8; i += 1) {
        await a.keyboard.press(key);
        visited.push(await inDialog());
      }
      return visited;
    };
    for (const key of ['Tab', 'Shift+Tab']) {
      const visited = await walk(key);
      const outside = visited.filter((v) => !v.inside && v.id !== 'BODY');
      assert.deepEqual(outside, [], `${key} never leaves the dialog: ${JSON.stringify(visited)}`);
      assert.deepEqual([...new Set(visited.filter((v) => v.inside).map((v) => v.id))].sort(),
        ['nick-cancel', 'nick-input', 'nick-save', 'nick-signin'], `${key} walks the dialog`);
    }
    await shot(a, '09-dialog-modal');

    // A click on the page behind does nothing.
    const box = await a.getByTestId('composer').boundingBox();
    await a.mouse.click(box.x + box.width / 2, box.y + box.height / 2);
    assert.equal(await dialog.isVisible(), true);
    assert.notEqual(await active(a), 'composer');

    await a.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    assert.equal(await active(a), 'nick-button', 'Escape closes it and focus goes back');
    await nickIs(a, 'alice');

    // From the keyboard, and closed with Cancel.
    await a.keyboard.press('Enter');
    await dialog.waitFor({ state: 'visible' });
    assert.equal(await active(a), 'nick-input');
    await a.keyboard.type('not saved');
    await a.getByTestId('nick-cancel').click();
    await dialog.waitFor({ state: 'hidden' });
    assert.equal(await active(a), 'nick-button');
    await nickIs(a, 'alice');
    await shot(a, '09-dialog-closed-focus-back');
    noErrors(alice);
  });
});

// ---------------------------------------------------------------- 10

test('10. screen readers: the banner announces a state once, rooms read as "#x, 2 members, 1 unread", names match what shows', { timeout: 120000 }, async () => {
  await withServer(async (s, track) => {
    const alice = track(await openUser(s.base, 'alice'));
    const bob = track(await openUser(s.base, 'bob'));
    const a = alice.page;
    await join(a, 'x');
    await join(bob.page, 'x');
    await pick(a, 'lobby');
    await send(bob.page, 'one unread');
    await a.getByTestId('room-x').getByTestId('unread').waitFor();

    // Accessible names: from visually hidden text, not labels on plain elements.
    const names = {};
    const raw = {};
    for (const id of ['room-x', 'room-lobby', 'nick-button']) {
      raw[id] = await axName(a, `[data-testid=${id}]`);
      names[id] = raw[id];
    }
    log(`accessible names as Chromium computes them: ${JSON.stringify(raw)}`);
    assert.deepEqual(names, { 'room-x': '#x, 2 members, 1 unread', 'room-lobby': '#lobby, 2 members', 'nick-button': 'Nickname: alice' });
    assert.equal(await a.getByTestId('nick-button').locator('.nick').textContent(), 'alice', 'the visible text is in the name');
    assert.equal(await a.getByTestId('room-lobby').getAttribute('aria-current'), 'page');
    const labelled = await a.evaluate(() => [...document.querySelectorAll('[aria-label]')]
      .filter((el) => ['SPAN', 'DIV', 'P', 'LI'].includes(el.tagName) && !el.getAttribute('role'))
      .map((el) => el.outerHTML.slice(0, 80)));
    assert.deepEqual(labelled, [], 'no aria-label on an element without a role');
    await send(bob.page, 'hello screen reader');
    await textIs(a.getByTestId('room-x').getByTestId('unread'), '2', 'two unread in #x');
    await pick(bob.page, 'lobby');
    await send(bob.page, 'in the lobby');
    await a.getByTestId('announce').filter({ hasText: /^bob: in the lobby$/ }).waitFor();
    assert.equal(await a.getByTestId('messages').getAttribute('aria-live'), 'off', 'the list itself is not read out');
    await shot(a, '10-accessible-names');

    // The banner's live region while the server is away for 10 s.
    const banner = a.getByTestId('banner-text');
    assert.equal(await banner.getAttribute('role'), 'status');
    assert.equal(await a.getByTestId('banner-countdown').getAttribute('aria-hidden'), 'true');
    await a.evaluate(() => {
      const text = document.querySelector('[data-testid=banner-text]');
      const countdown = document.querySelector('[data-testid=banner-countdown]');
      window.bannerLog = [text.textContent];
      window.countdownLog = [];
      new MutationObserver(() => window.bannerLog.push(text.textContent))
        .observe(text, { childList: true, characterData: true, subtree: true });
      new MutationObserver(() => window.countdownLog.push(countdown.textContent))
        .observe(countdown, { childList: true, characterData: true, subtree: true });
    });
    const panel = a.getByTestId('members-panel');
    const dot = () => a.locator('[data-testid=members] .presence').first().evaluate((el) => getComputedStyle(el).backgroundColor);
    assert.equal(await panel.getAttribute('data-online'), 'true');
    const onlineDot = await dot();
    await stopServer(s);
    await banner.filter({ hasText: /^Reconnecting$/ }).waitFor();
    await sleep(10000);
    const announced = await a.evaluate(() => window.bannerLog);
    const ticks = await a.evaluate(() => window.countdownLog);
    log(`10 s offline: the live region changed ${announced.length - 1} time(s): ${JSON.stringify(announced)}; the countdown beside it changed ${ticks.length} times`);
    assert.deepEqual(announced, ['Online', 'Reconnecting'], 'one change, to "Reconnecting"');
    assert.ok(new Set(ticks.filter((t) => /^in \d+ s$/.test(t))).size >= 2, 'the countdown ticks (unannounced)');

    // Item 11: the member list while offline.
    assert.equal(await panel.getAttribute('data-online'), 'false');
    assert.match(await panel.locator('h2').textContent(), /^Members 2 · as last seen$/);
    const offlineDot = await dot();
    log(`presence dot online ${onlineDot}, offline ${offlineDot}`);
    assert.notEqual(offlineDot, onlineDot, 'not green while offline');
    await shot(a, '10-offline-banner-members-grey');

    await restartServer(s);
    // The app's own countdown may reconnect first on a busy machine (the
    // button goes with it): press "retry now" while it is there.
    // (`app-claims.test.mjs` proves the button itself.)
    await a.getByTestId('retry-now').click({ timeout: 3000 }).catch(() => {});
    await banner.filter({ hasText: /^Online$/ }).waitFor({ timeout: 20000 });
    assert.deepEqual((await a.evaluate(() => window.bannerLog)).slice(1).filter((t, i, all) => t !== all[i - 1]),
      ['Reconnecting', 'Online']);
    await panel.and(a.locator('[data-online=true]')).waitFor();
    noErrors(alice, bob);
  });
});

// ---------------------------------------------------------------- 11

// The contrast ratio of the focus ring of the focused element against the
// background around it.
function ringContrast() {
  const el = document.activeElement;
  const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { const x = v / 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const style = getComputedStyle(el);
  let p = el.parentElement;
  let bg = null;
  while (p) {
    const c = rgb(getComputedStyle(p).backgroundColor);
    if (c.length === 3 || (c.length === 4 && c[3] > 0)) { bg = c.slice(0, 3); break; }
    p = p.parentElement;
  }
  const ring = rgb(style.outlineColor).slice(0, 3);
  const [hi, lo] = [lum(ring), lum(bg)].sort((x, y) => y - x);
  return {
    id: el.dataset.testid, visible: el.matches(':focus-visible'), style: style.outlineStyle,
    width: parseFloat(style.outlineWidth), ratio: Math.round(((hi + 0.05) / (lo + 0.05)) * 100) / 100,
  };
}

test('11a. long room names fit, ✓ only on one\'s own messages, room names and lengths checked at the input, RTL, focus ring, no lobby rename lines', { timeout: 120000 }, async () => {
  await withServer(async (s, track) => {
    const alice = track(await openUser(s.base, 'alice'));
    const bob = track(await openUser(s.base, 'bob'));
    const a = alice.page;

    // A newcomer naming themself adds no line to #lobby.
    const zed = track(await openUser(s.base, 'zed'));
    await a.getByTestId('members').getByText('zed', { exact: true }).waitFor();
    await send(zed.page, 'zed is here');
    await shown(a, 'zed is here');
    assert.deepEqual(await notices(a), [], 'no "guest-N is now zed"');
    await zed.close();

    // A 32-character room: the count and the leave button stay in view.
    const longRoom = 'abcdefghijklmnopqrstuvwxyz-01234';
    assert.equal(longRoom.length, 32);
    await join(a, longRoom);
    const fits = await a.getByTestId(`room-${longRoom}`).evaluate((button) => {
      const nav = button.closest('nav').getBoundingClientRect();
      const li = button.closest('li');
      const seen = (el) => {
        const r = el.getBoundingClientRect();
        const top = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
        return r.left >= nav.left && r.right <= nav.right && (top === el || el.contains(top));
      };
      return { count: seen(button.querySelector('.count')), leave: seen(li.querySelector('[data-testid^=leave-]')) };
    });
    assert.deepEqual(fits, { count: true, leave: true });
    await shot(a, '11-long-room-name');

    // ✓ "delivered" only on one's own messages.
    await join(bob.page, longRoom);
    await send(a, 'mine');
    await line(a, 'mine', 'sent').waitFor();
    await send(bob.page, 'theirs');
    await shown(a, 'theirs');
    await shown(bob.page, 'mine');
    const marks = (page) => page.getByTestId('message').evaluateAll((rows) => rows.map((r) => [
      r.querySelector('[data-testid=message-text]').textContent,
      r.querySelector('[data-testid=delivery-mark]')?.getAttribute('aria-label') ?? null,
    ]));
    await line(bob.page, 'theirs', 'sent').getByTestId('delivery-mark').filter({ hasText: /^✓$/ }).waitFor();
    assert.deepEqual(await marks(a), [['mine', 'delivered'], ['theirs', null]]);
    assert.deepEqual(await marks(bob.page), [['mine', null], ['theirs', 'delivered']]);
    await shot(a, '11-delivered-only-mine');

    // Room names are checked as they are typed, at the input.
    const joinError = a.getByTestId('join-error');
    const rule = "room names are 1 to 32 characters of a-z, 0-9, '-' and '_'";
    await a.getByTestId('join-input').fill('');
    await a.getByTestId('join-input').pressSequentially('two words');
    await joinError.filter({ hasText: exactly(rule) }).waitFor();
    assert.equal(await a.getByTestId('join-input').getAttribute('aria-invalid'), 'true');
    await shot(a, '11-room-name-refused-at-input');
    await a.getByTestId('join-button').click();
    await a.getByTestId('join-input').fill('café');
    await joinError.filter({ hasText: exactly(rule) }).waitFor();
    await a.getByTestId('join-input').fill('a'.repeat(33));
    await joinError.filter({ hasText: /^room names are at most 32 characters$/ }).waitFor();
    await a.getByTestId('join-input').press('Enter');
    await a.getByTestId('join-input').fill('fine-name');
    await textIs(joinError, '', 'the join error to go');
    await a.getByTestId('join-input').fill('');
    await send(a, '/join café');
    await a.getByTestId('composer-error').filter({ hasText: exactly(rule) }).waitFor();
    await a.getByTestId('composer').fill('');
    assert.deepEqual(await roomIds(a), ['room-lobby', `room-${longRoom}`], 'nothing joined');
    assert.deepEqual((await notices(a)).filter((n) => /room/.test(n)), [], 'no notice about it in the chat log');

    // Past 2,000 characters: a counter, and Enter says why nothing was sent.
    const counter = a.getByTestId('counter');
    await a.getByTestId('composer').fill('b'.repeat(1900));
    assert.equal(await counter.textContent(), '100 left');
    await a.getByTestId('composer').fill('b'.repeat(2050));
    assert.equal(await counter.textContent(), '50 too many');
    await a.getByTestId('composer').press('Enter');
    await a.getByTestId('composer-error').filter({ hasText: /^This message is 50 characters too long \(the limit is 2,000\)\.$/ }).waitFor();
    assert.equal((await a.getByTestId('composer').inputValue()).length, 2050, 'the text stays');
    await shot(a, '11-too-long-said');
    await a.getByTestId('composer').fill('short again');
    await textIs(a.getByTestId('composer-error'), '', 'the length error to go');
    await a.getByTestId('composer').press('Enter');
    await shown(bob.page, 'short again');
    assert.deepEqual(await texts(bob.page), ['mine', 'theirs', 'short again'], 'the long one was never sent');

    // Right-to-left text reads from the right.
    const hebrew = 'שלום עולם, מה שלומך היום?';
    await send(bob.page, hebrew);
    await shown(a, hebrew);
    const rtl = await a.getByTestId('message-text').filter({ hasText: hebrew }).evaluate((el) => {
      const range = document.createRange();
      range.selectNodeContents(el);
      const text = range.getBoundingClientRect();
      const box = el.getBoundingClientRect();
      return { dir: el.getAttribute('dir'), rtl: el.matches(':dir(rtl)'), direction: getComputedStyle(el).direction,
        rightGap: Math.round(box.right - text.right), leftGap: Math.round(text.left - box.left) };
    });
    log(`RTL message: ${JSON.stringify(rtl)}`);
    assert.equal(rtl.dir, 'auto');
    assert.equal(rtl.rtl, true);
    assert.ok(rtl.rightGap <= 2 && rtl.leftGap > 50, 'right-aligned');
    await a.getByTestId('composer').fill(hebrew);
    assert.equal(await a.getByTestId('composer').evaluate((el) => el.getAttribute('dir') === 'auto' && el.matches(':dir(rtl)')), true);
    await shot(a, '11-rtl');
    await a.getByTestId('composer').fill('');

    // The focus ring: at least 3:1 against what is around it, light and dark.
    for (const colorScheme of ['light', 'dark']) {
      await a.emulateMedia({ colorScheme });
      await a.getByTestId('composer').focus();
      const composer = await a.evaluate(ringContrast);
      await a.keyboard.press('Tab');
      const sendButton = await a.evaluate(ringContrast);
      await shot(a, `11-focus-ring-${colorScheme}`);
      await a.getByTestId('join-input').focus();
      const joinInput = await a.evaluate(ringContrast);
      for (const ring of [composer, sendButton, joinInput]) {
        log(`focus ring (${colorScheme}) on ${ring.id}: ${ring.style} ${ring.width} px, ${ring.ratio}:1`);
        assert.equal(ring.visible, true, `${ring.id} shows focus`);
        assert.equal(ring.style, 'solid');
        assert.ok(ring.width >= 2, `${ring.id}: ${ring.width} px`);
        assert.ok(ring.ratio >= 3, `${ring.id}: ${ring.ratio}:1 in ${colorScheme}`);
      }
    }
    noErrors(alice, bob);
  });
});

test('11b. a message queued while offline is kept across a reload and delivered once', { timeout: 120000 }, async () => {
  const gate = socketGate();
  await gate.listen();
  try {
    await withServer(async (s, track) => {
      gate.target = s.port;
      const viaGate = `http://127.0.0.1:${gate.port}`;
      const alice = track(await openUser(viaGate, 'alice'));
      const bob = track(await openUser(s.base, 'bob'));
      const a = alice.page;
      await a.getByTestId('members').getByText('bob', { exact: true }).waitFor();

      gate.holdSockets = true;
      gate.cutSockets();
      await a.getByTestId('banner-text').filter({ hasText: /^Reconnecting$/ }).waitFor();
      await send(a, 'queued while offline');
      await line(a, 'queued while offline', 'sending').waitFor();
      const outbox = JSON.parse(await a.evaluate(() => localStorage.getItem('chat.outbox')));
      assert.deepEqual(outbox.map(([room, text]) => [room, text]), [['lobby', 'queued while offline']]);
      await shot(a, '11-queued-offline');

      await a.reload();
      await line(a, 'queued while offline', 'sending').waitFor();
      assert.equal(await a.getByTestId('banner-text').textContent() !== 'Online', true);
      await shot(a, '11-queued-after-reload');

      gate.holdSockets = false;
      await a.getByTestId('retry-now').click();
      await online(a);
      await line(a, 'queued while offline', 'sent').waitFor();
      await shown(bob.page, 'queued while offline');
      await send(bob.page, 'after it');
      await shown(a, 'after it');
      assert.deepEqual(await texts(bob.page), ['queued while offline', 'after it'], 'delivered once');
      assert.deepEqual(await texts(a), ['queued while offline', 'after it']);
      assert.equal(await a.evaluate(() => localStorage.getItem('chat.outbox')), null, 'the outbox is empty');
      await shot(a, '11-queued-delivered-once');
      noErrors(alice, bob);
    }, { extra: ['--allowed-origin', `http://127.0.0.1:${gate.port}`] });
  } finally {
    await gate.close();
  }
});

test('11d. a "new" line above what came while the reader was in another room, also after a reload', { timeout: 90000 }, async () => {
  await withServer(async (s, track) => {
    const alice = track(await openUser(s.base, 'alice'));
    const bob = track(await openUser(s.base, 'bob'));
    const a = alice.page;
    await join(a, 'x');
    await join(bob.page, 'x');
    await send(bob.page, 'read already');
    await shown(a, 'read already');
    // Alice is in #lobby while two messages come to #x.
    await pick(a, 'lobby');
    await send(bob.page, 'while away 1');
    await send(bob.page, 'while away 2');
    await a.getByTestId('room-x').getByTestId('unread').filter({ hasText: /^2$/ }).waitFor();
    await pick(a, 'x');
    const rows = () => a.evaluate(() => window.__t.rows().filter((r) => !r.startsWith('notice:')));
    assert.deepEqual(await rows(), ['day:Today', 'msg:read already', 'new', 'msg:while away 1', 'msg:while away 2']);
    await shot(a, '11d-new-line');
    // Seen now: the next visit has no line.
    await pick(a, 'lobby');
    await pick(a, 'x');
    assert.deepEqual(await rows(), ['day:Today', 'msg:read already', 'msg:while away 1', 'msg:while away 2']);
    // Away again, then the page reloads (in #lobby): what came meanwhile
    // still gets its line, from the marks the page kept.
    await pick(a, 'lobby');
    await send(bob.page, 'before the reload');
    await a.getByTestId('room-x').getByTestId('unread').filter({ hasText: /^1$/ }).waitFor();
    await a.reload();
    await online(a);
    await pick(a, 'x');
    await shown(a, 'before the reload');
    assert.deepEqual(await rows(), ['day:Today', 'msg:read already', 'msg:while away 1', 'msg:while away 2', 'new', 'msg:before the reload']);
    noErrors(alice, bob);
  });
});

test('11c. day dividers, and the full date on each time', { timeout: 90000 }, async () => {
  await withServer(async (s, track) => {
    const seed = track(await rawClient(s.base, 'seed'));
    assert.ok((await seed.call('join', { room: 'days' })).ok);
    const said = [];
    for (let i = 1; i <= 6; i += 1) {
      const body = await seed.call('say', { room: 'days', text: `day ${i}`, cid: `d${i}` });
      assert.ok(body.ok, JSON.stringify(body));
      said.push(body.ok);
    }
    await seed.close();
    // Lines 1–2 are three days old, 3–4 one day, 5–6 of today (the store
    // is edited while the server is down).
    await stopServer(s);
    const DAY = 86400000;
    execFileSync('python3', ['-c', [
      'import sqlite3, sys',
      'db = sqlite3.connect(sys.argv[1])',
      'db.execute("UPDATE messages SET ts = ts - ? WHERE room = \'days\' AND seq IN (1, 2)", (3 * 86400000,))',
      'db.execute("UPDATE messages SET ts = ts - ? WHERE room = \'days\' AND seq IN (3, 4)", (86400000,))',
      'db.commit()',
    ].join('\n'), joinPath(s.data, 'chat.db')]);
    const restarted = await restartServer(s);
    const ts = said.map((r, i) => r.ts - (i < 2 ? 3 * DAY : i < 4 ? DAY : 0));

    const alice = track(await openUser(restarted.base, 'alice', { timezoneId: 'UTC' }));
    const a = alice.page;
    await join(a, 'days');
    await shown(a, 'day 6');
    const label = new Date(ts[0]).toLocaleDateString('en-US', { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric', timeZone: 'UTC' });
    const rows = (await a.evaluate(() => window.__t.rows())).filter((r) => !r.startsWith('notice:'));
    assert.deepEqual(rows, [`day:${label}`, 'msg:day 1', 'msg:day 2', 'day:Yesterday', 'msg:day 3', 'msg:day 4',
      'day:Today', 'msg:day 5', 'msg:day 6']);
    // Each group's time: HH:MM, with the full date in its title.
    const times = await a.locator('[data-testid=message] time').evaluateAll((els) => els.map((t) => ({
      text: t.textContent, title: t.getAttribute('title'), datetime: t.getAttribute('datetime'),
    })));
    assert.equal(times.length, 3, 'one per day (each day starts a group)');
    for (const [k, t] of times.entries()) {
      const when = new Date(ts[k * 2]);
      const hhmm = `${String(when.getUTCHours()).padStart(2, '0')}:${String(when.getUTCMinutes()).padStart(2, '0')}`;
      assert.equal(t.text, hhmm);
      assert.equal(t.datetime, when.toISOString());
      for (const part of [
        when.toLocaleDateString('en-US', { weekday: 'long', timeZone: 'UTC' }),
        when.toLocaleDateString('en-US', { month: 'long', timeZone: 'UTC' }),
        String(when.getUTCFullYear()),
        `:${String(when.getUTCSeconds()).padStart(2, '0')}`,
      ]) assert.ok(t.title.includes(part), `"${t.title}" has ${part}`);
    }
    log(`day dividers: ${rows.filter((r) => r.startsWith('day:')).join(' | ')}; a time's title: "${times[0].title}"`);
    await shot(a, '11-day-dividers');
    noErrors(alice);
  });
});

// ---------------------------------------------------------------- axe

test('12. axe-core finds no violations in light and dark, desktop and phone, with the dialog open and closed', { timeout: 240000 }, async () => {
  await withServer(async (s, track) => {
    const bob = track(await openUser(s.base, 'bob'));
    await join(bob.page, 'axe-room');
    await send(bob.page, 'first words');
    await pick(bob.page, 'lobby');
    await send(bob.page, 'welcome to the lobby');
    // bob talks in #axe-room from now on.
    await pick(bob.page, 'axe-room');
    const failures = [];
    const check = async (page, state) => {
      await page.addScriptTag({ path: AXE });
      const result = await page.evaluate(() => window.axe.run(document, {
        rules: { 'label-content-name-mismatch': { enabled: true } },
        resultTypes: ['violations'],
      }));
      const violations = result.violations.map((v) => ({
        id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary?.split('\n').slice(1).join('; ')}`),
      }));
      log(`axe ${state}: ${violations.length} violation(s), ${result.passes?.length ?? 'n/a'} rules passed`);
      for (const v of violations) log(`  ${v.id} (${v.impact}): ${v.help}\n    ${v.nodes.join('\n    ')}`);
      if (violations.length) failures.push({ state, violations });
    };
    for (const colorScheme of ['light', 'dark']) {
      for (const [form, viewport] of [['desktop', DESKTOP], ['phone', PHONE]]) {
        const nick = `axe-${colorScheme}-${form}`;
        const user = track(await newUser(s.base, { viewport, colorScheme, bypassCSP: true, mobile: form === 'phone' }));
        const { page } = user;
        await page.emulateMedia({ colorScheme });
        await page.goto(`${s.base}/`);
        await online(page);
        await page.getByTestId('nick-dialog').waitFor({ state: 'visible' });
        await shown(page, 'welcome to the lobby');
        await shot(page, `12-axe-${colorScheme}-${form}-dialog`);
        await check(page, `${colorScheme} ${form} dialog open`);

        await page.getByTestId('nick-input').fill(nick);
        await page.getByTestId('nick-input').press('Enter');
        await page.getByTestId('nick-dialog').waitFor({ state: 'hidden' });
        await nickIs(page, nick);
        await send(page, `hello from ${nick}`);
        await line(page, `hello from ${nick}`, 'sent').waitFor();
        if (form === 'phone') await page.getByTestId('menu-button').click();
        await join(page, 'axe-room');
        if (form === 'phone') await page.getByTestId('menu-button').click();
        await pick(page, 'lobby');
        await send(bob.page, `unread for ${nick}`);
        await page.getByTestId(form === 'phone' ? 'menu-unread' : 'unread').first().waitFor();
        await shot(page, `12-axe-${colorScheme}-${form}-closed`);
        await check(page, `${colorScheme} ${form} dialog closed`);
        if (form === 'phone') {
          await page.getByTestId('menu-button').click();
          await page.locator('#rooms-drawer').waitFor({ state: 'visible' });
          await shot(page, `12-axe-${colorScheme}-${form}-drawer`);
          await check(page, `${colorScheme} ${form} drawer open`);
        }
        noErrors(user);
        await user.close();
      }
    }
    assert.deepEqual(failures, [], 'no violations');
  });
});

// ---------------------------------------------------------------- 100,000

test('13. a room of 100,000 messages: scrolling back through 5,000 keeps frames under 50 ms and the DOM small', { timeout: 900000 }, async () => {
  await withServer(async (s, track) => {
    const TOTAL = 100000;
    const BACK = 5000;
    const SEEDERS = 4;
    // Four connections, each saying its own quarter in order. The store is
    // memory (`--history 100000` keeps them all): on disk the seeding alone
    // takes two minutes here, and scrolling is the app's side either way.
    const seeders = [];
    for (let k = 0; k < SEEDERS; k += 1) {
      const seeder = track(await rawClient(s.base, `seed${k + 1}`));
      assert.ok((await seeder.call('join', { room: 'big' })).ok);
      seeders.push(seeder);
    }
    const per = TOTAL / SEEDERS;
    const t0 = Date.now();
    const seeded = await Promise.all(seeders.map((seeder, k) => seeder.seed('big', k * per + 1, (k + 1) * per, `big ${k + 1}.`)));
    const seedMs = Date.now() - t0;
    log(`seeded ${TOTAL.toLocaleString('en')} messages into one room (kept in memory: seeding SQLite takes minutes) in ${(seedMs / 1000).toFixed(1)} s (${Math.round(TOTAL / (seedMs / 1000)).toLocaleString('en')}/s, ${SEEDERS} connections)`);
    assert.deepEqual(seeded.flatMap((r) => r.errors), []);
    const lastSeqs = seeded.map((r, k) => r.said[(k + 1) * per].seq);
    assert.equal(Math.max(...lastSeqs), TOTAL, 'one room of exactly 100,000');
    for (const seeder of seeders) await seeder.close();

    const alice = track(await openUser(s.base, 'alice'));
    const a = alice.page;
    await join(a, 'big');
    await a.locator(`[data-key="s${TOTAL}"]`).waitFor();
    // The reader's place: the seq of the message at the top of the view.
    const seqOf = (key) => Number(/^s(\d+)$/.exec(key ?? '')?.[1]);
    await a.getByTestId('messages').hover();
    await a.evaluate(() => {
      const rec = { frames: [], long: [], tasks: [], maxDom: 0, maxRows: 0, run: true };
      window.__rec = rec;
      const t0 = performance.now();
      try {
        new PerformanceObserver((list) => {
          for (const e of list.getEntries()) rec.tasks.push([Math.round(e.startTime - t0), Math.round(e.duration)]);
        }).observe({ type: 'longtask' });
      } catch { /* no long task timing */ }
      let last = 0;
      const tick = (t) => {
        if (!rec.run) return;
        if (last) {
          rec.frames.push(t - last);
          if (t - last > 33.4) rec.long.push([Math.round(last - t0), Math.round(t - last)]);
        }
        last = t;
        rec.maxDom = Math.max(rec.maxDom, document.getElementsByTagName('*').length);
        rec.maxRows = Math.max(rec.maxRows, document.querySelectorAll('[data-testid=message]').length);
        requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
    });
    const started = Date.now();
    let steps = 0;
    let top = TOTAL;
    while (top > TOTAL - BACK) {
      assert.ok(Date.now() - started < 300000, `scrolled back only to seq ${top} in 300 s`);
      await a.mouse.wheel(0, -400);
      steps += 1;
      await frames(a, 1);
      if (steps % 10 === 0) top = seqOf((await a.evaluate(() => window.__t.topMessage()))?.key) || top;
    }
    const took = Date.now() - started;
    const rec = await a.evaluate(() => { window.__rec.run = false; return window.__rec; });
    const sorted = [...rec.frames].sort((x, y) => x - y);
    const pct = (p) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
    const max = sorted.at(-1);
    log(`100,000-message room: scrolled back ${(TOTAL - top).toLocaleString('en')} messages (to seq ${top}) in ${(took / 1000).toFixed(1)} s with ${steps} wheel steps of 400 px`);
    log(`frames: ${sorted.length}, max ${max.toFixed(1)} ms, p99 ${pct(0.99).toFixed(1)} ms, p95 ${pct(0.95).toFixed(1)} ms, median ${pct(0.5).toFixed(1)} ms; frames over 33 ms [at ms, length]: ${JSON.stringify(rec.long)}; long tasks [at ms, length]: ${JSON.stringify(rec.tasks)}`);
    log(`DOM: at most ${rec.maxDom.toLocaleString('en')} elements, at most ${rec.maxRows} message rows in the page`);
    await shot(a, '13-100k-scrolled-back');

    // What is in the page is an unbroken run of the room, around the reader.
    const seqs = await a.getByTestId('message').evaluateAll((rows) => rows.map((r) => Number(r.dataset.key.slice(1))));
    for (let i = 1; i < seqs.length; i += 1) assert.equal(seqs[i], seqs[i - 1] + 1, `seq ${seqs[i - 1]} then ${seqs[i]}`);
    assert.ok(seqs[0] <= top && seqs.at(-1) >= top, 'the line read is in the page');
    assert.ok(max < 50, `longest frame ${max.toFixed(1)} ms`);
    assert.ok(rec.maxDom < 2000, `${rec.maxDom} elements`);
    assert.ok(rec.maxRows <= 120, `${rec.maxRows} message rows (item 11: the DOM does not hold the whole room)`);
    noErrors(alice);
  }, { extra: ['--in-memory', '--history', '100000'] });
});
