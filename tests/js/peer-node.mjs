// A real Node.js cluster member: socket.io 4.8 + @socket.io/redis-adapter 8.3 (classic or
// sharded), or @socket.io/redis-streams-adapter 0.3.1 (`"streams": {streamName, ...}`), on
// the same Redis as the Rust nodes, with the same client contract (join / leave / publish)
// plus a test-only `op` event that runs server-side operations, so tests can drive a
// Node node the way they drive a Rust one.
//
//   node peer-node.mjs '{"redis": "redis://127.0.0.1:6379", "prefix": "socket.io"}'
//
// With `"recovery": <ms>`, connection state recovery is on
// (`connectionStateRecovery: {maxDisconnectionDuration: <ms>, skipMiddlewares: true}`).
//
// Prints {"port": N} once listening on 127.0.0.1 with the adapter subscribed, then
// serves until stdin closes or SIGTERM.
import { createServer } from "node:http";
import { Server } from "socket.io";
import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";
import { createAdapter as createStreamsAdapter } from "@socket.io/redis-streams-adapter";
import { createClient } from "redis";
import { Emitter } from "@socket.io/redis-emitter";

const opts = JSON.parse(process.argv[2] ?? "{}");
const pub = createClient({ url: opts.redis });
const sub = pub.duplicate();
pub.on("error", (e) => console.error("redis pub error", e.message));
sub.on("error", (e) => console.error("redis sub error", e.message));
const emitterClient = pub.duplicate();
emitterClient.on("error", (e) => console.error("redis emitter error", e.message));
await Promise.all([pub.connect(), sub.connect(), emitterClient.connect()]);
// the official Node emitter, as a backend job would use it (separate Redis client)
const nodeEmitter = new Emitter(emitterClient, { key: opts.prefix ?? "socket.io" });

const http = createServer();
const io = new Server(http, {
  ...(opts.recovery ? { connectionStateRecovery: { maxDisconnectionDuration: opts.recovery, skipMiddlewares: true } } : {}),
  adapter: opts.streams
    ? createStreamsAdapter(pub, { channelPrefix: opts.prefix ?? "socket.io", ...opts.streams })
    : opts.sharded
    ? createShardedAdapter(pub, sub, { channelPrefix: opts.prefix ?? "socket.io", subscriptionMode: opts.sharded })
    : createAdapter(pub, sub, { key: opts.prefix ?? "socket.io", requestsTimeout: 3000 }),
});
const publishAllowed = (room) => (opts.clientPublish ?? ["room-*"]).some((p) => (p.endsWith("*") ? room.startsWith(p.slice(0, -1)) : room === p));

