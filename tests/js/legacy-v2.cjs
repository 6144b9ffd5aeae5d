// socket.io-client 2.x (Socket.IO protocol v4 over Engine.IO v3), driven by the Rust
// integration tests:  node legacy-v2.cjs '{"url": "...", "transports": [...]}'
// Prints one JSON line of facts; every wait is bounded.
const io = require("socket.io-client-v2");

const opts = JSON.parse(process.argv[2] ?? "{}");
const socket = io(opts.url, { transports: opts.transports ?? ["polling", "websocket"], reconnection: false, forceNew: true });
const facts = {};
const fail = (why) => {
  console.log(JSON.stringify({ ...facts, error: why }));
  process.exit(1);
};
const timer = setTimeout(() => fail("timed out"), 10_000);

socket.on("connect_error", (err) => fail(`connect_error: ${err.message || err}`));
socket.on("connect", () => {
  facts.connected = true;
  socket.emit("join", "room-v2", (joinAck) => {
    facts.joinAck = joinAck;
    socket.on("v2-news", (data) => {
      facts.received = data;
      facts.transport = socket.io.engine.transport.name;
      clearTimeout(timer);
      socket.close();
      console.log(JSON.stringify(facts));
      process.exit(0);
    });
    socket.emit("publish", { room: "room-v2", event: "v2-news", data: { v: 2 } }, (publishAck) => {
      facts.publishAck = publishAck;
    });
  });
});
