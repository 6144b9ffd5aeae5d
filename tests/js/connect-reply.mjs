// The pid in Socket.IO CONNECT replies, as the official client sees it.
//
//   node connect-reply.mjs '<json>'
//   json = {"url": "http://127.0.0.1:PORT", "namespaces": ["/", "/chat"], "echo": true,
//           "runs": [{"name": "websocket", "transports": ["websocket"]}, ...]}
//
// For each run, one Manager (one Engine.IO session) opens a socket on every namespace and
// reports the socket's id and the pid the client kept from the CONNECT reply
// (socket.io-client 4.8 `onconnect(id, pid)` keeps it in `socket._pid`). With `echo`, each
// socket then sends an `echo` event and reports its ack (the stream is intact after the
// rewrite). Prints one JSON line; exits 1 with {"error": ...} when a step fails or times out.
import { Manager } from "socket.io-client";

const opts = JSON.parse(process.argv[2] ?? "{}");
const WAIT_MS = opts.waitMs ?? 10_000;

function withTimeout(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${WAIT_MS} ms waiting for ${what}`)), WAIT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function connected(socket, what) {
  return withTimeout(
    new Promise((resolve, reject) => {
      if (socket.connected) return resolve();
      socket.once("connect", resolve);
      socket.once("connect_error", (err) => reject(new Error(`connect_error: ${err.message}`)));
    }),
    what,
  );
}

async function run({ name, transports }) {
  const manager = new Manager(opts.url, { transports, reconnection: false, forceNew: true });
  const sockets = opts.namespaces.map((nsp) => manager.socket(nsp));
  // the client's transport when each connect event fired (a reply sent on polling may be
  // processed once the upgrade is done)
  const connectedOn = sockets.map(() => null);
  sockets.forEach((s, i) => s.once("connect", () => (connectedOn[i] = manager.engine.transport.name)));
  try {
    await Promise.all(sockets.map((s, i) => connected(s, `${name} connect ${opts.namespaces[i]}`)));
    if (transports.length > 1 && manager.engine.transport.name === "polling") {
      await withTimeout(new Promise((resolve) => manager.engine.once("upgrade", resolve)), `${name} upgrade`);
    }
    const out = [];
    for (const [i, socket] of sockets.entries()) {
      const fact = { nsp: opts.namespaces[i], id: socket.id, pid: socket._pid ?? null, connectedOn: connectedOn[i] };
      if (opts.echo) {
        fact.echo = await withTimeout(socket.timeout(WAIT_MS).emitWithAck("echo", `hi ${name}`), `${name} echo`);
      }
      out.push(fact);
    }
    return { name, finalTransport: manager.engine.transport.name, sockets: out };
  } finally {
    for (const s of sockets) s.disconnect();
    manager.engine?.close();
  }
}

try {
  const runs = [];
  for (const r of opts.runs) runs.push(await run(r));
  console.log(JSON.stringify({ runs }));
  process.exit(0);
} catch (err) {
  console.log(JSON.stringify({ error: String(err?.stack ?? err) }));
  process.exit(1);
}
