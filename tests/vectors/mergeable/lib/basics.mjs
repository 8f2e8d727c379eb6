// hash.json, hlc.json and values.json: TinyBase's hash function, hybrid logical clock and leaf
// hashes, computed by the library's own exports (tinybase/common) and by real MergeableStores.
import {getHash, getHlcFunctions, getValueHash} from 'tinybase/common';
import {createMergeableStore} from 'tinybase/mergeable-store';

const T0 = 1_700_000_000_000;
const utf8Hex = (text) => Buffer.from(new TextEncoder().encode(text)).toString('hex');

// Strings whose hashes pin down FNV-1a over TextEncoder's UTF-8: the standard FNV test values,
// the strings a store actually hashes (leaf and child entries), every UTF-8 length, and controls.
const HASH_STRINGS = [
  '',
  'a',
  'b',
  'foobar',
  'partyd',
  'species:0',
  'fido:1813347336',
  '"dog":NjEtLV-----67WEb',
  'null:NjEtLV-----67WEb',
  'true:NjEtLV-----67WEb',
  '\u0000',
  'a\u0000b',
  '\u007f',
  '\u0080',
  'é',
  '\u07ff',
  '\u0800',
  '€',
  '日本語',
  '\uffff',
  '\u{10000}',
  '😀',
  '\u{10ffff}',
  '\uFFFD{"a":1}',
  '\uFFFC',
  '\u2028\u2029',
  'x'.repeat(1000),
  'grüße 日本 😀 '.repeat(40),
];

// Strings with lone UTF-16 surrogates, as code units: TextEncoder writes each as U+FFFD.
const LONE_SURROGATES = [[0xd800], [0xdbff], [0xdc00], [0xdfff], [0x61, 0xdc00, 0x62], [0xde00, 0xd83d], [0xd83d, 0x41]];

export const hashJson = () => ({
  about: 'getHash(string): 32-bit FNV-1a over the UTF-8 bytes (TextEncoder) of the string, unsigned.',
  cases: [
    ...HASH_STRINGS.map((input) => ({input, utf8: utf8Hex(input), hash: getHash(input)})),
    ...LONE_SURROGATES.map((units) => {
      const input = String.fromCharCode(...units);
      return {inputUtf16: units, utf8: utf8Hex(input), hash: getHash(input)};
    }),
  ],
});

const UNIQUE_IDS = ['alice', 'bob', 'server', 'ada', 'ben', 'cy', '', 'ü', '😀', 'a-much-longer-unique-id-0123456789'];

const TIMES = [0, 1, 63, 64, 4095, 4096, 2 ** 30, 73_267_200_000, T0, T0 + 1, 2 ** 42 - 1];
const COUNTERS = [0, 1, 63, 64, 4095, 2 ** 24 - 1];

// A clock with a settable now; `steps` run against it and record the state after each.
const runSequence = ({name, uniqueId, steps}) => {
  let now = 0;
  const [getNextHlc, seenHlc, , , getLastLogicalTime, getLastCounter] = getHlcFunctions(uniqueId, () => now);
  return {
    name,
    uniqueId,
    steps: steps.map(([op, at, hlc]) => {
      now = at;
      const step = {now: at, op};
      if (op == 'next') step.hlc = getNextHlc();
      else if (hlc === undefined) seenHlc();
      else seenHlc((step.hlc = hlc));
      return {...step, lastLogicalTime: getLastLogicalTime(), lastCounter: getLastCounter()};
    }),
  };
};

const [, , encodeHlc] = getHlcFunctions('bob');
const bob = (time, counter) => encodeHlc(time, counter);
const FIVE_MINUTES = 300_000;

