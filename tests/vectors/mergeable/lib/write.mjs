// The JSON of the vector files, and the wire encoding of `undefined`.
//
// The files are read by serde_json (and by partyd's own parser for values.json), so they must be
// plain JSON: `undefined` is written as the string "\uFFFC" (as TinyBase writes it on the wire),
// and a lone UTF-16 surrogate, which JSON.stringify would escape as `\udXXX` and serde_json
// refuses, is an error here (such inputs are written as arrays of code units instead).
import {mkdirSync, writeFileSync} from 'node:fs';
import {dirname} from 'node:path';

export const UNDEFINED = '\uFFFC';

/** `value` as a TinyBase WebSocket client writes it: undefined becomes "\uFFFC" at any depth. */
export const encodeWire = (value) =>
  JSON.stringify(value, (_key, member) => (member === undefined ? UNDEFINED : member));

/** A received message body: JSON.parse, then "\uFFFC" becomes undefined at any depth. */
export const decodeWire = (text) => {
  const revive = (value) =>
    value === UNDEFINED
      ? undefined
      : Array.isArray(value)
        ? value.map(revive)
        : value !== null && typeof value == 'object'
          ? Object.fromEntries(Object.entries(value).map(([key, member]) => [key, revive(member)]))
          : value;
  return revive(JSON.parse(text));
};

/** What a value looks like after a trip over a socket (a fresh copy, undefined kept). */
export const overTheWire = (value) => decodeWire(encodeWire(value));

// Numbers as JSON.stringify writes them, except that -0 stays -0 (values.json feeds a literal -0
// to partyd's parser; JavaScript's own JSON.parse reads it back as -0 too).
const leaf = (value) =>
  value === undefined
    ? JSON.stringify(UNDEFINED)
    : typeof value == 'number' && Object.is(value, -0)
      ? '-0'
      : JSON.stringify(value);

const isContainer = (value) => value !== null && typeof value == 'object';

const compact = (value) =>
  !isContainer(value)
    ? leaf(value)
    : Array.isArray(value)
      ? '[' + value.map(compact).join(',') + ']'
      : '{' + Object.keys(value).map((key) => JSON.stringify(key) + ':' + compact(value[key])).join(',') + '}';

const WIDTH = 100;

// Two-space indentation; any array or object that fits on the rest of its line stays on one line.
const pretty = (value, indent, used) => {
  const flat = compact(value);
  if (!isContainer(value) || indent.length + used + flat.length <= WIDTH) return flat;
  const inner = indent + '  ';
  const [open, close, members] = Array.isArray(value)
    ? ['[', ']', value.map((member) => pretty(member, inner, 1))]
    : [
        '{',
        '}',
        Object.keys(value).map((key) => {
          const name = JSON.stringify(key) + ': ';
          return name + pretty(value[key], inner, name.length + 1);
        }),
      ];
  if (members.length == 0) return open + close;
  return open + '\n' + members.map((member) => inner + member).join(',\n') + '\n' + indent + close;
};

const LONE_SURROGATE = /\\ud[89a-f][0-9a-f]{2}/i;

/** Writes `value` to `path` as formatted JSON, refusing anything serde_json could not read. */
export const writeJson = (path, value) => {
  const text = pretty(value, '', 0) + '\n';
  if (LONE_SURROGATE.test(text)) throw new Error(`${path}: a lone surrogate would be escaped`);
  mkdirSync(dirname(path), {recursive: true});
  writeFileSync(path, text);
};
