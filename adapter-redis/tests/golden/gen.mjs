// Generates the golden wire bytes that `adapter-redis/tests/golden.rs` (classic mode, under
// `cases`), `adapter-redis/tests/golden_sharded.rs` (sharded mode, under `sharded`) and
// `adapter-redis/tests/golden_streams.rs` (streams mode, under `streams`) check against.
//
// Run from this folder:
//
//     npm ci
//     node gen.mjs > fixtures.json
//
// Nothing here is re-implemented: every message is produced by the real, pinned Node packages
// (socket.io, @socket.io/redis-adapter, @socket.io/redis-emitter, notepack.io,
// @socket.io/redis-streams-adapter, @msgpack/msgpack; see package-lock.json) talking to a fake
// Redis client that records what they PUBLISH (or SPUBLISH, SSUBSCRIBE, SUNSUBSCRIBE in sharded
// mode; XADD, PUBLISH, SUBSCRIBE, XREAD and SET in streams mode). No network, no Redis server.
// The only tweaks are for stable output from one run to the next: a deterministic `uid2` for
// request ids and readable server uids set on the classic adapters, and a counter for the 8-byte
// `crypto.randomBytes` draws the sharded and streams adapters take their uid and request ids
// from.

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
 * `name_1`, `name_2`, ... when there are several, in the case map `into`.
 */
