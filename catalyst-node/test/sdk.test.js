// The Node SDK in both modes: embedded (SQLite, a local process node) and remote (a
// catalyst-server the test starts), the same flow and error codes; the type definitions
// checked against the native class.
'use strict';

const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const net = require('node:net');
const { spawn } = require('node:child_process');
const { Catalyst, CatalystError } = require('..');

const ROOT = path.resolve(__dirname, '..', '..');
const TARGET = process.env.CARGO_TARGET_DIR || path.join(ROOT, 'target');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitState(c, id, state) {
  for (let i = 0; i < 400; i++) {
    if ((await c.getServer(id)).state === state) return;
    await sleep(50);
  }
  throw new Error(`never ${state}`);
}

async function rejectsWith(promise, code) {
  await assert.rejects(promise, (e) => e instanceof CatalystError && e.code === code);
}

// A real egg in (text, then a Buffer: the same template), out in both formats, bad ones refused.
async function eggs(c) {
  const egg = fs.readFileSync(path.join(ROOT, 'catalyst-core', 'tests', 'eggs', 'pterodactyl-egg-paper.json'), 'utf8');
  const imported = await c.importTemplate(egg);
  assert.strictEqual(imported.name, 'Paper');
  assert.strictEqual(imported.startup_mode, 'entrypoint');
  assert.strictEqual((await c.importTemplate(Buffer.from(egg))).id, imported.id);
  const pelican = JSON.parse(await c.exportTemplate(imported.id, 'plcn_v3'));
  assert.strictEqual(pelican.meta.version, 'PLCN_v3');
  assert.strictEqual(JSON.parse(await c.exportTemplate(imported.id)).meta.version, 'PTDL_v2');
  await rejectsWith(c.importTemplate('{"meta": {"version": "PTDL_v9"}, "name": "x"}'), 'invalid_input');
  await rejectsWith(c.exportTemplate(imported.id, 'toml'), 'invalid_input');
}

// A node's allocation pool: ranges in, who holds what, aliases, deleting free ones.
async function pools(c, port) {
  const node = (await c.listNodes()).items[0].id;
  assert.strictEqual(await c.addAllocations(node, { ip: '127.0.0.1', ports: [`${port + 1000}-${port + 1002}`, `${port + 1002}`] }), 3);
  const pool = (await c.listAllocations(node, 0, 200)).items.filter((a) => a.port > port + 999);
  assert.deepStrictEqual(pool.map((a) => a.port), [port + 1000, port + 1001, port + 1002]);
  assert.ok(pool.every((a) => a.server_id === null));
  const named = await c.updateAllocation(node, pool[0].number, { alias: 'play.example.test' });
  assert.strictEqual(named.alias, 'play.example.test');
  await c.deleteAllocation(node, pool[0].number);
  await rejectsWith(c.deleteAllocation(node, pool[0].number), 'not_found');
  await rejectsWith(c.addAllocations(node, { ip: '127.0.0.1', ports: ['70000-1'] }), 'invalid_input');
}

