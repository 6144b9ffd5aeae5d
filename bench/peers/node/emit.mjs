// The official @socket.io/redis-emitter publishing benchmark messages into a room:
//
//   node emit.mjs '{"redis": "redis://127.0.0.1:6379", "room": "bench", "messages": 20000, "inFlight": 100}'
//
// Each message is `m` with `{s, q, t}` (sender, sequence, send time in µs since the Unix
// epoch), as sio-load expects. `inFlight` bounds outstanding PUBLISH commands. Prints one
// JSON line: {messages, ms, msgs_per_s}.
import { createClient } from "redis";
import { Emitter } from "@socket.io/redis-emitter";

const opts = JSON.parse(process.argv[2] ?? "{}");
const client = createClient({ url: opts.redis });
client.on("error", (e) => console.error("redis error", e.message));
await client.connect();
const emitter = new Emitter(client);
const n = opts.messages ?? 1000;
const inFlight = Math.max(1, opts.inFlight ?? 100);
const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);

// The emitter does not return the PUBLISH promise; bound the window with a PING round trip
// per `inFlight` messages (Redis answers in order on one connection).
const started = performance.now();
for (let q = 0; q < n; q++) {
  emitter.to(opts.room ?? "bench").emit("m", { s: 0, q, t: nowUs() });
  if ((q + 1) % inFlight === 0) await client.ping();
}
await client.ping();
const ms = performance.now() - started;
console.log(JSON.stringify({ messages: n, ms: Math.round(ms), msgs_per_s: Math.round((n / ms) * 1000) }));
await client.quit();
