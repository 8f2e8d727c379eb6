// Helpers shared by partyd's own real-client tests.
import assert from 'node:assert/strict';

export const HOST = process.env.PARTY_HOST;

let rooms = 0;
/** A room name no other test (or earlier run) uses. */
export const newRoom = () => `c-${process.pid}-${Date.now().toString(36)}-${rooms++}`;
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` until it is true; fails with `what` after `timeout` ms. */
export const until = async (probe, what, timeout = 5000) => {
  const deadline = Date.now() + timeout;
  while (!(await probe())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for: ${typeof what === 'function' ? what() : what}`);
    await sleep(20);
  }
};

/** JSON with object keys sorted, so that comparisons ignore key order. */
export const sorted = (value) => JSON.stringify(value, (_k, v) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v));
export const same = (a, b) => sorted(a) === sorted(b);

/** A partyd of a test's own, from PARTYD_BIN, on a fresh port: `{child, host, log()}`. */
export const startPartyd = async (configFile, dataDir) => {
  const {spawn} = await import('node:child_process');
  const child = spawn(process.env.PARTYD_BIN, ['--config', configFile, '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--log-format', 'pretty'], {stdio: ['ignore', 'ignore', 'pipe']});
  let log = '';
  child.stderr.on('data', (chunk) => (log += chunk));
  await until(() => /listening on (127\.0\.0\.1:\d+)/.test(log), () => `partyd starts: ${log}`, 10000);
  return {child, host: /listening on (127\.0\.0\.1:\d+)/.exec(log)[1], log: () => log};
};

/** A process's resident set size now and at its peak, in KiB (Linux's /proc). */
export const memoryKib = async (pid) => {
  const {readFile} = await import('node:fs/promises');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)[1]);
  return {rss: field('VmRSS'), peak: field('VmHWM')};
};