async function flow(c, port) {
  await eggs(c);
  await pools(c, port);
  const user = await c.createUser({ email: `n${port}@example.test`, username: `n${port}`, password: 'changeme-123' });
  const node = (await c.listNodes()).items[0];
  const template = await c.createTemplate({
    name: `echo-${port}`, image: 'busybox', startup: 'echo Done; while read line; do echo "> $line"; done',
    stop: { type: 'signal', value: 'SIGTERM' }, done_patterns: [{ type: 'substring', value: 'Done' }],
  });
  const server = await c.createServer({
    name: 'node-sdk', owner_id: user.id, node_id: node.id, template_id: template.id,
    limits: { memory_mb: 256, disk_mb: 1024 }, allocations: [{ ip: '127.0.0.1', port }],
  });
  await waitState(c, server.id, 'stopped');
  await c.start(server.id);
  await waitState(c, server.id, 'running');
  // The console as an async iterator: a command's echo arrives on it.
  const console_ = await c.console(server.id);
  await c.sendCommand(server.id, 'hello');
  let echo;
  for await (const line of console_) {
    if (line.line === '> hello') {
      echo = line;
      break;
    }
  }
  assert.strictEqual(echo.server_id, server.id);
  assert.strictEqual((await console_.next()).done, true, 'breaking out ended the feed');
  // Resuming from a sequence number replays the stored lines after it.
  for (let i = 0; i < 100 && !(await c.logs(server.id)).some((l) => l.seq === echo.seq); i++) await sleep(50);
  const replay = await c.console(server.id, echo.seq - 1);
  assert.strictEqual((await replay.next()).value.seq, echo.seq);
  // close() ends a feed even while it waits.
  const waiting = replay.next();
  replay.close();
  assert.strictEqual((await waiting).done, true);
  // Events: the suspension arrives as a state update.
  const events = await c.events(server.id);
  await c.suspend(server.id);
  let suspended;
  for await (const e of events) {
    if (e.type === 'server_state_update' && e.to === 'suspended') {
      suspended = e;
      break;
    }
  }
  assert.strictEqual(suspended.server_id, server.id);
  await waitState(c, server.id, 'suspended');
  await rejectsWith(c.start(server.id), 'invalid_transition');
  await c.unsuspend(server.id);
  await waitState(c, server.id, 'stopped');
  await c.deleteServer(server.id);
  await rejectsWith(c.getServer(server.id), 'not_found');
  await rejectsWith(c.getServer('not-an-id'), 'invalid_input');
  await rejectsWith(c.createLocation({ name: 5 }), 'invalid_input');
  await rejectsWith(c.events(server.id), 'not_found');
}

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

test('type definitions match the native class', () => {
  const dts = fs.readFileSync(path.join(__dirname, '..', 'index.d.ts'), 'utf8');
  const body = dts.slice(dts.indexOf('export declare class Catalyst '));
  const declared = [...body.matchAll(/^ {2}(\w+)\(/gm)].map((m) => m[1]).sort();
  const actual = Object.getOwnPropertyNames(Catalyst.prototype).filter((n) => n !== 'constructor').sort();
  assert.deepStrictEqual(declared, actual);
});

test('embedded on SQLite with a local process node', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'catalyst-node-'));
  const c = await Catalyst.embedded(`sqlite:${dir}/c.db`, { dataDir: dir, localNode: 'process' });
  await flow(c, 25701);
  // Closing ends its node, tasks and database connections; closing twice is harmless.
  await c.close();
  await rejectsWith(c.listLocations(), 'unavailable');
  await c[Symbol.asyncDispose]();
  await rejectsWith(Catalyst.embedded('sqlite:/nonexistent-dir/x/c.db', { localNode: 'nope' }), 'invalid_input');
});

test('remote against a catalyst-server', async (t) => {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'catalyst-node-server-'));
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CATALYST_')));
  env.CATALYST_ADMIN_EMAIL = 'admin@example.test';
  env.CATALYST_ADMIN_PASSWORD = 'admin-password';
  const bin = path.join(TARGET, 'debug', 'catalyst-server');
  assert.ok(fs.existsSync(bin), `${bin} is missing: run cargo build --workspace --bins`);
  const proc = spawn(bin, ['--listen', `127.0.0.1:${port}`, '--data-dir', dir, '--local-runtime', 'process', '--sftp-listen', ''], { env, stdio: 'ignore' });
  t.after(() => proc.kill());
  const url = `http://127.0.0.1:${port}`;
  let up = false;
  for (let i = 0; i < 200 && !up; i++) {
    up = await fetch(`${url}/api/health`).then((r) => r.ok, () => false);
    if (!up) await sleep(50);
  }
  assert.ok(up, 'catalyst-server started');
  const c = await Catalyst.login(url, 'admin@example.test', 'admin-password');
  await flow(c, 25702);
  await rejectsWith(Catalyst.login(url, 'admin@example.test', 'wrong'), 'unauthenticated');
  await rejectsWith(Catalyst.connect(url, 'forged').me(), 'unauthenticated');
});