const SEQUENCES = [
  {
    name: 'same millisecond: the counter counts up; a later millisecond: it restarts at 0',
    steps: [['next', T0], ['next', T0], ['next', T0], ['next', T0 + 1], ['next', T0 + 60_000]],
  },
  {
    name: 'the wall clock goes back: the logical time holds and the counter counts up',
    steps: [['next', T0 + 10], ['next', T0 + 3], ['next', T0], ['next', T0 + 10], ['next', T0 + 11]],
  },
  {
    name: 'a remote HLC ahead of now (under 5 minutes): its time and counter are adopted',
    steps: [['next', T0], ['seen', T0, bob(T0 + 90_000, 7)], ['next', T0], ['next', T0 + 90_000], ['next', T0 + 90_001]],
  },
  {
    name: 'a remote HLC at the same logical time: the larger counter is kept',
    steps: [['next', T0], ['seen', T0, bob(T0, 12)], ['next', T0], ['seen', T0, bob(T0, 3)], ['next', T0]],
  },
  {
    name: 'a remote HLC behind now: now wins and the counter restarts',
    steps: [['seen', T0, bob(T0 - 5_000, 9)], ['next', T0], ['seen', T0 + 2, bob(T0 + 1, 40)], ['next', T0 + 2]],
  },
  {
    name: 'a remote HLC more than 5 minutes ahead is ignored; exactly 5 minutes is adopted',
    steps: [
      ['next', T0],
      ['seen', T0, bob(T0 + FIVE_MINUTES + 1, 0)],
      ['next', T0],
      ['seen', T0, bob(T0 + FIVE_MINUTES, 2)],
      ['next', T0],
    ],
  },
  {
    name: 'malformed HLCs are ignored; an empty one counts as time 0',
    steps: [
      ['next', T0],
      ['seen', T0, 'NjEtLV-----5le2'],
      ['seen', T0, 'NjEtLV-----5le2JX'],
      ['seen', T0, 'NjEtLV-----5le.J'],
      ['seen', T0, 'NjEtLV-----5le J'],
      ['next', T0],
      ['seen', T0 + 5, ''],
      ['next', T0 + 5],
    ],
  },
  {
    name: 'seen with no HLC at all only moves the time to now',
    steps: [['next', T0], ['seen', T0], ['next', T0], ['seen', T0 + 7], ['seen', T0 + 7], ['next', T0 + 7]],
  },
  {
    name: 'counter overflow: after 2^24-1 the logical time moves on by 1 ms',
    steps: [
      ['seen', T0, bob(T0, 2 ** 24 - 2)],
      ['next', T0],
      ['next', T0],
      ['next', T0],
      ['next', T0 + 1],
      ['next', T0 + 2],
    ],
  },
  {
    name: 'a remote HLC at the last counter: the next local HLC overflows into the next millisecond',
    steps: [['seen', T0, bob(T0, 2 ** 24 - 1)], ['next', T0], ['next', T0 + 1], ['next', T0 + 2]],
  },
];

export const hlcJson = () => {
  const [, , encode, decode] = getHlcFunctions('ada');
  const clientIdOf = (uniqueId) => getHlcFunctions(uniqueId)[6]();
  return {
    about:
      'HLC = 16 characters of the alphabet: 7 for the logical time (ms, 42 bits), 4 for the counter ' +
      '(24 bits), 5 for the client id (low 30 bits of getHash(uniqueId)), most significant first. ' +
      'A clock starts at lastLogicalTime 0, lastCounter -1.',
    alphabet: '-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz',
    clientIds: UNIQUE_IDS.map((uniqueId) => ({uniqueId, hash: getHash(uniqueId), clientId: clientIdOf(uniqueId)})),
    encodes: UNIQUE_IDS.slice(0, 3).flatMap((uniqueId) =>
      TIMES.flatMap((time) =>
        COUNTERS.map((counter) => {
          const hlc = encode(time, counter, uniqueId);
          return {time, counter, uniqueId, hlc, decoded: decode(hlc)};
        }),
      ),
    ),
    sequences: SEQUENCES.map((sequence) => runSequence({uniqueId: 'ada', ...sequence})),
  };
};

