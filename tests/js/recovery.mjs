// Connection state recovery with the official client (socket.io-client 4.8): one client
// joins a room, receives numbered events `n` (its last argument, the offset, is kept by the
// client itself), loses its connection after `blipAfter` of them (`engine.close()`, as a
// network change does) and reconnects, to `urls[1]` if given (any node of the cluster).
// Prints a JSON line per fact: `connect` (with `recovered` and the pid the client holds),
// `joined`, `blip`, and at the end `done` with every number received, in order.
//
//   node recovery.mjs '{"urls":["http://127.0.0.1:3001","http://127.0.0.1:3002"],
//                       "transports":["websocket"],"room":"news","expect":60,"blipAfter":20}'
import { io } from "socket.io-client";

const opts = JSON.parse(process.argv[2] ?? "{}");
const urls = opts.urls;
const expect = opts.expect ?? 10;
const blipAfter = opts.blipAfter ?? Number.POSITIVE_INFINITY;
const print = (fact) => console.log(JSON.stringify(fact));

const nsp = opts.nsp ?? "";
const event = opts.event ?? "n";
let histories = 0;
const socket = io(urls[0] + nsp, {
  transports: opts.transports ?? ["polling", "websocket"],
  auth: opts.auth ?? {},
  reconnectionDelay: opts.reconnectionDelay ?? 100,
  reconnectionDelayMax: Math.max(300, opts.reconnectionDelay ?? 0),
  forceNew: true,
});

const received = [];
const offsets = [];
const connects = [];
let blipped = false;
let finishing = false;

// wherever the connection was lost, the next one goes to the other node
socket.on("disconnect", (reason) => {
  print({ event: "disconnect", reason });
  if (urls[1]) socket.io.uri = urls[1] + nsp;
});

socket.on("connect", () => {
  const fact = {
    event: "connect",
    id: socket.id,
    recovered: socket.recovered,
    pid: socket._pid ?? null,
    transport: socket.io.engine.transport.name,
  };
  connects.push(fact);
  print(fact);
  if (opts.stopAfterConnect) finish(0);
  if (connects.length === 1 && opts.room) {
    socket.emit("join", opts.room, (reply) => {
      print({ event: "joined", reply });
      if (opts.publish) publishAll();
      // before any event: the client holds a pid but no offset yet
      if (opts.blipOnJoin && !blipped) {
        blipped = true;
        print({ event: "blip", after: 0 });
        socket.io.engine.close();
      }
    });
  }
});

socket.on("connect_error", (e) => print({ event: "connect_error", message: e.message }));

// `publish: {url, count, everyMs}`: another client publishes 1..count into the room through
// the gateway's `publish` event (each after the previous one's ack), starting once this
// one has joined: broadcasts made by a node for its own and the other nodes' sockets
async function publishAll() {
  const p = opts.publish;
  const publisher = io(p.url, { transports: ["websocket"], forceNew: true });
  await new Promise((resolve) => publisher.once("connect", resolve));
  for (let i = 1; i <= p.count; i++) {
    await publisher
      .timeout(5000)
      .emitWithAck("publish", { room: opts.room, event, data: i })
      .catch(() => print({ event: "publish_failed", n: i }));
    await new Promise((r) => setTimeout(r, p.everyMs ?? 15));
  }
  publisher.close();
}

socket.on("history", () => histories++);

socket.on(event, (...args) => {
  const first = args[0];
  received.push(typeof first === "object" && first !== null ? first.n : first);
  offsets.push(args.length > 1 ? args[args.length - 1] : null);
  if (!blipped && received.length >= blipAfter) {
    blipped = true;
    print({ event: "blip", after: received.length });
    socket.io.engine.close();
  }
  // a little longer, so a duplicate of the last ones would be seen too
  if (received.length >= expect && !finishing) {
    finishing = true;
    setTimeout(() => finish(0), 300);
  }
});

function finish(code) {
  print({ event: "done", received, offsets: offsets.slice(0, 3), connects, histories, lastOffset: socket._lastOffset ?? null });
  socket.close();
  setTimeout(() => process.exit(code), 10);
}

setTimeout(() => finish(1), opts.timeoutMs ?? 20000);
