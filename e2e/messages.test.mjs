// Editing and deleting messages in the app, end to end: the release binary
// (app embedded, port 0, its own data directory) in headless Chromium.
// Two guests in #lobby: A edits a message through its actions and B sees
// the new text marked "(edited)"; A deletes it (after saying yes) and B
// sees the placeholder, with the text nowhere in the page, also after a
// reload; the keyboard way (ArrowUp in the empty composer, Enter, Escape)
// and where the cursor goes. The owner of a room deletes someone else's
// message. On a phone the actions are a tap away. axe-core checks the
// editor and the question. Screenshots: e2e/artifacts/messages-*.png.
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
const DESKTOP = { width: 1100, height: 700 };
const PHONE = { width: 390, height: 844 };
const WAIT = 15000;
const PASSWORD = 'tq7-vexa-plum';

let browser;
const dirs = [];

const log = (...args) => console.log('[messages]', ...args);

function startServer() {
  const dir = mkdtempSync(joinPath(tmpdir(), 'chat-messages-'));
  dirs.push(dir);
  return new Promise((resolve, reject) => {
    const proc = spawn(binary, ['--addr', '127.0.0.1:0', '--data-dir', dir], { stdio: ['ignore', 'pipe', 'ignore'] });
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

// A fresh browser (its own cookies and storage) at the app.
async function openBrowser(base, { phone = false } = {}) {
  const context = await browser.newContext({
    viewport: phone ? PHONE : DESKTOP, locale: 'en-US', bypassCSP: true,
    ...(phone ? { isMobile: true, hasTouch: true } : {}),
  });
  context.setDefaultTimeout(WAIT);
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${base}/`);
  return { context, page, errors };
}

const online = (page) => page.getByTestId('banner-text').filter({ hasText: /^Online$/ }).waitFor();

// A guest who names themself in the nickname dialog.
async function guest(base, nick, opened, options) {
  const user = await openBrowser(base, options);
  opened.push(user);
  const { page } = user;
  await online(page);
  await page.getByTestId('nick-dialog').waitFor({ state: 'visible' });
  await page.getByTestId('nick-input').fill(nick);
  await page.getByTestId('nick-input').press('Enter');
  await page.getByTestId('nick-dialog').waitFor({ state: 'hidden' });
  await page.getByTestId('nick-button').filter({ hasText: exactly(`Nickname: ${nick}`) }).waitFor();
  return page;
}

// Signs up a new account in a fresh browser; the page, signed in.
async function signedUp(base, name, opened) {
  const user = await openBrowser(base);
  opened.push(user);
  const p = user.page;
  await online(p);
  await p.getByTestId('nick-signin').click();
  const dialog = p.getByTestId('account-dialog');
  await dialog.waitFor({ state: 'visible' });
  if (await dialog.getByRole('heading').textContent() !== 'Create an account') await p.getByTestId('account-mode').click();
  await p.getByTestId('account-username').fill(name);
  await p.getByTestId('account-password').fill(PASSWORD);
  await p.getByTestId('account-submit').click();
  await p.getByTestId('account-name').filter({ hasText: exactly(`Signed in as ${name}`) }).waitFor();
  await online(p);
  return p;
}

async function join(page, room) {
  await page.getByTestId('join-input').fill(room);
  await page.getByTestId('join-button').click();
  await page.getByTestId('room-title').filter({ hasText: exactly(`#${room}`) }).waitFor();
}

async function say(page, text) {
  await page.getByTestId('composer').fill(text);
  await page.getByTestId('composer').press('Enter');
}

// The row of the message whose text is `text`.
const row = (page, text) => page.getByTestId('message')
  .filter({ has: page.getByTestId('message-text').filter({ hasText: exactly(text) }) });
// The row `key` (`s<seq>`: the same in every browser).
const byKey = (page, key) => page.locator(`[data-testid=message][data-key="${key}"]`);
const active = (page) => page.evaluate(() => document.activeElement?.dataset?.testid ?? document.activeElement?.tagName);
const shot = (page, name) => page.screenshot({ path: `${artifacts}/messages-${name}.png` });

// Polls `check` until it returns a truthy value.
async function until(check, what) {
  const end = Date.now() + WAIT;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// Whether the page holds `text` anywhere (text, attributes, form values).
const holds = (page, text) => page.evaluate((t) => document.documentElement.outerHTML.includes(t)
  || [...document.querySelectorAll('textarea, input')].some((el) => el.value.includes(t)), text);

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

test('a guest edits and deletes their own message; another browser sees each change live and after a reload', { timeout: 150000 }, async () => {
  const { proc, base } = await startServer();
  const opened = [];
  try {
    const a = await guest(base, 'amy', opened);
    const b = await guest(base, 'ben', opened);
    await say(b, 'ben was here first');
    await say(a, 'helo wrld');
    // Rows are keyed `s<seq>` once stored, the same in every browser.
    const key = await row(b, 'helo wrld').getAttribute('data-key');
    assert.match(key, /^s\d+$/);
    await byKey(a, key).waitFor();

    // Only the author may change it: ben has no Edit or Delete on amy's
    // message, and amy none on ben's (a guest owns no room); both may
    // reply (e2e/replies.test.mjs).
    const changes = (r) => r.locator('[data-testid=edit-message], [data-testid=delete-message]').count();
    assert.equal(await changes(row(b, 'helo wrld')), 0);
    assert.equal(await changes(row(a, 'ben was here first')), 0);

    // The actions show on hover; "Edit" opens the editor in place, with
    // the text and the cursor in it.
    const mine = byKey(a, key);
    assert.equal(await mine.getByTestId('message-actions').evaluate((el) => getComputedStyle(el).opacity), '0');
    await mine.hover();
    await until(async () => await mine.getByTestId('message-actions').evaluate((el) => getComputedStyle(el).opacity) === '1', 'the actions to show');
    await shot(a, 'actions-on-hover');
    assert.equal(await mine.getByRole('button', { name: 'Edit message' }).count(), 1);
    assert.equal(await mine.getByRole('button', { name: 'Delete message' }).count(), 1);
    await mine.getByTestId('edit-message').click();
    const editor = byKey(a, key).getByTestId('edit-input');
    await editor.waitFor();
    assert.equal(await editor.inputValue(), 'helo wrld');
    await until(async () => await active(a) === 'edit-input', 'the cursor in the editor');
    await shot(a, 'editor');
    await axe(a, 'editor open');

    // Escape cancels: nothing sent, the cursor back on the row.
    await a.keyboard.type(' oops');
    await a.keyboard.press('Escape');
    await editor.waitFor({ state: 'detached' });
    await until(async () => await active(a) === 'message', 'the cursor back on the row');
    assert.equal(await byKey(a, key).getByTestId('message-text').textContent(), 'helo wrld');
    assert.equal(await byKey(a, key).getByTestId('edited').count(), 0);

    // Tab from the row reaches its actions; Enter saves the new text.
    await a.keyboard.press('Tab');
    assert.equal(await active(a), 'edit-message');
    await a.keyboard.press('Enter');
    await editor.waitFor();
    await editor.fill('hello world');
    await editor.press('Enter');
    await editor.waitFor({ state: 'detached' });
    await until(async () => await active(a) === 'message', 'the cursor back on the row after saving');
    await row(a, 'hello world').getByTestId('edited').filter({ hasText: /^\(edited\)$/ }).waitFor();

    // ben sees the new text in the same row, marked as edited.
    await byKey(b, key).getByTestId('message-text').filter({ hasText: /^hello world$/ }).waitFor();
    await byKey(b, key).getByTestId('edited').filter({ hasText: /^\(edited\)$/ }).waitFor();
    assert.equal(await row(b, 'helo wrld').count(), 0);
    await shot(b, 'edited-seen');

    // "Delete" asks first; "Cancel" keeps the message.
    await byKey(a, key).hover();
    await byKey(a, key).getByTestId('delete-message').click();
    const question = byKey(a, key).getByTestId('confirm-delete');
    await question.filter({ hasText: 'Delete this message?' }).waitFor();
    assert.equal(await active(a), 'confirm-delete-no', 'the cursor on the harmless answer');
    await shot(a, 'confirm-delete');
    await axe(a, 'question open');
    await a.keyboard.press('Enter');
    await question.waitFor({ state: 'detached' });
    await until(async () => await active(a) === 'message', 'the cursor back on the row after Cancel');
    assert.equal(await byKey(a, key).getByTestId('message-text').textContent(), 'hello world');

    // Yes: the message is gone, here and for ben, who keeps its author and time.
    await byKey(a, key).hover();
    await byKey(a, key).getByTestId('delete-message').click();
    await byKey(a, key).getByTestId('confirm-delete-yes').click();
    await byKey(a, key).getByTestId('message-deleted').filter({ hasText: /^message deleted$/ }).waitFor();
    assert.equal(await byKey(a, key).getByTestId('message-actions').count(), 0, 'nothing more to do to it');
    await byKey(b, key).getByTestId('message-deleted').filter({ hasText: /^message deleted$/ }).waitFor();
    const deleted = await byKey(b, key).evaluate((el) => ({
      author: el.querySelector('[data-testid=author]')?.textContent,
      time: el.querySelector('time')?.textContent,
      text: el.querySelector('[data-testid=message-text]'),
      edited: el.querySelector('[data-testid=edited]'),
      style: getComputedStyle(el.querySelector('[data-testid=message-deleted]')).fontStyle,
    }));
    assert.equal(deleted.author, 'amy');
    assert.match(deleted.time, /^\d\d:\d\d$/);
    assert.equal(deleted.text, null);
    assert.equal(deleted.edited, null, 'no "(edited)" on a deleted message');
    assert.equal(deleted.style, 'italic');
    for (const text of ['hello world', 'helo wrld']) {
      assert.equal(await holds(b, text), false, `ben's page holds no "${text}"`);
    }
    await shot(b, 'deleted-seen');

    // After a reload ben sees the final state (history carries it).
    await b.reload();
    await online(b);
    await row(b, 'ben was here first').waitFor();
    await byKey(b, key).getByTestId('message-deleted').waitFor();
    for (const text of ['hello world', 'helo wrld']) {
      assert.equal(await holds(b, text), false, `ben's reloaded page holds no "${text}"`);
    }
    assert.equal(await b.getByTestId('message').count(), 2, 'changes are never rows of their own');

    // ArrowUp in the empty composer edits one's last message; the cursor
    // goes back to the composer. Messages arriving meanwhile take nothing.
    await say(a, 'second thought');
    const secondKey = await row(b, 'second thought').getAttribute('data-key');
    await byKey(a, secondKey).waitFor();
    await a.getByTestId('composer').focus();
    await a.keyboard.press('ArrowUp');
    const second = byKey(a, secondKey).getByTestId('edit-input');
    await second.waitFor();
    await until(async () => await active(a) === 'edit-input', 'the cursor in the editor');
    await say(b, 'ben talks meanwhile');
    await row(a, 'ben talks meanwhile').waitFor();
    assert.equal(await active(a), 'edit-input', 'an incoming message moves nothing');
    await a.keyboard.press('End');
    await a.keyboard.type('!');
    await a.keyboard.press('Enter');
    await row(a, 'second thought!').getByTestId('edited').waitFor();
    await until(async () => await active(a) === 'composer', 'the cursor back in the composer');
    await row(b, 'second thought!').getByTestId('edited').waitFor();
    // Not in an empty composer, ArrowUp is just a key.
    await a.keyboard.type('draft');
    await a.keyboard.press('ArrowUp');
    assert.equal(await a.getByTestId('edit-input').count(), 0);
    assert.equal(await active(a), 'composer');

    for (const u of opened) assert.deepEqual(u.errors, [], 'no errors in the page');
  } finally {
    for (const u of opened) await u.context.close().catch(() => {});
    await stopServer(proc);
  }
});

test('the owner of a room deletes someone else\'s message there', { timeout: 120000 }, async () => {
  const { proc, base } = await startServer();
  const opened = [];
  try {
    const ann = await signedUp(base, 'ann', opened);
    const bob = await signedUp(base, 'bob', opened);
    // ann makes #mods (a signed-in creator of a public room owns it).
    await join(ann, 'mods');
    await join(bob, 'mods');
    await say(bob, 'bob was here');
    const key = await row(ann, 'bob was here').getAttribute('data-key');

    // ann may delete it, not edit it.
    const theirs = byKey(ann, key);
    await theirs.hover();
    assert.equal(await theirs.getByTestId('edit-message').count(), 0);
    await theirs.getByTestId('delete-message').click();
    await theirs.getByTestId('confirm-delete-yes').click();
    await byKey(ann, key).getByTestId('message-deleted').waitFor();
    await byKey(bob, key).getByTestId('message-deleted').filter({ hasText: /^message deleted$/ }).waitFor();
    assert.equal(await holds(bob, 'bob was here'), false, 'bob\'s page holds the text no more');

    // bob, a plain member, has no "Delete" on ann's messages there.
    await say(ann, 'house rules');
    await row(bob, 'house rules').waitFor();
    assert.equal(await row(bob, 'house rules').locator('[data-testid=edit-message], [data-testid=delete-message]').count(), 0);
    for (const u of opened) assert.deepEqual(u.errors, [], 'no errors in the page');
  } finally {
    for (const u of opened) await u.context.close().catch(() => {});
    await stopServer(proc);
  }
});

test('on a phone a tap on a message shows its actions: edit and delete by touch', { timeout: 120000 }, async () => {
  const { proc, base } = await startServer();
  const opened = [];
  try {
    const p = await guest(base, 'pia', opened, { phone: true });
    await say(p, 'typo on a phone');
    const key = await until(async () => {
      const k = await row(p, 'typo on a phone').getAttribute('data-key');
      return /^s\d+$/.test(k) && k;
    }, 'the message to be stored');
    const mine = byKey(p, key);
    await mine.tap();
    await until(async () => await mine.getByTestId('message-actions').evaluate((el) => getComputedStyle(el).opacity) === '1', 'the actions to show');
    await mine.getByTestId('edit-message').tap();
    const editor = byKey(p, key).getByTestId('edit-input');
    await editor.fill('fixed on a phone');
    // The editor fits the screen.
    const box = await byKey(p, key).getByTestId('editor').boundingBox();
    assert.ok(box.x >= 0 && box.x + box.width <= PHONE.width, `the editor fits: ${JSON.stringify(box)}`);
    await shot(p, 'phone-editor');
    await byKey(p, key).getByTestId('edit-save').tap();
    await row(p, 'fixed on a phone').getByTestId('edited').waitFor();
    await byKey(p, key).tap();
    await byKey(p, key).getByTestId('delete-message').tap();
    await byKey(p, key).getByTestId('confirm-delete-yes').tap();
    await byKey(p, key).getByTestId('message-deleted').waitFor();
    await shot(p, 'phone-deleted');
    for (const u of opened) assert.deepEqual(u.errors, [], 'no errors in the page');
  } finally {
    for (const u of opened) await u.context.close().catch(() => {});
    await stopServer(proc);
  }
});
