// Seeded randomness, so that two runs write the same bytes. TinyBase draws its transaction, request
// and fragment ids from `globalThis.crypto.getRandomValues`, and `ws` draws each client's
// Sec-WebSocket-Key (which TinyBase's server uses as the client id) from `crypto.randomBytes`.
// Both are replaced here, before `ws` is loaded (it keeps its own reference to randomBytes), and
// every vector file reseeds from its own name, so regenerating one file alone gives the same bytes
// as regenerating them all. ws's frame masks stay random: they never reach a recording.
import {createRequire} from 'node:module';

let state = 0;

/** Restarts the sequence from a seed derived from `name`. */
export const reseed = (name) => {
  state = 2166136261;
  for (const byte of Buffer.from(name)) state = Math.imul(state ^ byte, 16777619) >>> 0;
};

// mulberry32: small, fast and good enough for ids; the numbers only need to be repeatable.
const nextUint32 = () => {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return (t ^ (t >>> 14)) >>> 0;
};

const fill = (bytes) => {
  for (let i = 0; i < bytes.length; i++) bytes[i] = nextUint32() & 0xff;
  return bytes;
};

Object.defineProperty(globalThis, 'crypto', {
  value: {getRandomValues: fill},
  configurable: true,
  writable: true,
});
createRequire(import.meta.url)('crypto').randomBytes = (size) => fill(Buffer.alloc(size));

reseed('');
