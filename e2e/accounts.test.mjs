// Accounts in the app, end to end: the release binary (app embedded) on its
// default on-disk store, in headless Chromium. A signs up, chats under the
// account's name, signs out, and signs in again in a second browser; a
// session ended elsewhere sends the page back to the sign-in dialog; a
// guest cannot take A's name; a server without guests asks for an account.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { chromium } from 'playwright-core';

const root = new URL('..', import.meta.url).pathname;
const binary = process.env.CHAT_SERVER_BIN ?? `${root}target/release/server`;
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const WAIT = 15000;
const PASSWORD = 'tq7-vexa-plum';

let browser;
const dirs = [];

function startServer(args = []) {
  const dir = mkdtempSync(joinPath(tmpdir(), 'chat-accounts-'));
  dirs.push(dir);
  return new Promise((resolve, reject) => {
    const proc = spawn(binary, ['--addr', '127.0.0.1:0', '--data-dir', dir, ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    const timer = setTimeout(() => reject(new Error('server did not start')), WAIT);
    proc.stdout.on('data', (chunk) => {
      out += chunk;
      const m = out.match(/listening on http:\/\/\S+:(\d+)/);
      if (m) { clearTimeout(timer); resolve({ proc, base: `http://127.0.0.1:${m[1]}` }); }
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
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const exactly = (text) => new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);

// A fresh browser (its own cookies and storage) at the app.
async function openBrowser(base) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`${base}/`);
  return { context, page, errors };
}

const online = (page) => page.getByTestId('banner-text').filter({ hasText: /^Online$/ }).waitFor({ timeout: WAIT });
const signedInAs = (page, name) => page.getByTestId('account-name')
  .filter({ hasText: exactly(`Signed in as ${name}`) }).waitFor({ timeout: WAIT });

// Fills the sign-in dialog (already open) and submits it.
async function submitAccount(page, username, password, create) {
  const dialog = page.getByTestId('account-dialog');
  await dialog.waitFor({ state: 'visible', timeout: WAIT });
  const heading = await dialog.getByRole('heading').textContent();
  if ((heading === 'Create an account') !== create) await page.getByTestId('account-mode').click();
  await page.getByTestId('account-username').fill(username);
  await page.getByTestId('account-password').fill(password);
  await page.getByTestId('account-submit').click();
}

async function say(page, text) {
  await page.getByTestId('composer').fill(text);
  await page.getByTestId('composer').press('Enter');
}

// The message rows of the current room, as "from: text" (a row in a run
// of one author's messages shows no author: it is the one above's).
const lines = (page) => page.evaluate(() => {
  let from = null;
  return [...document.querySelectorAll('[data-testid=message]')].map((row) => {
    from = row.querySelector('[data-testid=author]')?.textContent ?? from;
    return `${from}: ${row.querySelector('[data-testid=message-text]')?.textContent}`;
  });
});

async function sees(page, line) {
  const end = Date.now() + WAIT;
  for (;;) {
    const now = await lines(page);
    if (now.includes(line)) return;
    if (Date.now() > end) assert.fail(`never saw ${JSON.stringify(line)}; saw ${JSON.stringify(now.slice(-8))}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('A signs up, chats as A, signs out, and signs in again in a second browser; a guest cannot take the name', { timeout: 120000 }, async () => {
  const { proc, base } = await startServer();
  const opened = [];
  try {
    // A guest who watches the lobby.
    const guest = await openBrowser(base);
    opened.push(guest);
    await online(guest.page);
    await guest.page.getByTestId('nick-input').fill('watcher');
    await guest.page.getByTestId('nick-input').press('Enter');
    await guest.page.getByTestId('nick-dialog').waitFor({ state: 'hidden' });

    // A new visitor signs up from the nickname dialog.
    const first = await openBrowser(base);
    opened.push(first);
    const a = first.page;
    await online(a);
    await a.getByTestId('nick-signin').click();
    await submitAccount(a, 'Ada', PASSWORD, true);
    await signedInAs(a, 'Ada');
    await online(a);
    assert.equal(await a.getByTestId('nick-button').count(), 0, 'a signed-in person has no nickname to change');
    assert.equal(await a.getByTestId('nick-dialog').isVisible(), false);
    await say(a, 'hello from my account');
    await sees(guest.page, 'Ada: hello from my account');
    await sees(a, 'Ada: hello from my account');

    // The guest cannot take the name, in any spelling.
    await guest.page.getByTestId('nick-button').click();
    await guest.page.getByTestId('nick-input').fill('ADA');
    await guest.page.getByTestId('nick-input').press('Enter');
    await guest.page.getByTestId('nick-error')
      .filter({ hasText: "cannot use that nickname: 'ADA' is a registered name; sign in to use it" }).waitFor({ timeout: WAIT });
    await guest.page.keyboard.press('Escape');

    // A signs out: a guest again, asked for a nickname.
    await a.getByTestId('signout-button').click();
    await a.getByTestId('signin-button').waitFor({ timeout: WAIT });
    await a.getByTestId('nick-dialog').waitFor({ state: 'visible', timeout: WAIT });
    const me = await a.evaluate(async () => (await fetch('/api/me')).status);
    assert.equal(me, 401, 'the cookie is gone');

    // A wrong password is refused in the dialog, and the right one signs in
    // (a second browser).
    const second = await openBrowser(base);
    opened.push(second);
    const b = second.page;
    await online(b);
    // A first visit: the nickname dialog offers the way in.
    await b.getByTestId('nick-signin').click();
    await submitAccount(b, 'ada', 'not-the-password', false);
    await b.getByTestId('account-error').filter({ hasText: 'wrong username or password' }).waitFor({ timeout: WAIT });
    await submitAccount(b, 'ada', PASSWORD, false);
    await signedInAs(b, 'Ada');
    await online(b);
    await say(b, 'and from another browser');
    await sees(guest.page, 'Ada: and from another browser');

    // Ended from elsewhere (its cookie's session signed out by another
    // client): the page goes back to the sign-in dialog and says why.
    const cookies = await second.context.cookies();
    const session = cookies.find((c) => c.name === 'chat_session');
    assert.ok(session, 'a session cookie');
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Lax');
    const out = await fetch(`${base}/api/signout`, {
      method: 'POST', headers: { origin: base, cookie: `chat_session=${session.value}` },
    });
    assert.equal(out.status, 204);
    await b.getByTestId('account-dialog').waitFor({ state: 'visible', timeout: WAIT });
    await b.getByTestId('account-notice').filter({ hasText: 'You were signed out. Sign in again to chat.' }).waitFor({ timeout: WAIT });
    await b.getByTestId('signin-button').waitFor({ timeout: WAIT });
    for (const u of opened) assert.deepEqual(u.errors, [], 'no errors in the page');
  } finally {
    for (const u of opened) await u.context.close().catch(() => {});
    await stopServer(proc);
  }
});

test('a server without guests asks for an account, and chats once signed in', { timeout: 90000 }, async () => {
  const { proc, base } = await startServer(['--guests', 'deny']);
  let user;
  try {
    user = await openBrowser(base);
    const p = user.page;
    await p.getByTestId('account-dialog').waitFor({ state: 'visible', timeout: WAIT });
    await p.getByTestId('account-notice').filter({ hasText: 'This server needs an account to chat.' }).waitFor({ timeout: WAIT });
    await p.getByTestId('banner-text')
      .filter({ hasText: 'Offline: sign in to chat here: this server does not allow guests' }).waitFor({ timeout: WAIT });
    assert.equal(await p.getByTestId('nick-dialog').isVisible(), false, 'no nickname to choose');
    await submitAccount(p, 'grace', PASSWORD, true);
    await signedInAs(p, 'grace');
    await online(p);
    await say(p, 'members only');
    await sees(p, 'grace: members only');
    assert.deepEqual(user.errors, []);
  } finally {
    await user?.context.close().catch(() => {});
    await stopServer(proc);
  }
});

// Signs up a new account in a fresh browser; the page, signed in.
async function signedUp(base, name, opened) {
  const user = await openBrowser(base);
  opened.push(user);
  const p = user.page;
  await online(p);
  await p.getByTestId('nick-signin').click();
  await submitAccount(p, name, PASSWORD, true);
  await signedInAs(p, name);
  await online(p);
  return p;
}

const titled = (page, text) => page.getByTestId('room-title').filter({ hasText: exactly(text) }).waitFor({ timeout: WAIT });

test('a private room, an invitation, a direct message and a ban, in three browsers', { timeout: 180000 }, async () => {
  const { proc, base } = await startServer();
  const opened = [];
  try {
    const a = await signedUp(base, 'ann', opened);
    const b = await signedUp(base, 'bob', opened);
    const c = await signedUp(base, 'cyd', opened);

    // Ann makes a private room and says something in it.
    await a.getByTestId('private-input').fill('Plans');
    await a.getByTestId('private-button').click();
    await titled(a, '🔒 Plans');
    const room = await a.evaluate(() => document.querySelector('[data-testid^=room-p-]')?.dataset.testid.slice(5));
    assert.match(room, /^p-[0-9a-f]{16}$/);
    await say(a, 'the secret plan');
    await sees(a, 'ann: the secret plan');

    // Bob is let in: the room appears in his list, with what was said.
    await a.getByTestId('invite-input').fill('bob');
    await a.getByTestId('invite-button').click();
    await b.getByTestId(`room-${room}`).waitFor({ timeout: WAIT });
    await b.getByTestId(`room-${room}`).click();
    await titled(b, '🔒 Plans');
    await sees(b, 'ann: the secret plan');
    // Ann, the owner, makes him a moderator; the room's log says so.
    await a.getByTestId('mod-bob').click();
    await a.getByTestId('notice').filter({ hasText: 'bob is now a moderator' }).waitFor({ timeout: WAIT });
    assert.equal(await b.getByTestId('mod-ann').count(), 0, 'only the owner names moderators');
    await a.getByTestId('actions-button').click();
    await a.getByTestId('actions').filter({ hasText: /ann made a moderator: bob/ }).waitFor({ timeout: WAIT });

    // Cyd sees nothing of it, and cannot get in by its name.
    await c.getByTestId('join-input').fill(room);
    await c.getByTestId('join-button').click();
    await c.getByTestId('join-error')
      .filter({ hasText: `cannot join #${room}: there is no room '${room}' that you may enter` }).waitFor({ timeout: WAIT });
    const cydSees = await c.evaluate(() => document.body.innerText);
    for (const secret of ['Plans', 'the secret plan']) assert.ok(!cydSees.includes(secret), `cyd's page shows ${secret}`);

    // A direct message from Ann to Bob, opened from the member list.
    await a.getByTestId('room-lobby').click();
    await a.getByTestId('dm-bob').click();
    await titled(a, '@bob');
    await say(a, 'just between us');
    const dm = await a.evaluate(() => document.querySelector('[data-testid^=room-dm-]')?.dataset.testid.slice(5));
    await b.getByTestId(`room-${dm}`).click();
    await titled(b, '@ann');
    await sees(b, 'ann: just between us');
    await say(b, 'agreed');
    await sees(a, 'bob: agreed');
    assert.equal(await c.getByTestId(`room-${dm}`).count(), 0);

    // Ann bans Cyd from her public room: Cyd is out at once, told so, and
    // cannot come back, here or from another browser.
    await a.getByTestId('join-input').fill('town');
    await a.getByTestId('join-button').click();
    await titled(a, '#town');
    await c.getByTestId('join-input').fill('town');
    await c.getByTestId('join-button').click();
    await titled(c, '#town');
    await a.getByTestId('ban-cyd').click();
    await c.getByTestId('notice').filter({ hasText: 'you were banned from #town by ann' }).waitFor({ timeout: WAIT });
    await c.getByTestId('room-town').waitFor({ state: 'detached', timeout: WAIT });
    await c.getByTestId('join-input').fill('town');
    await c.getByTestId('join-button').click();
    await c.getByTestId('join-error').filter({ hasText: "you are banned from 'town'" }).waitFor({ timeout: WAIT });
    const other = await openBrowser(base);
    opened.push(other);
    await online(other.page);
    await other.page.getByTestId('nick-signin').click();
    await submitAccount(other.page, 'cyd', PASSWORD, false);
    await signedInAs(other.page, 'cyd');
    await online(other.page);
    await other.page.getByTestId('join-input').fill('town');
    await other.page.getByTestId('join-button').click();
    await other.page.getByTestId('join-error').filter({ hasText: "you are banned from 'town'" }).waitFor({ timeout: WAIT });
    // The room's moderation record, in the app, for its owner.
    await a.getByTestId('actions-button').click();
    await a.getByTestId('actions').filter({ hasText: /ann banned cyd/ }).waitFor({ timeout: WAIT });
    assert.equal(await c.getByTestId('actions-button').count(), 0, 'not for cyd');
    for (const u of opened) assert.deepEqual(u.errors, [], 'no errors in the page');
  } finally {
    for (const u of opened) await u.context.close().catch(() => {});
    await stopServer(proc);
  }
});

test('on a phone the account is in the rooms drawer: sign in and out from there', { timeout: 90000 }, async () => {
  const { proc, base } = await startServer();
  let user;
  try {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true });
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    user = { context, page, errors };
    await page.goto(`${base}/`);
    await online(page);
    await page.getByTestId('nick-dialog').waitFor({ state: 'visible', timeout: WAIT });
    await page.keyboard.press('Escape');
    // Not in the top bar (no room there), in the drawer.
    assert.equal(await page.getByTestId('signin-button').isVisible(), false);
    await page.getByTestId('menu-button').tap();
    await page.getByTestId('drawer-signin-button').tap();
    await submitAccount(page, 'phoebe', PASSWORD, true);
    await page.getByTestId('banner-text').filter({ hasText: /^Online$/ }).waitFor({ timeout: WAIT });
    await page.getByTestId('menu-button').tap();
    await page.getByTestId('drawer-account-name').filter({ hasText: exactly('Signed in as phoebe') }).waitFor({ timeout: WAIT });
    assert.equal(await page.getByTestId('account-name').isVisible(), false, 'not in the top bar');
    const title = await page.getByTestId('room-title').evaluate((el) => ({ shown: el.clientWidth, needs: el.scrollWidth }));
    assert.ok(title.needs <= title.shown, 'the room title is shown whole');
    await page.getByTestId('drawer-signout-button').tap();
    await page.getByTestId('nick-dialog').waitFor({ state: 'visible', timeout: WAIT });
    assert.equal(await page.evaluate(async () => (await fetch('/api/me')).status), 401);
    assert.deepEqual(errors, []);
  } finally {
    await user?.context.close().catch(() => {});
    await stopServer(proc);
  }
});
