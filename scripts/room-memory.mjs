#!/usr/bin/env node
// Measures partyd's resident memory with many stored rooms and few live ones:
// stores ROOMS rooms, waits until idle unloading has taken them all out of memory, then touches
// LIVE of them, reading the server's RSS from /proc at each step. Loopback only.
//   cargo build --release && node scripts/room-memory.mjs [ROOMS=10000] [LIVE=100]
import {spawn} from 'node:child_process';
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';

const ROOMS = Number(process.argv[2] ?? 10000);
const LIVE = Number(process.argv[3] ?? 100);
const CONCURRENCY = 32;
const dir = mkdtempSync(join(tmpdir(), 'partyd-room-memory-'));

const rssKiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const start = (idleUnloadSeconds) =>
  new Promise((resolve, reject) => {
    const config = join(dir, `party-${idleUnloadSeconds}.toml`);
    writeFileSync(config, `[server]\nidle_unload_seconds = ${idleUnloadSeconds}\n\n[parties.main]\nkind = "tinybase-persister"\n`);
    const child = spawn('target/release/partyd', ['--config', config, '--listen', '127.0.0.1:0', '--data-dir', join(dir, 'data')], {stdio: ['ignore', 'ignore', 'pipe']});
    let log = '';
    child.stderr.on('data', (chunk) => {
      log += chunk;
      const found = /listening on ([0-9.:]+)/.exec(log); // text or JSON log line
      if (found) resolve({child, base: `http://${found[1]}`});
    });
    child.on('exit', (code) => reject(new Error(`partyd exited with ${code}: ${log}`)));
  });

const stop = async ({child}) => {
  child.removeAllListeners('exit');
  const exited = new Promise((resolve) => child.on('exit', resolve));
  child.kill('SIGTERM');
  await exited;
};

const inParallel = async (count, task) => {
  let next = 0;
  await Promise.all(Array.from({length: CONCURRENCY}, async () => {
    while (next < count) await task(next++);
  }));
};

const liveRooms = async (base) => Number(/^partyd_live_rooms (\d+)$/m.exec(await (await fetch(`${base}/metrics`)).text())[1]);
const content = (i) => JSON.stringify([{todos: Object.fromEntries(Array.from({length: 10}, (_, r) => [`t${r}`, {text: `room ${i} todo ${r}`, done: r % 2 === 0}]))}, {owner: `user-${i}`}]);

const rows = [];
// 1. Every room stays live (idle unloading effectively off): the cost of rooms in memory.
let server = await start(86400);
rows.push(['fresh server, no rooms', rssKiB(server.child.pid), await liveRooms(server.base)]);
await inParallel(ROOMS, async (i) => {
  const response = await fetch(`${server.base}/parties/main/room-${i}/store`, {method: 'PUT', body: content(i)});
  if (response.status !== 201) throw new Error(`PUT room-${i}: ${response.status}`);
});
rows.push([`${ROOMS} rooms stored, all live (no unloading)`, rssKiB(server.child.pid), await liveRooms(server.base)]);
await stop(server);

// 2. The same data on a fresh server that unloads idle rooms after 1 s.
server = await start(1);
rows.push([`${ROOMS} rooms stored, fresh server, 0 live`, rssKiB(server.child.pid), await liveRooms(server.base)]);
await inParallel(LIVE, async (i) => void (await fetch(`${server.base}/parties/main/room-${i}/store`)).text());
rows.push([`${ROOMS} rooms stored, ${LIVE} live`, rssKiB(server.child.pid), await liveRooms(server.base)]);
// 3. Every room read once (they come and go), then all unloaded again.
await inParallel(ROOMS, async (i) => {
  const response = await fetch(`${server.base}/parties/main/room-${i}/store`);
  if (response.status !== 200) throw new Error(`GET room-${i}: ${response.status}`);
});
while ((await liveRooms(server.base)) > 0) await sleep(200);
rows.push([`${ROOMS} rooms stored, each read once, 0 live again`, rssKiB(server.child.pid), 0]);
await stop(server);
rmSync(dir, {recursive: true, force: true});

console.log(`partyd RSS (2-core machine shared with this script; figures vary by a few MiB between runs)`);
console.log('| state | RSS (MiB) | live rooms |\n|---|---|---|');
for (const [state, kib, live] of rows) console.log(`| ${state} | ${(kib / 1024).toFixed(1)} | ${live} |`);
