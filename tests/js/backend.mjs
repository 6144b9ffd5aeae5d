// One official socket.io-client against a node with the backend proxies
// (tests/tests/backend.rs). Options (JSON, argv[2]):
//   {url, auth?, headers?, transports?, emits?: [{event, args, ack?}], seq?: N, timeoutMs?}
// Connects (reporting `connected` or the connect_error message), then emits each of `emits`
// in order with an ack (or without, `ack: false`), then `seq` numbered `seq` events at once,
// then waits for `waitEvents` events pushed to it; prints {connected, error, acks, seqAcks,
// received} as its last line. Arguments {"$binary": hex}
// are sent as bytes; bytes in acks come back as {"$binary": hex}.
import { io } from "socket.io-client";

const opts = JSON.parse(process.argv[2]);
const timeoutMs = opts.timeoutMs ?? 8000;
const facts = { connected: false, error: null, acks: [], seqAcks: [], received: [] };
const done = (code = 0) => {
  console.log(JSON.stringify(facts));
  process.exit(code);
};
setTimeout(() => {
  facts.error = facts.error ?? "scenario timeout";
  done(1);
}, timeoutMs + 5000);

const toWire = (v) =>
  v && typeof v === "object" && v.$binary !== undefined
    ? Buffer.from(v.$binary, "hex")
    : Array.isArray(v)
      ? v.map(toWire)
      : v && typeof v === "object"
        ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toWire(x)]))
        : v;
const fromWire = (v) =>
  Buffer.isBuffer(v) || v instanceof ArrayBuffer
    ? { $binary: Buffer.from(v).toString("hex") }
    : Array.isArray(v)
      ? v.map(fromWire)
      : v && typeof v === "object"
        ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fromWire(x)]))
        : v;

const socket = io(opts.url, {
  transports: opts.transports ?? ["websocket"],
  auth: opts.auth ?? {},
  extraHeaders: opts.headers ?? {},
  reconnection: false,
});
socket.onAny((event, ...args) => facts.received.push({ event, args: fromWire(args) }));
socket.on("connect_error", (err) => {
  facts.error = err.message;
  done(0);
});
socket.on("connect", async () => {
  facts.connected = true;
  for (const e of opts.emits ?? []) {
    if (e.ack === false) {
      socket.emit(e.event, ...toWire(e.args ?? []));
      facts.acks.push(null);
      continue;
    }
    try {
      const ack = await socket.timeout(timeoutMs).emitWithAck(e.event, ...toWire(e.args ?? []));
      facts.acks.push(fromWire(ack));
    } catch (err) {
      facts.acks.push({ timeout: err.message });
    }
  }
  if (opts.seq) {
    const pending = [];
    for (let i = 0; i < opts.seq; i++) pending.push(socket.timeout(timeoutMs).emitWithAck("seq", i));
    facts.seqAcks = (await Promise.allSettled(pending)).map((r) => (r.status === "fulfilled" ? r.value : { timeout: true }));
  }
  // wait (bounded) for `waitEvents` events pushed to this client
  const until = Date.now() + timeoutMs;
  while (facts.received.length < (opts.waitEvents ?? 0) && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 20));
  }
  socket.close();
  done(0);
});