test('the watchdog example restarts a crashed server and follows its console', async () => {
  const { watch } = require('../examples/watchdog.js');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'catalyst-watchdog-'));
  const c = await Catalyst.embedded(`sqlite:${dir}/c.db`, { dataDir: dir, localNode: 'process' });
  const user = await c.createUser({ email: 'w@example.test', username: 'watched', password: 'changeme-123' });
  const node = (await c.listNodes()).items[0];
  const template = await c.createTemplate({
    name: 'crashy', image: 'busybox',
    startup: 'echo Done; while read line; do [ "$line" = crash ] && exit 3; echo "> $line"; done',
    stop: { type: 'signal', value: 'SIGTERM' }, done_patterns: [{ type: 'substring', value: 'Done' }],
  });
  const never = { mode: 'never', max_restarts: 0, window_secs: 60, backoff_initial_ms: 0, backoff_max_ms: 0, restart_on_oom: false };
  const server = await c.createServer({
    name: 'crashy', owner_id: user.id, node_id: node.id, template_id: template.id, restart_policy: never,
    limits: { memory_mb: 256, disk_mb: 1024 }, allocations: [{ ip: '127.0.0.1', port: 25703 }],
  });
  await waitState(c, server.id, 'stopped');
  await c.start(server.id);
  await waitState(c, server.id, 'running');
  const seen = [];
  const stop = new AbortController();
  const watching = watch(c, server.id, { signal: stop.signal, onLine: (l) => seen.push(l.line) });
  // The watchdog subscribes in the background: repeat until it hears.
  for (let i = 0; i < 100 && !seen.includes('> before'); i++) {
    await c.sendCommand(server.id, 'before');
    await sleep(100);
  }
  await c.sendCommand(server.id, 'crash');
  await waitState(c, server.id, 'running'); // crashed, then started again by the watchdog
  for (let i = 0; i < 100 && !seen.includes('> after'); i++) {
    await c.sendCommand(server.id, 'after').catch(() => {});
    await sleep(100);
  }
  stop.abort();
  const restarts = await watching;
  assert.ok(restarts >= 1, 'the watchdog restarted it');
  assert.ok(seen.includes('> before') && seen.includes('> after'), `console followed: ${seen.join(' | ')}`);
});

test('the packed package installs into a fresh folder and runs', async () => {
  const { execFileSync } = require('node:child_process');
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'catalyst-npm-'));
  const packed = execFileSync('npm', ['pack', '--silent', '--pack-destination', work], { cwd: path.join(__dirname, '..') }).toString().trim().split('\n').pop();
  const app = path.join(work, 'app');
  fs.mkdirSync(app);
  execFileSync('npm', ['init', '-y', '--silent'], { cwd: app });
  execFileSync('npm', ['install', '--silent', '--no-audit', '--no-fund', path.join(work, packed)], { cwd: app });
  const script = `
    const { Catalyst } = require('catalyst');
    (async () => {
      const c = await Catalyst.embedded('sqlite:${app}/c.db', { dataDir: '${app}' });
      const loc = await c.createLocation({ name: 'installed' });
      console.log((await c.listLocations()).map((l) => l.name).join(','), loc.id.length);
      process.exit(0);
    })();`;
  const out = execFileSync('node', ['-e', script], { cwd: app }).toString();
  assert.match(out, /^installed 36/);
  const usage = require('node:child_process').spawnSync('node', [path.join(app, 'node_modules/catalyst/examples/watchdog.js')], { cwd: app });
  assert.strictEqual(usage.status, 2, 'the example runs and asks for its arguments');
});
