// End-to-end: the real release binary (app embedded) and two independent
// headless Chromium sessions. Screenshots of each step go to e2e/artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { chromium } from 'playwright-core';
import { createServer, connect } from 'node:net';

const root = new URL('..', import.meta.url).pathname;
const binary = process.env.CHAT_SERVER_BIN ?? `${root}target/release/server`;
const artifacts = `${root}e2e/artifacts`;
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let server, port, browser;
const data = mkdtempSync(joinPath(tmpdir(), 'chat-e2e-'));

function startServer(addr, args = ['--data-dir', data]) {
  return new Promise((resolve, reject) => {
    const proc = spawn(binary, ['--addr', addr, ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
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

let step = 0;
async function shot(page, name) {
  step += 1;
  await page.screenshot({ path: `${artifacts}/${String(step).padStart(2, '0')}-${name}.png` });
}

async function openUser(nick, at = port) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
  const page = await context.newPage();
  const dialogs = [];
  page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(`http://127.0.0.1:${at}/`);
  await page.getByTestId('banner-text').filter({ hasText: 'Online' }).waitFor();
  await page.getByTestId('nick-input').fill(nick);
  await page.getByTestId('nick-save').click();
  await page.getByTestId('nick-dialog').waitFor({ state: 'hidden' });
  await page.getByTestId('nick-button').filter({ hasText: nick }).waitFor();
  return { page, dialogs, errors };
}

async function join(page, room) {
  await page.getByTestId('join-input').fill(room);
  await page.getByTestId('join-button').click();
  await page.getByTestId('room-title').filter({ hasText: `#${room}` }).waitFor();
}

async function send(page, text) {
  await page.getByTestId('composer').fill(text);
  await page.getByTestId('composer').press('Enter');
}

const texts = (page) => page.getByTestId('message-text').allTextContents();

before(async () => {
  // This file's own screenshots ("NN-…"); the other suites keep theirs.
  mkdirSync(artifacts, { recursive: true });
  for (const f of readdirSync(artifacts)) {
    if (/^\d\d-/.test(f)) rmSync(`${artifacts}/${f}`, { force: true });
  }
  const started = await startServer('127.0.0.1:0');
  server = started.proc;
  port = Number(started.addr.split(':').pop());
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: FLAGS });
});

after(async () => {
  await browser?.close();
  if (server) await stopServer(server);
  rmSync(data, { recursive: true, force: true });
});

test('two people chat, see each other, and survive a server restart', { timeout: 120000 }, async () => {
  const alice = await openUser('alice');
  const bob = await openUser('bob');
  await shot(alice.page, 'alice-named');

  await join(alice.page, 'e2e');
  await join(bob.page, 'e2e');
  await alice.page.getByTestId('members').getByText('bob').waitFor();
  await bob.page.getByTestId('members').getByText('alice').waitFor();
  await shot(bob.page, 'bob-joined-sees-alice');

  await send(alice.page, 'hello bob');
  await bob.page.getByTestId('message-text').filter({ hasText: 'hello bob' }).waitFor();
  await send(bob.page, 'hi alice');
  await alice.page.getByTestId('message-text').filter({ hasText: 'hi alice' }).waitFor();
  await alice.page.locator('[data-testid=message][data-delivery=sent]', { hasText: 'hello bob' }).waitFor();
  assert.deepEqual(await texts(alice.page), ['hello bob', 'hi alice'], 'in the order sent');
  assert.deepEqual(await texts(bob.page), ['hello bob', 'hi alice']);
  await shot(alice.page, 'alice-conversation');

  // Typing indicator.
  await alice.page.getByTestId('composer').pressSequentially('typing some');
  await bob.page.getByTestId('typing').filter({ hasText: 'alice is typing' }).waitFor();
  await shot(bob.page, 'bob-sees-alice-typing');
  await alice.page.getByTestId('composer').fill('');

  // Markup from another user is shown as text, never run.
  const evil = '<img src=x onerror=alert(1)>';
  await send(alice.page, evil);
  await bob.page.getByTestId('message-text').filter({ hasText: evil }).waitFor();
  assert.equal(await bob.page.locator('[data-testid=messages] img').count(), 0);
  assert.deepEqual(bob.dialogs, []);
  await shot(bob.page, 'bob-sees-literal-markup');

  // The server stops: both show reconnecting; alice types meanwhile.
  assert.equal(await stopServer(server), 0, 'server exits 0 on SIGTERM');
  for (const who of [alice, bob]) {
    await who.page.getByTestId('banner-text').filter({ hasText: /Reconnecting|Connecting/ }).waitFor();
  }
  await alice.page.getByTestId('banner-text').filter({ hasText: 'Reconnecting' }).waitFor();
  await send(alice.page, 'typed while offline');
  await alice.page.locator('[data-testid=message][data-delivery=sending]', { hasText: 'typed while offline' }).waitFor();
  await shot(alice.page, 'alice-offline-message-queued');

  server = (await startServer(`127.0.0.1:${port}`)).proc;
  for (const who of [alice, bob]) {
    await who.page.getByTestId('banner-text').filter({ hasText: 'Online' }).waitFor({ timeout: 20000 });
  }
  await bob.page.getByTestId('message-text').filter({ hasText: 'typed while offline' }).waitFor({ timeout: 20000 });
  await alice.page.locator('[data-testid=message][data-delivery=sent]', { hasText: 'typed while offline' }).waitFor();
  // A message sent after it: once it is shown, anything sent before it
  // (a duplicate included) has arrived too.
  await send(bob.page, 'after the restart');
  for (const who of [alice, bob]) {
    await who.page.getByTestId('message-text').filter({ hasText: 'after the restart' }).waitFor();
  }
  // History is on disk: the conversation from before the restart is still
  // there, and the queued message is shown exactly once.
  const conversation = ['hello bob', 'hi alice', evil, 'typed while offline', 'after the restart'];
  assert.deepEqual(await texts(bob.page), conversation, 'bob: history kept, queued message once');
  assert.deepEqual(await texts(alice.page), conversation, 'alice: the same');
  await shot(bob.page, 'bob-after-restart');
  await shot(alice.page, 'alice-after-restart');

  assert.deepEqual(alice.errors, []);
  assert.deepEqual(bob.errors, []);
});

// A real redis-server on a free port (append-only file, fsync always), for
// the cluster test.
async function freePort() {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port: p } = srv.address();
      srv.close(() => resolve(p));
    });
  });
}

