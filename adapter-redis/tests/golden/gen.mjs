// Generates the golden wire bytes that `adapter-redis/tests/golden.rs` checks against.
//
// Run from this folder:
//
//     npm ci
//     node gen.mjs > fixtures.json
//
// Nothing here is re-implemented: every message is produced by the real, pinned Node packages
// (socket.io, @socket.io/redis-adapter, @socket.io/redis-emitter, notepack.io; see
// package-lock.json) talking to a fake Redis client that records what they PUBLISH. No network,
// no Redis server. The only tweaks are for stable output from one run to the next: a
// deterministic `uid2` for request ids, and readable server uids set on the adapters.

import { createRequire } from "node:module";
import { EventEmitter } from "node:events";
import { readFileSync } from "node:fs";
import { dirname } from "node:path";

const require = createRequire(import.meta.url);

// --- deterministic ids --------------------------------------------------------------------------
// The adapter calls uid2(6) for its own uid (overwritten below with a readable name) and for every
// request id. Pre-load the module cache so that `require("uid2")` inside the adapter gets this
// function instead.
const adapterDir = dirname(require.resolve("@socket.io/redis-adapter"));
const uid2Path = require.resolve("uid2", { paths: [adapterDir] });
let uidCalls = 0;
function fakeUid2() {
  uidCalls += 1;
  return "id" + String(uidCalls).padStart(4, "0");
}
require.cache[uid2Path] = { id: uid2Path, filename: uid2Path, loaded: true, exports: fakeUid2 };

const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-adapter");
const { Emitter } = require("@socket.io/redis-emitter");

// --- a fake Redis client (the ioredis / redis@3 call shape the adapter falls back to) -----------
class FakeRedis extends EventEmitter {
  constructor(log) {
    super();
    this.log = log;
  }
  publish(channel, payload) {
    this.log.push({ channel, payload });
    return Promise.resolve(1);
  }
  psubscribe() {}
  punsubscribe() {}
  subscribe() {}
  unsubscribe() {}
  // PUBSUB NUMSUB <channel>: pretend three servers listen.
  send_command(_cmd, args, cb) {
    cb(null, [args[1], 3]);
  }
}

const cases = {};
const log = [];
const tick = () => new Promise((resolve) => setImmediate(resolve));

/**
 * Runs `action`, then records every message it published (into `sink`) under `name`, or
 * `name_1`, `name_2`, ... when there are several.
 */
async function record(name, action, sink = log) {
  sink.length = 0;
  await action();
  await tick();
  if (sink.length === 0) throw new Error(`${name}: nothing was published`);
  sink.forEach(({ channel, payload }, i) => {
    const bytes = typeof payload === "string" ? Buffer.from(payload, "utf8") : payload;
    const entry = { channel, encoding: bytes[0] === 0x7b ? "json" : "msgpack", hex: bytes.toString("hex") };
    if (entry.encoding === "json") entry.text = bytes.toString("utf8");
    cases[sink.length === 1 ? name : `${name}_${i + 1}`] = entry;
  });
}

// --- a fake connected socket, enough for the in-memory adapter's apply() -------------------------
function fakeSocket(id, rooms, data) {
  return {
    id,
    rooms: new Set(rooms),
    data,
    acks: new Map(),
    handshake: {
      headers: { host: "localhost:3000", "user-agent": "node" },
      time: "Tue Nov 14 2023 22:13:20 GMT+0000 (Coordinated Universal Time)",
      address: "::1",
      xdomain: false,
      secure: false,
      issued: 1700000000000,
      url: "/socket.io/?EIO=4&transport=polling&t=abc",
      query: { EIO: "4", transport: "polling", t: "abc" },
      auth: { token: "t0k" },
    },
    client: { writeToEngine() {} },
    join() {},
    leave() {},
    disconnect() {},
  };
}

// --- the server under observation -----------------------------------------------------------------
const pub = new FakeRedis(log);
const sub = new FakeRedis([]);
const io = new Server({ adapter: createAdapter(pub, sub, { requestsTimeout: 20 }) });
const nsp = io.of("/");
const adapter = nsp.adapter;
adapter.uid = "srv001";
io.of("/chat").adapter.uid = "srv001";
for (const [id, rooms, data] of [
  ["sockA", ["sockA", "room1"], { user: "alice", n: 1 }],
  ["sockB", ["sockB", "room2"], {}],
]) {
  nsp.sockets.set(id, fakeSocket(id, rooms, data));
  adapter.addAll(id, new Set(rooms));
}

/** Delivers `payload` to the adapter as if another node had published it on `channel`. */
function deliver(channel, payload) {
  const bytes = typeof payload === "string" ? Buffer.from(payload) : payload;
  sub.emit("messageBuffer", Buffer.from(channel), bytes);
}