const VALUES = [
  ['string', 'dog'],
  ['empty string', ''],
  ['quotes and backslash', 'say "hi" \\ bye'],
  ['control characters', 'a\u0000b\u0001\b\t\n\u000b\f\r\u001f'],
  ['DEL and C1 controls are not escaped', '\u007f\u0080\u009f'],
  ['slash and angle brackets are not escaped', '</script>'],
  ['line and paragraph separators are not escaped', '\u2028\u2029'],
  ['non-ASCII', 'grüße € 日本'],
  ['astral', '😀𝄞'],
  ['U+FFFD-prefixed string (how objects and arrays travel)', '\uFFFD{"a":1}'],
  ['true', true],
  ['false', false],
  ['null', null],
  ['undefined (a deleted cell)', undefined],
  ['zero', 0],
  ['negative zero', -0],
  ['integer', 42],
  ['negative', -7],
  ['fraction', 1.5],
  ['0.1', 0.1],
  ['0.1 + 0.2', 0.1 + 0.2],
  ['1/3', 1 / 3],
  ['2^31', 2 ** 31],
  ['2^32', 2 ** 32],
  ['1e20', 1e20],
  ['1e21', 1e21],
  ['1.5e21', 1.5e21],
  ['-1e21', -1e21],
  ['1e-6', 1e-6],
  ['1.234e-6', 1.234e-6],
  ['1e-7', 1e-7],
  ['1.5e-7', 1.5e-7],
  ['2^53', 2 ** 53],
  ['2^53 + 2', 2 ** 53 + 2],
  ['-2^53', -(2 ** 53)],
  ['max safe integer', Number.MAX_SAFE_INTEGER],
  ['123456789012345680000', 123456789012345680000],
  ['smallest positive', Number.MIN_VALUE],
  ['largest', Number.MAX_VALUE],
  ['-1e300', -1e300],
  ['1e100', 1e100],
];

const OBJECTS = [
  ['object', {friendly: true, tags: ['a', 'b']}],
  ['array', [1, 'x', null, {k: 2}]],
  ['object with integer-like keys', {b: 1, 10: 2, a: 3, 2: 4, '-1': 5, '01': 6}],
  ['nested, with escapes', {'say "hi"': ['\n', '日本', {deep: [[]]}]}],
  ['empty object', {}],
  ['empty array', []],
];

// A fresh store per value, so each write gets the same HLC: T0, counter 0, client of "values".
const storeStamp = (value) => {
  const store = createMergeableStore('values', () => T0);
  store.setCell('t', 'r', 'c', value);
  const row = store.__[1]()[0][0].t?.[0].r?.[0];
  return row?.c;
};

export const valuesJson = () => {
  const hlc = getHlcFunctions('values')[2](T0, 0);
  const check = (value, json, name) => {
    const hash = getValueHash(value, hlc);
    if (getHash(json + ':' + hlc) != hash) throw new Error(`values.json: ${name}: hash input differs`);
    return hash;
  };
  return {
    about:
      'Leaf hash = getHash(JSON.stringify(value ?? null) + ":" + hlc), from getValueHash. `json` is ' +
      'JavaScript\'s JSON of the value; storeHash is the hash a real MergeableStore (uniqueId "values", ' +
      'clock at T0) gave the cell when Store.setCell wrote it (absent when setCell refused the value). ' +
      '`objects` are written by setCell as their stored U+FFFD form.',
    hlc,
    cases: VALUES.map(([name, value]) => {
      const json = JSON.stringify(value ?? null);
      const hash = check(value, json, name);
      const stamp = storeStamp(value);
      const stored = stamp && stamp[1] == hlc && stamp[0] === value ? {storeHash: stamp[2]} : {store: 'refused'};
      return {name, value, json, hash, ...(value === undefined ? {} : stored)};
    }),
    objects: OBJECTS.map(([name, value]) => {
      const [stored, stampHlc, hash] = storeStamp(value);
      if (stampHlc != hlc) throw new Error(`values.json: ${name}: unexpected HLC ${stampHlc}`);
      if (getValueHash(stored, hlc) != hash) throw new Error(`values.json: ${name}: stored hash differs`);
      return {name, value, stored, json: JSON.stringify(stored), hlc, hash};
    }),
  };
};
