// Many official clients (socket.io-client 4.8) through one URL, each joining `room` once
// and recording the `n` of every `event` it receives (the number itself, or the `n` of an
// object), for the rolling-restart and fault tests of connection state recovery.
//
//   node recovery-many.mjs '{"url":"http://127.0.0.1:8080","room":"demo","event":"notification",
//                            "clients":{"polling":3,"websocket":3,"upgrade":3},"quietMs":3000}'
//
// Prints {"phase":"ready"} once every client is in the room, then, after `quietMs` without
// an event once at least `minEvents` arrived (or after `timeoutMs`), one line of facts per
// client and a summary: {"phase":"done","clients":[{transport, received:[n..], connects:
// [{recovered, pid}], reasons:[..]}]}. A client joins only on its first connect: a
// reconnect that was not recovered shows as a gap, never masked by a re-join.
import { io } from "socket.io-client";

const opts = JSON.parse(process.argv[2] ?? "{}");
const transportsOf = {
  polling: ["polling"],
  websocket: ["websocket"],
  upgrade: ["polling", "websocket"],
};
const print = (fact) => console.log(JSON.stringify(fact));
const clients = [];
let lastEventAt = 0;
let events = 0;

for (const [mode, n] of Object.entries(opts.clients ?? { websocket: 1 })) {
  for (let i = 0; i < n; i++) {
    const s = io(opts.url, {
      transports: transportsOf[mode],
      forceNew: true,
      reconnectionDelay: 200,
      reconnectionDelayMax: 1000,
      auth: opts.auth ?? {},
    });
    const c = { transport: mode, received: [], connects: [], reasons: [], joined: false };
    s.on("connect", () => {
      c.connects.push({ recovered: s.recovered === true, pid: s._pid ?? null });
      if (c.connects.length === 1) {
        s.timeout(10_000)
          .emitWithAck("join", opts.room)
          .then((r) => (c.joined = r?.ok === true))
          .catch(() => {});
      }
    });
    s.on("disconnect", (reason) => c.reasons.push(reason));
    s.on(opts.event, (data) => {
      c.received.push(typeof data === "object" && data !== null ? data.n : data);
      lastEventAt = Date.now();
      events++;
    });
    clients.push({ s, c });
  }
}

const started = Date.now();
const timer = setInterval(() => {
  if (!clients.every(({ c }) => c.joined)) return;
  if (!ready) {
    ready = true;
    print({ phase: "ready" });
  }
}, 50);
let ready = false;

const check = setInterval(() => {
  const quiet = events >= (opts.minEvents ?? 1) && Date.now() - lastEventAt > (opts.quietMs ?? 3000);
  if (quiet || Date.now() - started > (opts.timeoutMs ?? 120_000)) {
    clearInterval(check);
    clearInterval(timer);
    print({ phase: "done", clients: clients.map(({ c }) => c) });
    for (const { s } of clients) s.close();
    setTimeout(() => process.exit(0), 50);
  }
}, 100);
