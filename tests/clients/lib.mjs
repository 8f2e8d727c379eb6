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
