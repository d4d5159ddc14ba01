// End-to-end checks of what the README says the app does, each against its
// own release binary (app embedded) in headless Chromium: the connection
// banner through a server outage and "retry now", the "new messages" pill,
// and retrying a message the server refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createTcpServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { chromium } from 'playwright-core';

const root = new URL('..', import.meta.url).pathname;
const binary = process.env.CHAT_SERVER_BIN ?? `${root}target/release/server`;
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let browser;

function startServer(args) {
  return new Promise((resolve, reject) => {
    const proc = spawn(binary, ['--addr', '127.0.0.1:0', ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    const timer = setTimeout(() => reject(new Error('server did not start')), 15000);
    proc.stdout.on('data', (chunk) => {
      out += chunk;
      const m = out.match(/listening on http:\/\/\S+:(\d+)/);
      if (m) { clearTimeout(timer); resolve({ proc, port: Number(m[1]) }); }
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
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: FLAGS });
});

after(async () => {
  await browser?.close();
});

async function openUser(base, nick) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${base}/`);
  await page.getByTestId('banner-text').filter({ hasText: /^Online$/ }).waitFor();
  await page.getByTestId('nick-input').fill(nick);
  await page.getByTestId('nick-save').click();
  await page.getByTestId('nick-dialog').waitFor({ state: 'hidden' });
  await page.getByTestId('nick-button').filter({ hasText: new RegExp(`^Nickname: ${nick}$`) }).waitFor();
  return { page, errors, close: () => context.close() };
}

async function join(page, room) {
  await page.getByTestId('join-input').fill(room);
  await page.getByTestId('join-button').click();
  await page.getByTestId('room-title').filter({ hasText: new RegExp(`^#${room}$`) }).waitFor();
}

async function send(page, text) {
  await page.getByTestId('composer').fill(text);
  await page.getByTestId('composer').press('Enter');
}

const texts = (page) => page.getByTestId('message-text').allTextContents();
const exactly = (text) => new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
const shown = (page, text) => page.getByTestId('message-text').filter({ hasText: exactly(text) }).waitFor();
// The message whose text is `text`, and its delivery state.
const line = (page, text, state) => page
  .locator(state ? `[data-testid=message][data-delivery=${state}]` : '[data-testid=message]')
  .filter({ has: page.getByTestId('message-text').filter({ hasText: exactly(text) }) });
const inState = (page, state) => page
  .locator(`[data-testid=message][data-delivery=${state}] [data-testid=message-text]`).allTextContents();

// A TCP gate in front of the server: passes connections through while
// open, cuts them at once while shut. The page is loaded through it (so its
// socket is same-origin); the test opens it at the moment it chooses.
function tcpGate() {
  const gate = { open: true, target: 0, port: 0 };
  const srv = createTcpServer((client) => {
    if (!gate.open) { client.destroy(); return; }
    const upstream = connect(gate.target, '127.0.0.1');
    client.pipe(upstream);
    upstream.pipe(client);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    client.on('close', () => upstream.destroy());
  });
  gate.listen = () => new Promise((r) => srv.listen(0, '127.0.0.1', () => { gate.port = srv.address().port; r(); }));
  gate.close = () => new Promise((r) => srv.close(r));
  return gate;
}

test('the banner counts down while the server is away, and "retry now" connects at once when it is back', { timeout: 120000 }, async () => {
  const data = mkdtempSync(joinPath(tmpdir(), 'chat-e2e-claims-'));
  const gate = tcpGate();
  await gate.listen();
  const origin = ['--allowed-origin', `http://127.0.0.1:${gate.port}`, '--data-dir', data];
  let server = await startServer(origin);
  gate.target = server.port;
  try {
    const user = await openUser(`http://127.0.0.1:${gate.port}`, 'banner');
    const { page } = user;
    const retryNow = page.getByTestId('retry-now');
    // What the banner shows: its state (the live region) and, beside it,
    // the countdown (not announced). Every text it shows, in order.
    await page.evaluate(() => {
      const box = document.querySelector('[data-testid=banner]');
      window.bannerText = () => ['banner-text', 'banner-countdown']
        .map((id) => box.querySelector(`[data-testid=${id}]`).textContent)
        .filter((t) => t).join(' ');
      window.bannerLog = [window.bannerText()];
      new MutationObserver(() => {
        const text = window.bannerText();
        if (window.bannerLog.at(-1) !== text) window.bannerLog.push(text);
      }).observe(box, { childList: true, characterData: true, subtree: true });
    });
    const banner = {
      filter: ({ hasText }) => ({
        waitFor: (opts = {}) => page.waitForFunction((source) => new RegExp(source).test(window.bannerText()),
          hasText.source, { timeout: opts.timeout ?? 30000 }),
      }),
    };
    assert.equal(await retryNow.count(), 0, 'nothing to retry while online');

    // The server stops: "Reconnecting in N s", counting down, with "retry now".
    assert.equal(await stopServer(server.proc), 0);
    await banner.filter({ hasText: /^Reconnecting in \d+ s$/ }).waitFor();
    await retryNow.waitFor();
    await page.waitForFunction(() => window.bannerLog.some((text, i) => {
      const now = /^Reconnecting in (\d+) s$/.exec(text);
      const next = /^Reconnecting in (\d+) s$/.exec(window.bannerLog[i + 1] ?? '');
      return now && next && Number(next[1]) === Number(now[1]) - 1;
    }), null, { timeout: 30000 });
    // The back-off has grown to seconds.
    await banner.filter({ hasText: /^Reconnecting in [3-9] s$/ }).waitFor({ timeout: 30000 });

    // Clicks "retry now" and reports the banner's text once everything the
    // click set off without waiting for a timer has run.
    const clickRetryNow = () => page.evaluate(() => new Promise((resolve) => {
      const before = window.bannerText();
      setTimeout(() => resolve({ before, after: window.bannerText() }), 0);
      document.querySelector('[data-testid=retry-now]').click();
    }));
    // Still away: the click tries at once, which fails, and the wait resumes.
    const whileAway = await clickRetryNow();
    assert.match(whileAway.before, /^Reconnecting in \d+ s$/);
    assert.equal(whileAway.after, 'Reconnecting connecting…', 'a new attempt starts at once');
    await banner.filter({ hasText: /^Reconnecting in \d+ s$/ }).waitFor();

    // The server comes back behind the shut gate; the client waits for its
    // next attempt, seconds away. The gate opens, and the click connects.
    gate.open = false;
    server = await startServer(origin);
    gate.target = server.port;
    await banner.filter({ hasText: /^Reconnecting in [2-9] s$/ }).waitFor({ timeout: 30000 });
    const logBefore = await page.evaluate(() => window.bannerLog.length);
    gate.open = true;
    const whenBack = await clickRetryNow();
    assert.match(whenBack.before, /^Reconnecting in [1-9] s$/, 'the timer had not fired');
    assert.equal(whenBack.after, 'Reconnecting connecting…');
    await banner.filter({ hasText: /^Online$/ }).waitFor({ timeout: 10000 });
    const afterClick = await page.evaluate((n) => window.bannerLog.slice(n), logBefore);
    assert.deepEqual(afterClick, ['Reconnecting connecting…', 'Online'], 'that attempt connected');
    assert.equal(await retryNow.count(), 0, 'nothing to retry once online');
    await page.getByTestId('nick-button').filter({ hasText: /^Nickname: banner$/ }).waitFor();

    // The whole story the banner told.
    const log = await page.evaluate(() => window.bannerLog);
    assert.equal(log[0], 'Online');
    assert.equal(log.at(-1), 'Online');
    for (const text of log.slice(1, -1)) {
      assert.match(text, /^Reconnecting( in \d+ s| connecting…)$/);
    }
    assert.deepEqual(user.errors, []);
    await user.close();
  } finally {
    await stopServer(server.proc);
    await gate.close();
    rmSync(data, { recursive: true, force: true });
  }
});

// The message list's scroll position and whether the pill is shown.
const listState = (page) => page.getByTestId('messages').evaluate((el) => ({
  top: el.scrollTop,
  atBottom: el.scrollHeight - el.scrollTop - el.clientHeight < 2,
  overflow: el.scrollHeight - el.clientHeight,
}));

// Whether the message with `text` is inside the list's visible area.
const inView = (page, text) => page.getByTestId('messages').evaluate((list, wanted) => {
  const box = list.getBoundingClientRect();
  const line = [...list.querySelectorAll('[data-testid=message-text]')].find((e) => e.textContent === wanted);
  const r = line.getBoundingClientRect();
  return r.top >= box.top && r.bottom <= box.bottom;
}, text);

// Whether a message is shown within the list's view (one not in the page
// at all is not).
const visibleInList = (page, text) => page.evaluate((wanted) => {
  const list = document.querySelector('[data-testid=messages]');
  const box = list.getBoundingClientRect();
  const line = [...list.querySelectorAll('[data-testid=message-text]')].find((e) => e.textContent === wanted);
  if (!line) return false;
  const r = line.getBoundingClientRect();
  return r.top >= box.top && r.bottom <= box.bottom;
}, text);

test('the "new messages" pill shows only when scrolled up, and takes the reader down', { timeout: 120000 }, async () => {
  const server = await startServer(['--in-memory', '--rate-limit', '0']);
  const base = `http://127.0.0.1:${server.port}`;
  try {
    const alice = await openUser(base, 'alice');
    const bob = await openUser(base, 'bob');
    await join(alice.page, 'pill');
    await join(bob.page, 'pill');
    const pill = alice.page.getByTestId('new-messages');

    const first = Array.from({ length: 60 }, (_, i) => `line ${i + 1}`);
    for (const text of first) await send(bob.page, text);
    await shown(alice.page, 'line 60');
    assert.ok((await listState(alice.page)).overflow > 200, 'the list scrolls');
    await alice.page.waitForFunction(() => {
      const el = document.querySelector('[data-testid=messages]');
      return el.scrollHeight - el.scrollTop - el.clientHeight < 2;
    });

    // At the bottom: new messages are followed, no pill. The second one
    // arriving proves the first was fully handled.
    await send(bob.page, 'at the bottom 1');
    await shown(alice.page, 'at the bottom 1');
    await send(bob.page, 'at the bottom 2');
    await shown(alice.page, 'at the bottom 2');
    await alice.page.waitForFunction(() => {
      const el = document.querySelector('[data-testid=messages]');
      return el.scrollHeight - el.scrollTop - el.clientHeight < 2;
    });
    assert.equal(await pill.count(), 0, 'no pill at the bottom');
    assert.ok(await inView(alice.page, 'at the bottom 2'));

    // Scrolled up to the very first line (older messages load on the way
    // up), and still: a new message leaves the view where it is and shows
    // the pill.
    await alice.page.getByTestId('messages').hover();
    for (let i = 0; i < 50; i++) {
      await alice.page.mouse.wheel(0, -20000);
      await alice.page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
      const atStart = await alice.page.evaluate(() => {
        const el = document.querySelector('[data-testid=messages]');
        const first = el.querySelector('[data-testid=message-text]');
        return el.scrollTop === 0 && first?.textContent === 'line 1'
          && !el.querySelector('[data-testid=load-older]');
      });
      if (atStart) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const before = await listState(alice.page);
    assert.equal(before.top, 0, 'at the top');
    await send(bob.page, 'while scrolled up');
    await pill.waitFor();
    assert.equal(await pill.textContent(), 'New messages ↓');
    assert.equal((await listState(alice.page)).top, 0, 'the view stayed where the reader was');
    assert.equal(await visibleInList(alice.page, 'while scrolled up'), false);

    // The pill takes the reader to the bottom and goes away.
    await pill.click();
    await alice.page.waitForFunction(() => {
      const el = document.querySelector('[data-testid=messages]');
      return el.scrollHeight - el.scrollTop - el.clientHeight < 2;
    });
    await pill.waitFor({ state: 'detached' });
    assert.ok(await inView(alice.page, 'while scrolled up'));
    assert.deepEqual(await texts(alice.page),
      [...first, 'at the bottom 1', 'at the bottom 2', 'while scrolled up']);
    assert.deepEqual(alice.errors, []);
    await alice.close();
    await bob.close();
  } finally {
    await stopServer(server.proc);
  }
});

test('a message the server refused shows as failed, and "retry" delivers it once', { timeout: 120000 }, async () => {
  // Two messages a second, six at once: a burst of sixteen is refused in
  // part ("rate_limited"), a real refusal the app marks as failed.
  const server = await startServer(['--in-memory', '--rate-limit', '2', '--rate-burst', '6']);
  const base = `http://127.0.0.1:${server.port}`;
  try {
    const alice = await openUser(base, 'alice');
    const bob = await openUser(base, 'bob');
    await join(alice.page, 'retry');
    await join(bob.page, 'retry');
    await alice.page.getByTestId('members').getByText('bob').waitFor();

    const burst = Array.from({ length: 16 }, (_, i) => `burst ${i + 1}`);
    await alice.page.evaluate((lines) => {
      const area = document.querySelector('[data-testid=composer]');
      for (const text of lines) {
        area.value = text;
        area.dispatchEvent(new Event('input', { bubbles: true }));
        area.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true }));
      }
    }, burst);
    // Every one answered: stored or refused.
    await alice.page.waitForFunction((n) => {
      const all = [...document.querySelectorAll('[data-testid=message]')];
      return all.length === n && all.every((m) => m.dataset.delivery !== 'sending');
    }, burst.length);
    const failed = await inState(alice.page, 'failed');
    const sent = await inState(alice.page, 'sent');
    assert.ok(failed.length > 0, `some refused (sent: ${sent})`);
    assert.deepEqual([...sent, ...failed].sort(), [...burst].sort(), 'each one is sent or failed');
    // Each refused one says why and offers "retry".
    for (const text of failed) {
      const refused = line(alice.page, text, 'failed');
      assert.match(await refused.getByTestId('failed').textContent(), /^Not sent: too many messages; slow down/);
      assert.equal(await refused.getByTestId('retry').count(), 1);
    }

    // After the bucket refills (2 a second: 1.5 s gives 3; the page sends
    // at most a typing-off notice meanwhile), retry the first refused one.
    await alice.page.waitForTimeout(1500);
    const retried = failed[0];
    await line(alice.page, retried, 'failed').getByTestId('retry').click();
    await line(alice.page, retried, 'sent').waitFor();
    await shown(bob.page, retried);

    // A later message proves bob's view is live: the other refused ones
    // were never delivered, the retried one once.
    await alice.page.waitForTimeout(1000);
    await send(alice.page, 'after the retry');
    await line(alice.page, 'after the retry', 'sent').waitFor();
    await shown(bob.page, 'after the retry');
    const expected = [...sent, retried, 'after the retry'];
    assert.deepEqual(await texts(bob.page), expected);
    // What the server stored, as a newcomer sees it.
    const carol = await openUser(base, 'carol');
    await join(carol.page, 'retry');
    await shown(carol.page, 'after the retry');
    assert.deepEqual(await texts(carol.page), expected);
    assert.deepEqual(alice.errors, []);
    assert.deepEqual(bob.errors, []);
    for (const who of [alice, bob, carol]) await who.close();
  } finally {
    await stopServer(server.proc);
  }
});
