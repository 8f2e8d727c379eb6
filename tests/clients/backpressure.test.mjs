// One fast writer must not get a reader that keeps reading disconnected: a writer floods a room
// with 1,500 changes of 64 KiB while one reader parses every message (slower than the writer) and
// another stops reading. The steady reader receives everything, the stopped one is closed 1013,
// the writer stays connected, another room on the same server keeps its pace, and partyd's memory
// stays bounded. The test starts its own partyd (PARTYD_BIN) so that its peak RSS is this flood's.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {Worker} from 'node:worker_threads';
import {mkdtempSync, writeFileSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import WebSocket from 'ws';
import {sleep, until, startPartyd, memoryKib} from './lib.mjs';

const CHANGES = 1500;
const PAD = 'y'.repeat(64 * 1024);
/** partyd's default `outbound_buffer_bytes`. */
const OUTBOUND_BUFFER_BYTES = 16 * 1024 * 1024;

const opened = (socket) => new Promise((resolve, reject) => (socket.once('open', resolve), socket.once('error', reject)));
const closeCount = async (host, code) => {
  const metrics = await (await fetch(`http://${host}/metrics`)).text();
  return Number(new RegExp(`^partyd_closes_total\\{code="${code}"\\} (\\d+)$`, 'm').exec(metrics)?.[1] ?? 0);
};

test('a flooding writer is slowed to its readers, a reader that keeps reading gets everything, one that stops is closed 1013', async () => {
  assert.ok(process.env.PARTYD_BIN, 'PARTYD_BIN must name the partyd binary');
  const dir = mkdtempSync(join(tmpdir(), 'partyd-backpressure-'));
  writeFileSync(join(dir, 'party.toml'), '[parties.main]\nkind = "tinybase-persister"\n');
  const server = await startPartyd(join(dir, 'party.toml'), join(dir, 'data'));
  const {host} = server;
  const sockets = [];
  let worker;
  try {
    for (const room of ['flood', 'calm']) {
      assert.equal((await fetch(`http://${host}/parties/main/${room}/store`, {method: 'PUT', body: '[{},{}]'})).status, 201);
    }
    const url = (room, id) => `ws://${host}/parties/main/${room}?_pk=${id}`;
    const stopped = new WebSocket(url('flood', 'stopped'), {maxPayload: 64 * 1024 * 1024});
    sockets.push(stopped);
    await opened(stopped);
    stopped.pause();
    const stoppedClosed = new Promise((resolve) => stopped.once('close', resolve));

    worker = new Worker(new URL('./slow-reader.mjs', import.meta.url), {workerData: {url: url('flood', 'steady'), expected: CHANGES, busyMs: 3}});
    const reports = [];
    worker.on('message', (report) => reports.push(report));
    await until(() => reports.some((report) => report.open), 'the steady reader opens');

    const [calmA, calmB] = [new WebSocket(url('calm', 'a')), new WebSocket(url('calm', 'b'))];
    sockets.push(calmA, calmB);
    await Promise.all([opened(calmA), opened(calmB)]);

    const writer = new WebSocket(url('flood', 'writer'));
    sockets.push(writer);
    await opened(writer);
    let writerClosed = null;
    writer.once('close', (code) => (writerClosed = code));

    const baseline = await memoryKib(server.child.pid);
    let peakSampled = baseline.rss;
    const sampling = setInterval(async () => {
      try {
        peakSampled = Math.max(peakSampled, (await memoryKib(server.child.pid)).rss);
      } catch {}
    }, 50);

    const started = performance.now();
    for (let n = 0; n < CHANGES; n++) writer.send(`s[{},{"n":${n},"pad":"${PAD}"},1]`);

    // Meanwhile another room of the same server keeps its pace: a change there reaches its other
    // socket promptly, whatever the flood does.
    let slowestCalm = 0;
    let calmRounds = 0;
    const calmDone = (async () => {
      for (let round = 0; !reports.some((report) => 'received' in report) && performance.now() - started < 25000; round++) {
        const seen = new Promise((resolve) => calmB.once('message', resolve));
        const sent = performance.now();
        calmA.send(`s[{},{"calm":${round}},1]`);
        await seen;
        slowestCalm = Math.max(slowestCalm, performance.now() - sent);
        calmRounds += 1;
        await sleep(50);
      }
    })();

    // The stopped reader reads again only once the server has closed it (1013), in time to read
    // its way to the close frame.
    await until(async () => (await closeCount(host, 1013)) >= 1, 'a slow consumer is closed', 25000);
    stopped.resume();
    assert.equal(await stoppedClosed, 1013, 'the reader that stopped reading is closed as a slow consumer');

    await until(() => reports.some((report) => 'received' in report), 'the steady reader is done or closed', 25000);
    const elapsed = performance.now() - started;
    clearInterval(sampling);
    await calmDone;
    const {peak} = await memoryKib(server.child.pid);
    const report = reports.find((report) => 'received' in report);
    console.log(`flood of ${CHANGES} x 64 KiB: the steady reader got ${report.received}${report.closed ? ` then was closed ${report.closed}` : ''} in ${(elapsed / 1000).toFixed(1)} s; partyd RSS ${(baseline.rss / 1024).toFixed(0)} MiB before, peak ${(peak / 1024).toFixed(0)} MiB (sampled ${(peakSampled / 1024).toFixed(0)} MiB); the calm room's slowest round trip ${slowestCalm.toFixed(0)} ms over ${calmRounds} rounds`);

    assert.deepEqual(report, {received: CHANGES, inOrder: true}, 'the reader that keeps reading gets every change, in order');
    assert.equal(await closeCount(host, 1013), 1, 'only the reader that stopped was closed 1013');
    assert.equal(writerClosed, null, 'the writer was slowed down, not disconnected');
    assert.equal(writer.readyState, WebSocket.OPEN);
    assert.ok(slowestCalm < 2000, `the other room kept its pace (slowest round trip ${slowestCalm.toFixed(0)} ms)`);
    // The steady reader and the stopped one each hold at most their outbound buffer (in practice
    // half of it plus the writer's bytes in flight), and the writer is not read meanwhile, so
    // nothing piles up elsewhere: a third buffer's worth covers storage and the rest.
    const overBaselineMib = (peak - baseline.rss) / 1024;
    assert.ok(overBaselineMib < (3 * OUTBOUND_BUFFER_BYTES) / (1024 * 1024), `partyd's peak RSS stays bounded (${overBaselineMib.toFixed(0)} MiB over its baseline)`);
  } finally {
    worker?.terminate();
    sockets.forEach((socket) => socket.terminate());
    server.child.kill('SIGTERM');
    await new Promise((resolve) => server.child.once('exit', resolve));
    rmSync(dir, {recursive: true, force: true});
  }
});