async function record(name, action, sink = log, into = cases) {
  sink.length = 0;
  await action();
  await tick();
  if (sink.length === 0) throw new Error(`${name}: nothing was published`);
  sink.forEach(({ channel, payload }, i) => {
    const bytes = typeof payload === "string" ? Buffer.from(payload, "utf8") : payload;
    const entry = { channel, encoding: bytes[0] === 0x7b ? "json" : "msgpack", hex: bytes.toString("hex") };
    if (entry.encoding === "json") entry.text = bytes.toString("utf8");
    into[sink.length === 1 ? name : `${name}_${i + 1}`] = entry;
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

// --- sharded mode (createShardedAdapter, Redis 7 SPUBLISH / SSUBSCRIBE) ----------------------------
// The sharded adapter is socket.io-adapter's ClusterAdapter: its uid and request ids come from
// `crypto.randomBytes(8).toString("hex")`. From here on, 8-byte draws are a counter (ids
// 0000000000000001, 0000000000000002, ...) so that uids, response channels and request ids are
// stable; every other size still gets real random bytes.
const crypto = require("node:crypto");
const realRandomBytes = crypto.randomBytes;
let randomIdCalls = 0;
crypto.randomBytes = function (size, callback) {
  if (size === 8 && callback === undefined) {
    randomIdCalls += 1;
    return Buffer.from(randomIdCalls.toString(16).padStart(16, "0"), "hex");
  }
  return realRandomBytes.call(this, size, callback);
};

const { createShardedAdapter } = require("@socket.io/redis-adapter");
const { ClusterAdapterWithHeartbeat } = require("socket.io-adapter");

// The ioredis call shape the sharded adapter falls back to: spublish / ssubscribe / sunsubscribe,
// "smessageBuffer" events, and send_command for PUBSUB SHARDNUMSUB.
class FakeShardedRedis extends EventEmitter {
  constructor(log, subscriptions = [], commands = []) {
    super();
    this.log = log;
    this.subscriptions = subscriptions;
    this.commands = commands;
  }
  spublish(channel, payload) {
    this.log.push({ channel, payload });
    return Promise.resolve(1);
  }
  ssubscribe(channel) {
    this.subscriptions.push(["SSUBSCRIBE", channel]);
  }
  sunsubscribe(channel) {
    this.subscriptions.push(["SUNSUBSCRIBE", channel]);
  }
  // PUBSUB SHARDNUMSUB <channel>: pretend three servers listen.
  send_command(cmd, args, cb) {
    this.commands.push([cmd, ...args]);
    cb(null, [args[1], 3]);
  }
}

const sharded = {
  cases: {},
  subscriptions: {},
  server_count: null,
  published_on_init_and_close: null,
  heartbeat_defaults: null,
};
// Socket ids as socket.io makes them: 20 characters, which is what the adapter's "looks like a
// socket id" test checks.
const SOCKET_A = "SocketA0000000000000";
const SOCKET_B = "SocketB0000000000000";

/** A server on the sharded adapter, publishing into `publishLog`. */
function shardedServer(opts, publishLog, subscriptions = [], commands = []) {
  const sub = new FakeShardedRedis([], subscriptions);
  const server = new Server({
    adapter: createShardedAdapter(new FakeShardedRedis(publishLog, [], commands), sub, opts),
  });
  return { server, sub };
}

/** Adds the two fake sockets to the namespace `/` of `server`. */
function addShardedSockets(server) {
  const root = server.of("/");
  for (const [id, rooms, data] of [
    [SOCKET_A, [SOCKET_A, "room1"], { user: "alice", n: 1 }],
    [SOCKET_B, [SOCKET_B, "room2"], {}],
  ]) {
    root.sockets.set(id, fakeSocket(id, rooms, data));
    root.adapter.addAll(id, new Set(rooms));
  }
  return root;
}

// Which channels each subscription mode subscribes to, as rooms come and go, and on close().
for (const mode of ["dynamic", "dynamic-private", "static"]) {
  const subscriptions = [];
  const { server } = shardedServer({ subscriptionMode: mode }, [], subscriptions);
  const adapter = server.of("/").adapter;
  adapter.addAll(SOCKET_A, new Set([SOCKET_A, "room1"]));
  adapter.addAll(SOCKET_B, new Set([SOCKET_B, "room1", "room2"]));
  adapter.del(SOCKET_B, "room2"); // room2 is now empty: deleted
  adapter.delAll(SOCKET_B); // SOCKET_B's own room is deleted; room1 still holds SOCKET_A
  await adapter.close();
  sharded.subscriptions[mode] = subscriptions;
}

// The server under observation: default options (prefix "socket.io", mode "dynamic").
const shardedLog = [];
const shardedCommands = [];
const { server: sio, sub: shardedSub } = shardedServer(undefined, shardedLog, [], shardedCommands);
const shardedNsp = addShardedSockets(sio);
const recordSharded = (name, action, sink = shardedLog) => record(name, action, sink, sharded.cases);
/** Delivers a message to the sharded server as if another node had SPUBLISHed it on `channel`. */
function deliverSharded(channel, payload) {
  const bytes = typeof payload === "string" ? Buffer.from(payload) : payload;
  shardedSub.emit("smessageBuffer", Buffer.from(channel), bytes);
}

// Broadcasts.
await recordSharded("emit_strings", () => sio.emit("hello", "world", "again"));
await recordSharded("to_one_room", () => sio.to("room1").emit("news", "a"));
await recordSharded("to_one_room_except", () => sio.to("room1").except("room2").emit("news", "b"));
await recordSharded("to_socket_id", () => sio.to(SOCKET_A).emit("dm", 1));
// 20 characters is all the publisher checks: this public room goes to the main channel too.
await recordSharded("to_twenty_char_room", () => sio.to("abcdefghijklmnopqrst").emit("x"));
// JavaScript counts UTF-16 code units: ten emoji are 20 of them (and 40 bytes of UTF-8).
await recordSharded("to_emoji_room", () => sio.to("😀".repeat(10)).emit("x"));
await recordSharded("to_nineteen_unit_room", () => sio.to("😀".repeat(9) + "a").emit("x"));
await recordSharded("rooms_except", () => sio.to(["room1", "room2"]).except(["room3", SOCKET_B]).emit("msg", 1));
await recordSharded("volatile_compress", () => sio.volatile.compress(true).emit("tick", 42));
await recordSharded("binary", () => sio.emit("file", Buffer.from([1, 2, 3]), { name: "x", content: Buffer.from("hi") }));
await recordSharded("binary_to_one_room", () => sio.to("room1").emit("file", Buffer.from([4])));
await recordSharded("dates", () => sio.emit("when", new Date("2024-01-02T03:04:05.678Z"), new Date(NaN)));
await recordSharded("numbers", () => sio.emit("n", 0, -1, 1.5, -0.25, 2.0, -0, 4294967296, 2 ** 53, NaN, Infinity));
await recordSharded("nested", () =>
  sio.emit("obj", { a: 1, b: [true, false, null], c: { d: "e" }, skipped: undefined, u: "héllo ✓ 😀" }, [[], {}]),
);
await recordSharded("broadcast_with_ack", () => sio.to("room1").timeout(1000).emit("ask", "q", () => {}));

// Requests.
await recordSharded("sockets_join", () => sio.socketsJoin("room5"));
await recordSharded("sockets_leave", () => sio.in("room1").except("room2").socketsLeave(["room3", "room4"]));
await recordSharded("disconnect_sockets", () => sio.in("room1").disconnectSockets(true));
await recordSharded("fetch_sockets", () => sio.in("room1").except("room2").fetchSockets().catch(() => {}));
await recordSharded("fetch_sockets_timeout", () => sio.timeout(1000).fetchSockets().catch(() => {}));
await recordSharded("server_side_emit", () => sio.serverSideEmit("hello", "world", 42));
await recordSharded("server_side_emit_with_ack", () => sio.serverSideEmit("ping", () => {}));
await recordSharded("server_side_emit_binary", () => sio.serverSideEmit("blob", Buffer.from([0xde, 0xad])));
sharded.server_count = shardedCommands[0];

// Responses: what this server answers to another node ("remote"), on that node's channel.
const shardedMain = "socket.io#/#";
const fromRemote = (type, data) => JSON.stringify({ type, data, uid: "remote", nsp: "/" });
await recordSharded("fetch_sockets_response", () =>
  deliverSharded(shardedMain, fromRemote(7, { opts: { rooms: ["room1"], except: [], flags: {} }, requestId: "rq0001" })),
);
shardedNsp.on("ping", (arg, ack) => ack({ ok: true, got: arg }));
shardedNsp.on("pingbin", (ack) => ack(Buffer.from([1, 2])));
await recordSharded("server_side_emit_response", () =>
  deliverSharded(shardedMain, fromRemote(9, { requestId: "rq0002", packet: ["ping", "x"] })),
);
await recordSharded("server_side_emit_response_binary", () =>
  deliverSharded(shardedMain, fromRemote(9, { requestId: "rq0003", packet: ["pingbin"] })),
);
/** A BROADCAST-with-ack from "remote" to room1; SOCKET_A acknowledges with `args`. */
async function remoteBroadcastWithAck(requestId, ...args) {
  deliverSharded(
    shardedMain,
    fromRemote(3, {
      packet: { type: 2, data: ["ask", "q"] },
      requestId,
      opts: { rooms: ["room1"], except: [], flags: { timeout: 1000 } },
    }),
  );
  await tick();
  const ack = [...shardedNsp.sockets.get(SOCKET_A).acks.values()].pop();
  ack(...args);
}
await recordSharded("broadcast_ack_responses", () =>
  remoteBroadcastWithAck("rq0004", "answer", "ignored: only the first argument travels"),
);
await recordSharded("broadcast_ack_responses_binary", () => remoteBroadcastWithAck("rq0005", Buffer.from([0xca, 0xfe])));

// Other subscription modes and a custom prefix, each with its own server.
for (const [name, opts, action] of [
  ["private_to_socket_id", { subscriptionMode: "dynamic-private" }, (s) => s.to(SOCKET_A).emit("dm", 2)],
  ["private_with_ack", { subscriptionMode: "dynamic-private" }, (s) => s.to(SOCKET_A).timeout(5).emit("dm", () => {})],
  ["static_to_one_room", { subscriptionMode: "static" }, (s) => s.to("room1").emit("news", "c")],
  ["custom_prefix_nsp_room", { channelPrefix: "myapp" }, (s) => s.of("/chat").to("lobby").emit("msg", "hi")],
]) {
  const modeLog = [];
  const { server } = shardedServer(opts, modeLog);
  await recordSharded(name, () => action(server), modeLog);
}

// The 8.3.0 sharded adapter extends ClusterAdapter, not ClusterAdapterWithHeartbeat: it counts
// servers with PUBSUB SHARDNUMSUB and publishes nothing when it starts or closes.
{
  const silentLog = [];
  const { server } = shardedServer(undefined, silentLog);
  const adapter = server.of("/").adapter;
  await adapter.init();
  await adapter.close();
  await tick();
  sharded.published_on_init_and_close = silentLog.map(({ channel }) => channel);
}

// The heartbeat messages, as socket.io-adapter's ClusterAdapterWithHeartbeat sends them when it
// publishes through the sharded adapter's own doPublish / encode (borrowed, not re-implemented).
{
  const heartbeatLog = [];
  const template = shardedServer(undefined, heartbeatLog).server.of("/").adapter;
  const ShardedRedisAdapter = template.constructor;
  class HeartbeatingShardedAdapter extends ClusterAdapterWithHeartbeat {
    constructor(nsp) {
      super(nsp, {});
      this.pubClient = template.pubClient;
      this.opts = template.opts;
      this.channel = template.channel;
    }
  }
  for (const method of ["doPublish", "doPublishResponse", "computeChannel", "dynamicChannel", "encode"]) {
    HeartbeatingShardedAdapter.prototype[method] = ShardedRedisAdapter.prototype[method];
  }
  // socket.io 4.8 never calls adapter.init() itself; adapters that heartbeat are started by hand.
  const probe = new Server({ adapter: HeartbeatingShardedAdapter }).of("/").adapter;
  await recordSharded("initial_heartbeat", () => probe.init(), heartbeatLog);
  await recordSharded("heartbeat", () => probe.onMessage({ type: 1, uid: "remote", nsp: "/" }), heartbeatLog);
  await recordSharded("adapter_close", () => probe.close(), heartbeatLog);
  sharded.heartbeat_defaults = probe._opts;
}
crypto.randomBytes = realRandomBytes;

// --- streams mode (@socket.io/redis-streams-adapter: XADD for most messages, PUBLISH for the rest)
// Also a ClusterAdapter: 8-byte draws are a counter again, prefixed with 5 (5000000000000001,
// 5000000000000002, ...) so that these ids cannot be mistaken for the sharded ones.
let streamsIdCalls = 0;
crypto.randomBytes = function (size, callback) {
  if (size === 8 && callback === undefined) {
    streamsIdCalls += 1;
    return Buffer.from("5" + streamsIdCalls.toString(16).padStart(15, "0"), "hex");
  }
  return realRandomBytes.call(this, size, callback);
};

const { createAdapter: createStreamsAdapter } = require("@socket.io/redis-streams-adapter");
const jsMsgpack = require("@msgpack/msgpack");

// The ioredis call shape the streams adapter falls back to: duplicate() for its readers and its
// subscriber, xadd(args) with one array, xread(...) (which never answers here, so the polling
// loops wait forever), publish, subscribe + "messageBuffer" events, send_command for PUBSUB
// NUMSUB, set for sessions. Every duplicate records into the same `rec`.
class FakeStreamsRedis extends EventEmitter {
  constructor(rec) {
    super();
    this.rec = rec;
    this.options = {};
  }
  duplicate() {
    return new FakeStreamsRedis(this.rec);
  }
  xadd(args) {
    this.rec.log.push({ kind: "xadd", args });
    this.rec.entryIds += 1;
    return Promise.resolve(`1700000000000-${this.rec.entryIds}`);
  }
  xread(...args) {
    this.rec.reads.push(args);
    return new Promise(() => {});
  }
  publish(channel, payload) {
    this.rec.log.push({ kind: "publish", channel, payload });
    return Promise.resolve(1);
  }
  subscribe(channels) {
    this.rec.subscriptions.push(channels);
    this.rec.subscribers.push(this);
  }
  send_command(cmd, args, cb) {
    this.rec.commands.push([cmd, ...args]);
    cb(null, [args[1], 3]); // three servers listen
  }
  set(...args) {
    this.rec.log.push({ kind: "set", args });
    return Promise.resolve("OK");
  }
  disconnect() {}
}

function streamsRecorder() {
  return { log: [], reads: [], subscriptions: [], subscribers: [], commands: [], entryIds: 0 };
}

/** A server on the streams adapter with `opts`, recording into a new recorder. */
async function streamsServer(opts, serverOpts = {}) {
  const rec = streamsRecorder();
  const server = new Server({ ...serverOpts, adapter: createStreamsAdapter(new FakeStreamsRedis(rec), opts) });
  server.of("/"); // the adapter of "/" exists once the namespace does
  await tick(); // the readers and the subscriber are duplicated asynchronously
  return { server, rec };
}

const streams = {
  cases: {},
  subscriptions: null,
  server_count: null,
  reads: {},
  stream_names: {},
  published_on_init_and_close: null,
  session: null,
};

/** Runs `action` on the server recorded by `rec`, and stores what it wrote under `name`. */
async function recordStreams(name, rec, action) {
  rec.log.length = 0;
  await action();
  await tick();
  if (rec.log.length === 0) throw new Error(`${name}: nothing was written`);
  rec.log.forEach((op, i) => {
    let entry;
    if (op.kind === "xadd") {
      // [stream, "MAXLEN", "~", maxLen, "*", field, value, ...]
      const [stream, ...rest] = op.args.map(String);
      const cap = rest.slice(0, 4);
      const fields = [];
      for (let j = 4; j < rest.length; j += 2) fields.push([rest[j], rest[j + 1]]);
      entry = { kind: "xadd", stream, cap, fields };
    } else if (op.kind === "publish") {
      entry = { kind: "publish", channel: op.channel, hex: Buffer.from(op.payload).toString("hex") };
    } else {
      throw new Error(`${name}: unexpected ${op.kind}`);
    }
    streams.cases[rec.log.length === 1 ? name : `${name}_${i + 1}`] = entry;
  });
}

// The server under observation: default options, the two fake sockets in "/".
const { server: sst, rec: sstRec } = await streamsServer(undefined);
const sstNsp = addShardedSockets(sst);
streams.subscriptions = sstRec.subscriptions.slice();
streams.reads["default"] = sstRec.reads.slice();
const rs = (name, action) => recordStreams(name, sstRec, action);
/** Delivers a pub/sub message to the server as if another node had PUBLISHed it on `channel`. */
function deliverStreams(channel, message) {
  const payload = Buffer.from(jsMsgpack.encode(message));
  for (const sub of sstRec.subscribers) sub.emit("messageBuffer", Buffer.from(channel), payload);
}

// Broadcasts: stream entries, JSON or (with binaries) base64 of @msgpack/msgpack.
await rs("emit_strings", () => sst.emit("hello", "world", "again"));
await rs("to_one_room", () => sst.to("room1").emit("news", "a"));
await rs("rooms_except", () => sst.to(["room1", "room2"]).except(["room3", SOCKET_B]).emit("msg", 1));
await rs("volatile_compress", () => sst.volatile.compress(true).emit("tick", 42));
await rs("numbers", () => sst.emit("n", 0, -1, 1.5, -0.25, 2.0, -0, 4294967296, 2 ** 53, NaN, Infinity));
await rs("dates", () => sst.emit("when", new Date("2024-01-02T03:04:05.678Z"), new Date(NaN)));
await rs("nested", () =>
  sst.emit("obj", { a: 1, b: [true, false, null], c: { d: "e" }, skipped: undefined, u: "héllo ✓ 😀" }, [[], {}]),
);
await rs("binary", () => sst.emit("file", Buffer.from([1, 2, 3]), { name: "x", content: Buffer.from("hi") }));
await rs("binary_to_one_room", () => sst.to("room1").emit("file", Buffer.from([4])));
// @msgpack/msgpack writes an integer only for a safe integer, and keeps undefined properties.
await rs("binary_numbers", () =>
  sst.emit("n", Buffer.from([0]), 0, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296, 2 ** 53 - 1, 2 ** 53,
    2 ** 63, 2 ** 64, 1e300, -1, -32, -33, -128, -129, -32768, -32769, -2147483648, -2147483649, -(2 ** 53 - 1),
    -(2 ** 53), 1.5, -0.25, 2.0, -0, NaN, Infinity, -Infinity),
);
await rs("binary_undefined", () => sst.emit("u", Buffer.from([9]), { skipped: undefined, kept: 1 }, [undefined]));
await rs("binary_dates", () =>
  sst.emit("when", Buffer.from([1]), new Date("2024-01-02T03:04:05.678Z"), new Date(1700000000000)),
);
await rs("binary_sizes", () =>
  sst.emit(
    "big",
    Buffer.alloc(300, 7),
    "x".repeat(31),
    "x".repeat(32),
    "y".repeat(255),
    "y".repeat(256),
    Array.from({ length: 15 }, (_, i) => i),
    Array.from({ length: 16 }, (_, i) => i),
    Object.fromEntries(Array.from({ length: 15 }, (_, i) => [`k${String(i).padStart(2, "0")}`, i])),
    Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${String(i).padStart(2, "0")}`, i])),
    "é✓😀",
  ),
);
await rs("broadcast_with_ack", () => sst.to("room1").timeout(1000).emit("ask", "q", () => {}));

// Requests.
await rs("sockets_join", () => sst.socketsJoin("room5"));
await rs("sockets_leave", () => sst.in("room1").except("room2").socketsLeave(["room3", "room4"]));
await rs("disconnect_sockets", () => sst.in("room1").disconnectSockets(true));
await rs("fetch_sockets", () => sst.in("room1").except("room2").fetchSockets().catch(() => {}));
await rs("fetch_sockets_timeout", () => sst.timeout(1000).fetchSockets().catch(() => {}));
await rs("server_side_emit", () => sst.serverSideEmit("hello", "world", 42));
await rs("server_side_emit_with_ack", () => sst.serverSideEmit("ping", () => {}));
await rs("server_side_emit_binary", () => sst.serverSideEmit("blob", Buffer.from([0xde, 0xad])));
streams.server_count = sstRec.commands[0];

// Responses: what this server answers to another node ("remote"), on that node's channel.
const streamsPublic = "socket.io#/#";
const fromRemoteStreams = (type, data) => ({ type, data, uid: "remote", nsp: "/" });
await rs("fetch_sockets_response", () =>
  deliverStreams(streamsPublic, fromRemoteStreams(7, { opts: { rooms: ["room1"], except: [], flags: {} }, requestId: "rq0001" })),
);
sstNsp.on("ping", (arg, ack) => ack({ ok: true, got: arg }));
sstNsp.on("pingbin", (ack) => ack(Buffer.from([1, 2])));
sstNsp.on("pingnothing", (ack) => ack());
await rs("server_side_emit_response", () =>
  deliverStreams(streamsPublic, fromRemoteStreams(9, { requestId: "rq0002", packet: ["ping", "x"] })),
);
await rs("server_side_emit_response_binary", () =>
  deliverStreams(streamsPublic, fromRemoteStreams(9, { requestId: "rq0003", packet: ["pingbin"] })),
);
await rs("server_side_emit_response_undefined", () =>
  deliverStreams(streamsPublic, fromRemoteStreams(9, { requestId: "rq0004", packet: ["pingnothing"] })),
);
/** A BROADCAST-with-ack from "remote" to room1; SOCKET_A acknowledges with `args`. */
async function remoteStreamsBroadcastWithAck(requestId, ...args) {
  deliverStreams(
    streamsPublic,
    fromRemoteStreams(3, {
      packet: { type: 2, data: ["ask", "q"] },
      requestId,
      opts: { rooms: ["room1"], except: [], flags: { timeout: 1000 } },
    }),
  );
  await tick();
  const ack = [...sstNsp.sockets.get(SOCKET_A).acks.values()].pop();
  ack(...args);
}
await rs("broadcast_ack_responses", () => remoteStreamsBroadcastWithAck("rq0005", "answer", "ignored"));
await rs("broadcast_ack_responses_binary", () => remoteStreamsBroadcastWithAck("rq0006", Buffer.from([0xca, 0xfe])));
await rs("broadcast_ack_responses_undefined", () => remoteStreamsBroadcastWithAck("rq0007"));

// Other options, each with its own server: a custom stream name, length and channel prefix.
{
  const { server, rec } = await streamsServer({ streamName: "app", maxLen: 500, channelPrefix: "myapp" });
  await recordStreams("custom_options_emit", rec, () => server.of("/chat").to("lobby").emit("msg", "hi"));
  await recordStreams("custom_options_server_side_emit", rec, () => server.of("/chat").serverSideEmit("hey"));
  streams.reads["custom"] = rec.reads.slice();
}

// Which stream each namespace writes to, for several stream counts; and what the nodes read.
// "/a-long-namespace-name" hashes to a negative number: JS's % keeps the sign.
const namespaces = ["/", "/chat", "/admin", "/orders", "/a-long-namespace-name", "/😀", "/x"];
for (const streamCount of [2, 3, 4]) {
  const { server, rec } = await streamsServer({ streamCount });
  const names = {};
  for (const name of namespaces) {
    rec.log.length = 0;
    server.of(name).emit("x");
    await tick();
    names[name] = String(rec.log[0].args[0]);
  }
  streams.stream_names[streamCount] = names;
  streams.reads[`count_${streamCount}`] = rec.reads.slice();
}

// The streams adapter extends ClusterAdapter: nothing is written when it starts or closes.
{
  const { server, rec } = await streamsServer(undefined);
  const adapter = server.of("/").adapter;
  await adapter.init();
  await adapter.close();
  await tick();
  streams.published_on_init_and_close = rec.log.map((op) => op.kind);
}

// A session, as socket.io persists it for connection state recovery (`SET key value PX ms`).
{
  const { server, rec } = await streamsServer(undefined, {
    connectionStateRecovery: { maxDisconnectionDuration: 120000 },
  });
  rec.log.length = 0;
  server.of("/").adapter.persistSession({
    sid: SOCKET_A,
    pid: "PidA0000000000000000",
    rooms: [SOCKET_A, "room1"],
    data: { user: "alice", n: 1 },
  });
  await tick();
  streams.session = rec.log[0].args.map(String);
}
crypto.randomBytes = realRandomBytes;

const versions = {};
for (const name of [
  "socket.io",
  "socket.io-adapter",
  "@socket.io/redis-adapter",
  "@socket.io/redis-emitter",
  "notepack.io",
  "@socket.io/redis-streams-adapter",
  "@msgpack/msgpack",
]) {
  const manifest = new URL(`node_modules/${name}/package.json`, import.meta.url);
  versions[name] = JSON.parse(readFileSync(manifest, "utf8")).version;
}
process.stdout.write(JSON.stringify({ generator: "gen.mjs", versions, cases, sharded, streams }, null, 2) + "\n");
// Pending request and ack timers would keep the process alive until they expire.
process.exit(0);