function redisPing(p) {
  return new Promise((resolve) => {
    const sock = connect(p, '127.0.0.1');
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => { sock.destroy(); resolve(String(d).startsWith('+PONG')); });
    sock.on('error', () => resolve(false));
  });
}

async function startRedis(p, dir) {
  const proc = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(p), '--save', '',
    '--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir], { stdio: 'ignore' });
  for (let i = 0; i < 200; i += 1) {
    if (await redisPing(p)) return proc;
    await new Promise((r) => setTimeout(r, 25));
  }
  proc.kill('SIGKILL');
  throw new Error('redis-server did not start (scripts/setup.sh installs it)');
}

test('two people on two server processes chat through redis', { timeout: 120000 }, async () => {
  const redisDir = mkdtempSync(joinPath(tmpdir(), 'chat-e2e-redis-'));
  const redisPort = await freePort();
  let redis = await startRedis(redisPort, redisDir);
  const cluster = ['--redis', `redis://127.0.0.1:${redisPort}/0`];
  const one = await startServer('127.0.0.1:0', cluster);
  const two = await startServer('127.0.0.1:0', cluster);
  const portOf = (s) => Number(s.addr.split(':').pop());
  try {
    const carol = await openUser('carol', portOf(one));
    const dave = await openUser('dave', portOf(two));
    await join(carol.page, 'across');
    await join(dave.page, 'across');
    await carol.page.getByTestId('members').getByText('dave').waitFor();
    await dave.page.getByTestId('members').getByText('carol').waitFor();
    await shot(dave.page, 'cluster-dave-sees-carol');

    await send(carol.page, 'from process one');
    await dave.page.getByTestId('message-text').filter({ hasText: 'from process one' }).waitFor();
    await send(dave.page, 'from process two');
    await carol.page.getByTestId('message-text').filter({ hasText: 'from process two' }).waitFor();
    await carol.page.locator('[data-testid=message][data-delivery=sent]', { hasText: 'from process one' }).waitFor();
    assert.deepEqual(await texts(carol.page), ['from process one', 'from process two']);
    assert.deepEqual(await texts(dave.page), ['from process one', 'from process two']);

    await carol.page.getByTestId('composer').pressSequentially('typing');
    await dave.page.getByTestId('typing').filter({ hasText: 'carol is typing' }).waitFor();
    await carol.page.getByTestId('composer').fill('');
    await shot(carol.page, 'cluster-carol-conversation');

    // Redis goes away: the room says so, and what carol sends waits.
    redis.kill('SIGKILL');
    await carol.page.getByTestId('notice').filter({ hasText: 'degraded' }).waitFor({ timeout: 10000 });
    await carol.page.getByTestId('banner-text').filter({ hasText: 'Online · degraded' }).waitFor();
    // Both processes see the outage before Redis comes back (else, on a
    // busy machine, dave's process may never have seen it, and has no
    // "back" to tell).
    await dave.page.getByTestId('notice').filter({ hasText: 'degraded' }).waitFor({ timeout: 10000 });
    await send(carol.page, 'sent while degraded');
    await carol.page.locator('[data-testid=message][data-delivery=sending]', { hasText: 'sent while degraded' }).waitFor();
    await shot(carol.page, 'cluster-degraded-message-waits');
    redis = await startRedis(redisPort, redisDir);
    await dave.page.getByTestId('message-text').filter({ hasText: 'sent while degraded' }).waitFor({ timeout: 20000 });
    await carol.page.locator('[data-testid=message][data-delivery=sent]', { hasText: 'sent while degraded' }).waitFor();
    await dave.page.getByTestId('notice').filter({ hasText: 'The chat service is back' }).waitFor();
    await carol.page.getByTestId('banner-text').filter({ hasText: /^Online$/ }).waitFor();
    // A message sent after it: once dave has it, a duplicate would have come too.
    await send(carol.page, 'after redis came back');
    await dave.page.getByTestId('message-text').filter({ hasText: 'after redis came back' }).waitFor();
    assert.deepEqual(await texts(dave.page),
      ['from process one', 'from process two', 'sent while degraded', 'after redis came back'],
      'delivered once, in order, after redis came back');
    await shot(dave.page, 'cluster-after-redis-restart');
    assert.deepEqual(carol.errors, []);
    assert.deepEqual(dave.errors, []);
  } finally {
    await stopServer(one.proc);
    await stopServer(two.proc);
    redis.kill('SIGKILL');
    rmSync(redisDir, { recursive: true, force: true });
  }
});
