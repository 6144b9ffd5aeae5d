// Benchmark peer: Node.js socket.io 4.8 + @socket.io/redis-adapter 8.3 (or, with
// "adapter": "streams", @socket.io/redis-streams-adapter 0.3.1 with its defaults), with the
// sio-cluster gateway contract and no auth:
//   join(room, ack)                 -> socket.join(room); ack({ok: true})
//   publish({room, event, data}, ack) -> io.to(room).emit(event, data); ack({ok: true})
//
//   node server.mjs '{"redis": "redis://127.0.0.1:6379", "port": 0}'
//   node server.mjs '{"redis": "redis://127.0.0.1:6379", "port": 0, "adapter": "streams"}'
//
// Prints {"port": N} once listening on 127.0.0.1 with the adapter subscribed; runs until
// SIGTERM/SIGINT.
import { createServer } from "node:http";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import { createAdapter as createStreamsAdapter } from "@socket.io/redis-streams-adapter";
import { createClient } from "redis";

const opts = JSON.parse(process.argv[2] ?? "{}");
const streams = opts.adapter === "streams";
const pub = createClient({ url: opts.redis });
// the streams adapter duplicates the one client it is given for its reads and subscriptions
const sub = streams ? null : pub.duplicate();
pub.on("error", (e) => console.error("redis pub error", e.message));
sub?.on("error", (e) => console.error("redis sub error", e.message));
await Promise.all([pub.connect(), sub?.connect()]);

const http = createServer();
const adapter = streams ? createStreamsAdapter(pub) : createAdapter(pub, sub);
const io = new Server(http, { adapter });

io.on("connection", (socket) => {
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
    if (!req || typeof req.room !== "string" || typeof req.event !== "string") {
      return ack?.({ ok: false, error: "publish expects {room, event, data}" });
    }
    io.to(req.room).emit(req.event, req.data);
    ack?.({ ok: true });
  });
});

http.listen(opts.port ?? 0, "127.0.0.1", () => {
  console.log(JSON.stringify({ port: http.address().port }));
});

const stop = () => {
  io.close();
  Promise.allSettled([pub.quit(), sub?.quit()]).finally(() => process.exit(0));
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
