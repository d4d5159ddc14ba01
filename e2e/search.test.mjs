// Search in the app, end to end: the release binary (app embedded, port
// 0, its own data directory) in headless Chromium. A guest posts in
// #lobby and #ops; "deplo" finds the messages with a word starting so,
// newest first, the matched starts marked; "in:#ops deplo" keeps #ops
// only; a result in another room (one the guest is not even in) switches
// there and highlights the message; a query the server cannot run shows
// its reason; Escape closes the panel and gives the field the cursor back.
// axe-core checks the open panel; on a phone a button opens the search.
// Screenshots: e2e/artifacts/search-*.png.
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
// A few guests post and search quickly: no rate limits.
const SERVER_FLAGS = ['--rate-limit', '0', '--max-connections-per-ip', '0',
  '--rooms-per-ip-per-minute', '0', '--sessions-per-ip-per-minute', '0'];
const DESKTOP = { width: 1100, height: 700 };
const PHONE = { width: 390, height: 844 };
const WAIT = 15000;

let browser;
const dirs = [];

const log = (...args) => console.log('[search]', ...args);

function startServer() {
  const dir = mkdtempSync(joinPath(tmpdir(), 'chat-search-'));
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
async function guest(base, nick, opened, { phone = false } = {}) {
  const context = await browser.newContext({
    viewport: phone ? PHONE : DESKTOP, locale: 'en-US', bypassCSP: true,
    ...(phone ? { isMobile: true, hasTouch: true } : {}),
  });
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
const shot = (page, name) => page.screenshot({ path: `${artifacts}/search-${name}.png` });

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


// Searches for `q` from the field; the panel's results once answered.
async function search(page, q) {
  const field = page.getByTestId('search-input');
  await field.fill(q);
  await field.press('Enter');
  const panel = page.getByTestId('search-panel');
  await panel.waitFor({ state: 'visible' });
  await until(async () => await panel.getByTestId('search-status').textContent() !== 'Searching…', 'the answer');
  return panel;
}

// Each result: room, author, text, and its marked parts.
const results = (panel) => panel.getByTestId('search-result').evaluateAll((els) => els.map((el) => ({
  room: el.querySelector('[data-testid=result-room]').textContent,
  from: el.querySelector('[data-testid=result-author]').textContent,
  text: el.querySelector('[data-testid=result-text]').textContent,
  marks: [...el.querySelectorAll('mark')].map((m) => m.textContent),
  seq: el.dataset.seq,
})));

test('search finds word starts newest first, filters by room, goes to a result in another room, and says why a query fails', { timeout: 150000 }, async () => {
  const { proc, base } = await startServer();
  const opened = [];
  try {
    // otto says something in #deploys, a room sam is not in.
    const o = await guest(base, 'otto', opened);
    await join(o, 'deploys');
    await say(o, 'deploy log for the night');
    await keyOf(o, 'deploy log for the night');

    const p = await guest(base, 'sam', opened);
    await say(p, 'deployment started');
    await keyOf(p, 'deployment started');
    await join(p, 'ops');
    await say(p, 'deploy finished in ops');
    const opsKey = await keyOf(p, 'deploy finished in ops');
    await p.getByTestId('room-lobby').click();
    await p.getByTestId('room-title').filter({ hasText: exactly('#lobby') }).waitFor();
    await say(p, 'redeploy tomorrow');
    await say(p, 'Deployed <b>again</b>');
    await keyOf(p, 'Deployed <b>again</b>');

    // Word starts only ("redeploy" is not one), newest first.
    let panel = await search(p, 'deplo');
    assert.deepEqual((await results(panel)).map(({ room, from, text, marks }) => ({ room, from, text, marks })), [
      { room: '#lobby', from: 'sam', text: 'Deployed <b>again</b>', marks: ['Deplo'] },
      { room: '#ops', from: 'sam', text: 'deploy finished in ops', marks: ['deplo'] },
      { room: '#lobby', from: 'sam', text: 'deployment started', marks: ['deplo'] },
      { room: '#deploys', from: 'otto', text: 'deploy log for the night', marks: ['deplo'] },
    ]);
    assert.equal(await panel.locator('b').count(), 0, 'text is text, never HTML');
    await panel.getByTestId('search-hint').filter({ hasText: /from:NAME.*in:ROOM.*before:YYYY-MM-DD.*after:YYYY-MM-DD/ }).waitFor();
    assert.equal(await panel.getByRole('list', { name: 'Results' }).getByRole('listitem').count(), 4);
    assert.equal(await panel.getByRole('button', { name: /^#ops sam \d\d:\d\d deploy finished in ops$/ }).count(), 1);
    await shot(p, 'results');
    await axe(p, 'search panel open');

    // Escape closes the panel; the cursor goes back to the field.
    await p.getByTestId('search-result').first().focus();
    await p.keyboard.press('Escape');
    await panel.waitFor({ state: 'hidden' });
    await until(async () => await active(p) === 'search-input', 'the cursor back in the field');

    // A room filter.
    panel = await search(p, 'in:#ops deplo');
    const inOps = await results(panel);
    assert.deepEqual(inOps.map((r) => [r.room, r.text]), [['#ops', 'deploy finished in ops']]);

    // Going to a result in another room: it shows, highlighted, with the cursor.
    await panel.getByTestId('search-result').click();
    await p.getByTestId('room-title').filter({ hasText: exactly('#ops') }).waitFor();
    await panel.waitFor({ state: 'hidden' });
    await until(async () => await activeKey(p) === opsKey, 'the cursor on the message');
    assert.equal(await byKey(p, opsKey).evaluate((el) => el.classList.contains('highlighted')), true);
    await shot(p, 'gone-to-result');

    // A result in a room sam is not in: joined, then shown.
    panel = await search(p, 'in:deploys deplo');
    await panel.getByTestId('search-result').click();
    await p.getByTestId('room-title').filter({ hasText: exactly('#deploys') }).waitFor();
    await row(p, 'deploy log for the night').waitFor();
    await until(async () => (await row(p, 'deploy log for the night').evaluate((el) => el.classList.contains('highlighted')))
      && await activeKey(p) === await row(p, 'deploy log for the night').getAttribute('data-key'), 'the joined room\'s message highlighted');

    // A query the server cannot run: its reason, in the panel.
    panel = await search(p, 'deplo before:2026-13-45');
    const why = panel.getByTestId('search-error');
    await until(async () => (await why.textContent()).length > 0, 'the reason');
    assert.match(await why.textContent(), /not a date/, 'the server\'s words');
    assert.equal(await panel.getByTestId('search-result').count(), 0);
    panel = await search(p, 'from:sam');
    assert.equal(await panel.getByTestId('search-error').textContent(), '', 'a filter alone is a query');
    await axe(p, 'search panel with results after an error');

    for (const u of opened) assert.deepEqual(u.errors, [], 'no errors in the page');
  } finally {
    for (const u of opened) await u.context.close().catch(() => {});
    await stopServer(proc);
  }
});

test('on a phone a button opens the search, and a result is a tap away', { timeout: 120000 }, async () => {
  const { proc, base } = await startServer();
  const opened = [];
  try {
    const p = await guest(base, 'pia', opened, { phone: true });
    await say(p, 'deploy from a phone');
    const key = await keyOf(p, 'deploy from a phone');
    for (let i = 0; i < 3; i += 1) await say(p, `filler ${i}`);
    const field = p.getByTestId('search-input');
    assert.equal(await field.isVisible(), false, 'no room for the field until asked');
    await p.getByTestId('search-toggle').tap();
    await until(async () => await active(p) === 'search-input', 'the cursor in the field');
    await field.fill('deplo');
    await field.press('Enter');
    const panel = p.getByTestId('search-panel');
    await panel.getByTestId('search-result').waitFor();
    for (const box of [await panel.boundingBox(), await field.boundingBox()]) {
      assert.ok(box.x >= 0 && box.x + box.width <= PHONE.width, `fits the phone: ${JSON.stringify(box)}`);
    }
    const width = await p.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= PHONE.width, `nothing wider than the phone: ${width}`);
    await shot(p, 'phone');
    await axe(p, 'phone search open');
    await panel.getByTestId('search-result').tap();
    await panel.waitFor({ state: 'hidden' });
    await until(async () => await activeKey(p) === key, 'the cursor on the message');
    // Escape on a phone gives the cursor to the button (the field hides).
    await p.getByTestId('search-toggle').tap();
    await field.press('Escape');
    await panel.waitFor({ state: 'hidden' });
    await until(async () => await active(p) === 'search-toggle', 'the cursor on the search button');
    for (const u of opened) assert.deepEqual(u.errors, [], 'no errors in the page');
  } finally {
    for (const u of opened) await u.context.close().catch(() => {});
    await stopServer(proc);
  }
});