// Broadcasts (msgpack on the broadcast channels).
await record("emit_strings", () => io.emit("hello", "world", "again"));
await record("to_one_room", () => io.to("room1").emit("news", "a"));
await record("rooms_except", () => io.to(["room1", "room2"]).except(["room3", "sockB"]).emit("msg", 1));
await record("volatile_compress", () => io.volatile.compress(true).emit("tick", 42));
await record("compress_false", () => io.compress(false).emit("tick", 43));
await record("custom_nsp_room", () => io.of("/chat").to("lobby").emit("msg", "hi"));
await record("numbers", () =>
  io.emit("n", 0, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296, 2 ** 53, -1, -32, -33,
    -128, -129, -32768, -32769, -2147483648, -2147483649, 1.5, -0.25, 1e-300, 2.0, -0),
);
// Whole numbers beyond 64 bits: notepack writes them modulo 2^64 (1e300 becomes uint64 0).
await record("huge_whole_numbers", () => io.emit("n", 1e300, -1e300, 2 ** 64, 2 ** 63, -(2 ** 63)));
await record("binary", () => io.emit("file", Buffer.from([1, 2, 3]), { name: "x", content: Buffer.from("hi") }));
await record("dates", () => io.emit("when", new Date("2024-01-02T03:04:05.678Z"), new Date(1700000000000)));
await record("nested", () =>
  io.emit(
    "obj",
    { a: 1, b: [true, false, null], c: { d: "e", f: 2.5 }, "g h": "", skipped: undefined, u: "héllo ✓ 😀" },
    [[], {}],
  ),
);
await record("sizes", () =>
  io.emit(
    "big",
    "x".repeat(40),
    "y".repeat(300),
    Array.from({ length: 20 }, (_, i) => i),
    Buffer.alloc(300, 7),
    Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${String(i).padStart(2, "0")}`, i])),
  ),
);
await record("broadcast_with_ack", () => io.to("room1").timeout(1000).emit("ask", "q", () => {}));

// Requests (JSON on the request channel).
await record("sockets_join", () => io.socketsJoin("room5"));
await record("sockets_leave", () => io.in("room1").except("room2").socketsLeave(["room3", "room4"]));
await record("disconnect_sockets", () => io.in("room1").disconnectSockets(true));
await record("server_side_emit", () => io.serverSideEmit("hello", "world", 42));
await record("server_side_emit_with_ack", () => io.serverSideEmit("ping", () => {}));
await record("fetch_sockets", () => io.in("room1").except("room2").fetchSockets().catch(() => {}));
await record("all_rooms", () => adapter.allRooms().catch(() => {}));

// Responses: what this server answers to another node's requests.
const req = "socket.io-request#/#";
await record("sockets_response", () =>
  deliver(req, JSON.stringify({ uid: "remote", requestId: "rq0000", type: 0, rooms: ["room1", "room2"] })),
);
await record("all_rooms_response", () => deliver(req, JSON.stringify({ uid: "remote", requestId: "rq0001", type: 1 })));
await record("fetch_response", () =>
  deliver(req, JSON.stringify({ uid: "remote", requestId: "rq0002", type: 5, opts: { rooms: ["room1"], except: [] } })),
);
nsp.on("ping", (arg, ack) => ack({ ok: true, got: arg }));
await record("server_side_emit_response", () =>
  deliver(req, JSON.stringify({ uid: "remote", requestId: "rq0003", type: 6, data: ["ping", "x"] })),
);
// A BROADCAST-with-ack from another node: the client count (JSON), then one client's ack (msgpack).
const msgpack = require("notepack.io");
await record("broadcast_ack_responses", async () => {
  deliver(
    req,
    msgpack.encode({
      uid: "remote",
      requestId: "rq0004",
      type: 7,
      packet: { type: 2, data: ["ask", "q"], nsp: "/" },
      opts: { rooms: ["room1"], except: [], flags: { timeout: 1000 } },
    }),
  );
  await tick();
  const socket = nsp.sockets.get("sockA");
  const ack = [...socket.acks.values()].pop();
  ack("answer", "ignored: only the first argument travels");
});

// A server with publishOnSpecificResponseChannel answers on the requester's own channel.
{
  const specificLog = [];
  const specific = new Server({
    adapter: createAdapter(new FakeRedis(specificLog), sub, { publishOnSpecificResponseChannel: true }),
  });
  const specificAdapter = specific.of("/").adapter;
  specificAdapter.uid = "srv002";
  specificAdapter.addAll("sockC", new Set(["sockC"]));
  await record(
    "all_rooms_response_specific",
    () => specificAdapter.onrequest(req, Buffer.from(JSON.stringify({ uid: "remote", requestId: "rq0005", type: 1 }))),
    specificLog,
  );
}

// The emitter.
const emitterLog = [];
const emitter = new Emitter(new FakeRedis(emitterLog));
const recordEmitter = (name, action) => record(name, action, emitterLog);
await recordEmitter("emitter_emit", () => emitter.emit("hello", "world"));
await recordEmitter("emitter_room_flags", () =>
  emitter.to("room1").except("room2").volatile.compress(false).emit("alert", { level: 2 }),
);
await recordEmitter("emitter_nsp_rooms_binary", () =>
  emitter.of("admin").to(["a", "b"]).emit("blob", Buffer.from([0xde, 0xad, 0xbe, 0xef])),
);
await recordEmitter("emitter_custom_key", () =>
  new Emitter(new FakeRedis(emitterLog), { key: "myapp" }).to("r").emit("x"),
);
await recordEmitter("emitter_sockets_join", () => emitter.socketsJoin("room9"));
await recordEmitter("emitter_sockets_leave", () => emitter.in("r1").socketsLeave(["r2", "r3"]));
await recordEmitter("emitter_disconnect", () => emitter.except("r4").disconnectSockets(true));
await recordEmitter("emitter_server_side_emit", () => emitter.serverSideEmit("hello", "world", 1));

const versions = {};
for (const name of ["socket.io", "socket.io-adapter", "@socket.io/redis-adapter", "@socket.io/redis-emitter", "notepack.io"]) {
  const manifest = new URL(`node_modules/${name}/package.json`, import.meta.url);
  versions[name] = JSON.parse(readFileSync(manifest, "utf8")).version;
}
process.stdout.write(JSON.stringify({ generator: "gen.mjs", versions, cases }, null, 2) + "\n");
// Pending request and ack timers would keep the process alive until they expire.
process.exit(0);
