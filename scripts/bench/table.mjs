// Turns the scenario reports of scripts/bench/run (JSON lines) into one table: each figure for
// each server and partyd's ratio to each other server. Writes every report to results.json.
import {readFileSync, writeFileSync} from 'node:fs';
import {cpus} from 'node:os';

const [input, output, strict] = process.argv.slice(2);
const lines = readFileSync(input, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line));
const servers = [...new Set(lines.map((line) => line.server))];
const report = (server, scenario) => lines.find((line) => line.server === server && line.scenario === scenario)?.report;

// [figure, scenario, how to read the report, unit, true if higher is better]
const figures = [
  ['max sustained fan-out deliveries/s (p99 ≤ 20 ms, all delivered)', 'max', (r) => r.max_sustained_deliveries_per_s ?? (r.sustains_less_than_deliveries_per_s ? {below: r.sustains_less_than_deliveries_per_s} : undefined), '/s', true],
  ['fan-out at ~7,200 deliveries/s: p99 latency', 'fanout-comfortable', (r) => r.p99_ms, 'ms', false],
  ['fan-out at ~7,200 deliveries/s: server CPU per delivery', 'fanout-comfortable', (r) => r.server_cpu_us_per_delivery, 'µs', false],
  ['fan-out at ~7,200 deliveries/s: group commits/s (partyd)', 'fanout-comfortable', (r) => r.group_commits_per_s, '/s', null],
  ['fan-out at ~7,200 deliveries/s: changes per group commit', 'fanout-comfortable', (r) => r.changes_per_group_commit, '', null],
  ['fan-out at ~72,000 deliveries/s: deliveries/s achieved', 'fanout-node-rate', (r) => r.deliveries_per_s, '/s', true],
  ['fan-out at ~72,000 deliveries/s: p99 latency', 'fanout-node-rate', (r) => r.p99_ms, 'ms', false],
  ['fan-out at ~72,000 deliveries/s: server CPU per delivery', 'fanout-node-rate', (r) => r.server_cpu_us_per_delivery, 'µs', false],
  ['fan-out at ~72,000 deliveries/s: group commits/s (partyd)', 'fanout-node-rate', (r) => r.group_commits_per_s, '/s', null],
  ['fan-out at ~72,000 deliveries/s: changes per group commit', 'fanout-node-rate', (r) => r.changes_per_group_commit, '', null],
  ['fan-out at ~72,000 deliveries/s: generator CPU per delivery', 'fanout-node-rate', (r) => r.generator_cpu_us_per_delivery, 'µs', null],
  ['GET store: requests/s (10 clients)', 'get', (r) => r.requests_per_s, '/s', true],
  ['GET store: p99 latency', 'get', (r) => r.p99_ms, 'ms', false],
  ['GET store: server CPU per request', 'get', (r) => r.server_cpu_us_per_request, 'µs', false],
  ['server RSS per idle connection (10,000)', 'connect', (r) => r.server_kib_per_socket, 'KiB', false],
  ['cold load: first GET of a stored 10,000-row room', 'coldload', (r) => r.first_get_ms, 'ms', false],
  ['smoke: fan-out deliveries/s', 'fanout-smoke', (r) => r.deliveries_per_s, '/s', true],
  ['smoke: GET requests/s', 'get-smoke', (r) => r.requests_per_s, '/s', true],
];

// A value may be `{below: x}`: the server sustains less than x (it failed the first step).
const number = (value) => (value?.below ?? value);
const format = (value, unit) => {
  if (value === undefined || value === null || Number.isNaN(number(value))) return '—';
  const n = number(value);
  return `${value.below ? '< ' : ''}${n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(n >= 10 ? 1 : 2)} ${unit}`;
};
const others = servers.filter((server) => server !== 'partyd');
const header = ['figure', ...servers, ...others.map((other) => `partyd vs ${other}`)];
const rows = [];
for (const [name, scenario, read, unit, higherBetter] of figures) {
  const values = servers.map((server) => {
    const r = report(server, scenario);
    return r ? read(r) : undefined;
  });
  if (values.every((value) => value === undefined || value === null)) continue;
  const partyd = values[servers.indexOf('partyd')];
  const ratios = others.map((other) => {
    const theirs = values[servers.indexOf(other)];
    if (higherBetter === null || !number(partyd) || !number(theirs)) return '—';
    const better = higherBetter ? number(partyd) / number(theirs) : number(theirs) / number(partyd);
    const bound = theirs.below && higherBetter ? '> ' : '';
    return `${bound}${better.toFixed(better >= 10 ? 0 : 1)}× ${better >= 1 ? 'better' : 'worse'}`;
  });
  rows.push([name, ...values.map((value) => format(value, unit)), ...ratios]);
}
const lost = lines.filter((line) => line.report?.last_values_stored === false || line.report?.received < line.report?.expected || line.error);
const table = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((row) => `| ${row.join(' | ')} |`)].join('\n');
console.log(`\n${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'}), shared by the server under test and the load generator (one tokio thread).`);
console.log('partyd runs durable: every change is flushed to disk (group commit) before it is broadcast. tinybase-node is TinyBase\'s TinyBasePartyKitServer class on Node with an in-memory store.\n');
console.log(table);
console.log(lost.length ? `\nIncomplete runs (deliveries missing, last values not stored, or errors): ${lost.map((line) => `${line.server}/${line.scenario}`).join(', ')}` : '\nEvery fan-out run delivered every change and every room stored every sender\'s last change.');
writeFileSync(output, JSON.stringify({machine: {cpus: cpus().length, model: cpus()[0]?.model}, results: lines}, null, 2));
console.log(`\nAll reports: ${output}`);
if (strict === '--strict' && lost.length) process.exit(1);
