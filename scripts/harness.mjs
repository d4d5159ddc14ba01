// Test harness for the browser (wasm-bindgen-test) tests: runs the chat
// server on a free port and offers a control endpoint to restart it.
//   node scripts/harness.mjs SERVER_BINARY
// Prints one JSON line {"socket": "...", "control": "..."} when ready and
// runs until SIGTERM/SIGINT. POST {control}/restart stops the server with
// SIGTERM and starts it again on the same port.
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// History on disk, in a fresh directory: it survives the restarts.
const data = mkdtempSync(join(tmpdir(), 'chat-harness-'));

const binary = process.argv[2];
if (!binary) { console.error('usage: harness.mjs SERVER_BINARY'); process.exit(2); }

let server = null;

function start(addr) {
  return new Promise((resolve, reject) => {
    // Every test client is 127.0.0.1: no per-address budgets.
    const proc = spawn(binary, ['--addr', addr, '--allowed-origin', 'http://127.0.0.1:*', '--rate-limit', '0',
      '--max-connections-per-ip', '0', '--rooms-per-ip-per-minute', '0', '--sessions-per-ip-per-minute', '0',
      '--data-dir', data],
      { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    proc.stdout.on('data', (chunk) => {
      out += chunk;
      const m = out.match(/listening on http:\/\/(\S+)/);
      if (m) resolve({ proc, addr: m[1] });
    });
    proc.on('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
}

function stop(proc) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null) return resolve();
    proc.once('exit', () => resolve());
    proc.kill('SIGTERM');
  });
}

const first = await start('127.0.0.1:0');
server = first.proc;
const addr = first.addr;

const control = createServer(async (req, res) => {
  const headers = { 'access-control-allow-origin': '*', 'content-type': 'text/plain' };
  if (req.method === 'POST' && req.url === '/restart') {
    await stop(server);
    server = (await start(addr)).proc;
    res.writeHead(200, headers).end('restarted\n');
  } else {
    res.writeHead(404, headers).end('unknown\n');
  }
});
control.listen(0, '127.0.0.1', () => {
  const { port } = control.address();
  console.log(JSON.stringify({ socket: `ws://${addr}/socket`, control: `http://127.0.0.1:${port}` }));
});

async function shutdown() {
  control.close();
  await stop(server);
  rmSync(data, { recursive: true, force: true });
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
