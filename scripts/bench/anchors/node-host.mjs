// TinyBase's own TinyBasePartyKitServer class (tinybase 10.0.1), hosted on Node's http and the
// `ws` package with PartyKit's room emulated in memory: what a user would otherwise run without
// Cloudflare. Rooms at /parties/<party>/<room>, sockets with ?_pk=<connection id>.
// Usage: node anchors/node-host.mjs [port]   (prints "listening on 127.0.0.1:PORT" to stderr)
import {createServer} from 'node:http';
import {WebSocketServer} from 'ws';
import {TinyBasePartyKitServer} from 'tinybase/persisters/persister-partykit-server';

/** PartyKit's room storage, in memory: get, list by prefix (sorted), put, delete, transaction. */
const createStorage = () => {
  const data = new Map();
  const storage = {
    get: async (key) => data.get(key),
    list: async ({prefix = ''} = {}) => new Map([...data].filter(([key]) => key.startsWith(prefix)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    put: async (entries) => Object.entries(entries).forEach(([key, value]) => data.set(key, value)),
    delete: async (keys) => [].concat(keys).forEach((key) => data.delete(key)),
    transaction: async (work) => work(storage),
  };
  return storage;
};

const rooms = new Map();
/** A room: PartyKit's Party.Room surface the class uses, and the class itself. */
const room = (name) => {
  if (!rooms.has(name)) {
    const connections = new Map();
    const party = {
      id: name,
      storage: createStorage(),
      broadcast: (message, without = []) => {
        for (const [socket, id] of connections) if (!without.includes(id) && socket.readyState === 1) socket.send(message);
      },
    };
    rooms.set(name, {connections, server: new TinyBasePartyKitServer(party)});
  }
  return rooms.get(name);
};

const roomOf = (url) => /^\/parties\/([^/]+)\/([^/?]+)/.exec(url)?.slice(1).join('/');

const http = createServer(async (req, res) => {
  const name = roomOf(req.url);
  if (!name) return res.writeHead(404).end();
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const body = Buffer.concat(chunks);
  const request = new Request(`http://${req.headers.host}${req.url}`, {method: req.method, body: ['GET', 'HEAD'].includes(req.method) ? undefined : body});
  const response = await room(name).server.onRequest(request);
  res.writeHead(response.status, Object.fromEntries(response.headers));
  res.end(Buffer.from(await response.arrayBuffer()));
});

const sockets = new WebSocketServer({noServer: true});
http.on('upgrade', (req, socket, head) => {
  const name = roomOf(req.url);
  if (!name) return socket.destroy();
  const id = new URL(req.url, 'http://x').searchParams.get('_pk') ?? crypto.randomUUID();
  sockets.handleUpgrade(req, socket, head, (ws) => {
    const {connections, server} = room(name);
    connections.set(ws, id);
    ws.on('message', (data) => server.onMessage(data.toString(), {id}));
    ws.on('close', () => connections.delete(ws));
  });
});

http.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => console.error(`listening on 127.0.0.1:${http.address().port}`));