function gateway(socket) {
  socket.on("join", (room, ack) => {
    if (typeof room !== "string") return ack?.({ ok: false, error: "room must be a string" });
    socket.join(room);
    ack?.({ ok: true });
  });
  socket.on("leave", (room, ack) => {
    socket.leave(room);
    ack?.({ ok: true });
  });
  socket.on("publish", (req, ack) => {
    if (!req || typeof req.room !== "string" || !publishAllowed(req.room)) return ack?.({ ok: false, error: "not allowed" });
    io.of(socket.nsp.name).to(req.room).emit(req.event, req.data);
    ack?.({ ok: true });
  });
  // test control: server-side operations on this Node node
  socket.on("op", async (op, ack) => {
    try {
      const nsp = io.of(op.nsp ?? "/");
      let target = nsp;
      if (op.rooms?.length) target = target.to(op.rooms);
      if (op.except?.length) target = target.except(op.except);
      if (op.volatile) target = target.volatile;
      if (op.compress !== undefined) target = target.compress(op.compress);
      if (op.local) target = target.local;
      switch (op.kind) {
        case "emit": {
          const args = (op.args ?? []).map((a) => (a && a.$binary !== undefined ? Buffer.from(a.$binary, "hex") : a));
          target.emit(op.event, ...args);
          return ack({ ok: true });
        }
        case "fetchSockets": {
          const sockets = await target.fetchSockets();
          return ack({ ok: true, count: sockets.length, sockets: sockets.map((s) => ({ id: s.id, rooms: [...s.rooms], handshake: s.handshake, data: s.data })) });
        }
        case "serverCount":
          return ack({ ok: true, count: await io.of("/").adapter.serverCount() });
        case "socketsJoin":
          target.socketsJoin(op.join);
          return ack({ ok: true });
        case "socketsLeave":
          target.socketsLeave(op.leave);
          return ack({ ok: true });
        case "disconnectSockets":
          target.disconnectSockets(op.close ?? false);
          return ack({ ok: true });
        case "emitToId": {
          // the first socket of another node found in room `a`
          const sockets = await nsp.in("a").fetchSockets();
          const remote = sockets.find((s) => !nsp.sockets.has(s.id) && s.id.length !== 20);
          if (!remote) return ack({ ok: false, error: "no remote socket in a" });
          nsp.to(remote.id).emit(op.event, ...(op.args ?? []));
          return ack({ ok: true, id: remote.id });
        }
        case "emitWithAck": {
          const args = (op.args ?? []).map((a) => (a && a.$binary !== undefined ? Buffer.from(a.$binary, "hex") : a));
          const replies = await target.timeout(op.timeout ?? 2000).emitWithAck(op.event, ...args);
          return ack({ ok: true, replies });
        }
        case "fetchAndJoin": {
          const sockets = await target.fetchSockets();
          sockets.forEach((s) => s.join(op.join));
          return ack({ ok: true, ids: sockets.map((s) => s.id) });
        }
        case "rooms":
          return ack({ ok: true, rooms: [...(await nsp.adapter.allRooms())] });
        case "serverSideEmit":
          if (op.withAck) {
            const replies = await io.serverSideEmitWithAck(op.event, ...(op.args ?? []));
            return ack({ ok: true, replies });
          }
          io.serverSideEmit(op.event, ...(op.args ?? []));
          return ack({ ok: true });
        case "nodeEmitter": {
          let t = nodeEmitter.of(op.nsp ?? "/");
          if (op.rooms?.length) t = t.to(op.rooms);
          if (op.except?.length) t = t.except(op.except);
          if (op.volatile) t = t.volatile;
          const args = (op.args ?? []).map((a) => (a && a.$binary !== undefined ? Buffer.from(a.$binary, "hex") : a));
          if (op.action === "emit") t.emit(op.event, ...args);
          else if (op.action === "socketsJoin") t.socketsJoin(op.join);
          else if (op.action === "socketsLeave") t.socketsLeave(op.leave);
          else if (op.action === "disconnectSockets") t.disconnectSockets(op.close ?? false);
          else if (op.action === "serverSideEmit") nodeEmitter.serverSideEmit(op.event, ...args);
          else return ack({ ok: false, error: `unknown nodeEmitter action ${op.action}` });
          return ack({ ok: true });
        }
        case "serverSideLog":
          return ack({ ok: true, log: serverSideLog });
        default:
          return ack({ ok: false, error: `unknown op ${op.kind}` });
      }
    } catch (e) {
      ack({ ok: false, error: e.message });
    }
  });
}
// server-side events from other nodes: recorded, and answered when an ack is asked for
const serverSideLog = [];
io.on("ping-servers", (...args) => {
  const cb = typeof args[args.length - 1] === "function" ? args.pop() : null;
  serverSideLog.push(["ping-servers", ...args]);
  if (cb) cb({ from: "node", got: args });
});
io.on("notice", (...args) => serverSideLog.push(["notice", ...args]));

io.of("/").on("connection", gateway);
io.of("/admin").on("connection", gateway);

http.listen(0, "127.0.0.1", () => {
  console.log(JSON.stringify({ port: http.address().port }));
});

const stop = () => {
  io.close();
  Promise.allSettled([pub.quit(), sub.quit(), emitterClient.quit()]).finally(() => process.exit(0));
};
process.on("SIGTERM", stop);
process.stdin.on("end", stop);
process.stdin.resume();
