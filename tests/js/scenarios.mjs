// Real socket.io-client scenarios, driven by the Rust integration tests.
//
//   node scenarios.mjs '<json>'    json = {"scenario": "...", "url": "http://127.0.0.1:PORT", ...}
//
// Each scenario prints one JSON line of observed facts on stdout and exits 0; the Rust
// test asserts on those facts. A scenario that cannot finish prints {"error": ...} and
// exits 1. Every wait is bounded, so a hung server fails the test instead of hanging it.
import { execFile } from "node:child_process";
import { io } from "socket.io-client";

const opts = JSON.parse(process.argv[2] ?? "{}");
const WAIT_MS = opts.waitMs ?? 10_000;

function withTimeout(promise, what, ms = WAIT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function connect(path = "", extra = {}) {
  const socket = io(opts.url + path, {
    transports: opts.transports ?? ["polling", "websocket"],
    reconnection: false,
    forceNew: extra.forceNew ?? false,
    auth: opts.token ? { token: opts.token } : undefined,
    ...extra,
  });
  return socket;
}

function connected(socket, what = "connect") {
  return withTimeout(
    new Promise((resolve, reject) => {
      if (socket.connected) return resolve();
      socket.once("connect", resolve);
      socket.once("connect_error", (err) => reject(new Error(`connect_error: ${err.message}`)));
    }),
    what,
  );
}

function ack(socket, event, ...args) {
  return withTimeout(socket.timeout(WAIT_MS).emitWithAck(event, ...args), `ack of ${event}`);
}

function next(socket, event) {
  return withTimeout(new Promise((resolve) => socket.once(event, (...args) => resolve(args))), `event ${event}`);
}

/// Waits until the transport is what the client will keep (the upgrade, when offered, is done).
async function settledTransport(socket) {
  const engine = socket.io.engine;
  const wantsUpgrade = (opts.transports ?? ["polling", "websocket"]).includes("websocket");
  if (engine.transport.name === "polling" && wantsUpgrade) {
    await withTimeout(new Promise((resolve) => engine.once("upgrade", resolve)), "transport upgrade");
  }
  return engine.transport.name;
}

function bufferFacts(value) {
  return Buffer.isBuffer(value) ? { binary: true, hex: value.toString("hex") } : { binary: false, value };
}

const scenarios = {
  // connect, join, room broadcast through `publish`, acks, binary, a second namespace
  async gateway() {
    const facts = {};
    const main = connect();
    await connected(main);
    facts.transport = await settledTransport(main);
    facts.id = main.id;

    facts.joinAck = await ack(main, "join", "room-a");
    facts.badJoinAck = await ack(main, "join", 42);

    // a room broadcast reaches the sender (it is in the room)
    const got = next(main, "news");
    facts.publishAck = await ack(main, "publish", { room: "room-a", event: "news", data: { hello: "world", n: 1 } });
    [facts.news] = await got;

    // binary inside data keeps its bytes
    const gotBin = next(main, "blob");
    const payload = Buffer.from([0, 1, 2, 253, 254, 255]);
    facts.binaryAck = await ack(main, "publish", {
      room: "room-a",
      event: "blob",
      data: { bin: payload, nested: [payload.subarray(0, 2)], label: "x" },
    });
    const [blob] = await gotBin;
    facts.blob = { bin: bufferFacts(blob.bin), nested: bufferFacts(blob.nested[0]), label: blob.label };

    // a room the client is not in: publish succeeds, the client does not receive
    let strayReceived = false;
    main.on("stray", () => (strayReceived = true));
    facts.otherRoomAck = await ack(main, "publish", { room: "room-b", event: "stray", data: 1 });
    facts.deniedAck = await ack(main, "publish", { room: "secret", event: "x", data: 1 });
    facts.reservedAck = await ack(main, "publish", { room: "room-a", event: "disconnect", data: 1 });
    facts.malformedAck = await ack(main, "publish", "not an object");

    // leave: the next broadcast no longer arrives
    facts.leaveAck = await ack(main, "leave", "room-a");
    let afterLeave = false;
    main.on("after-leave", () => (afterLeave = true));
    await ack(main, "publish", { room: "room-a", event: "after-leave", data: 1 });

    // a second namespace on the same connection (multiplexed)
    if (opts.secondNamespace) {
      const admin = connect(opts.secondNamespace);
      await connected(admin, "connect to second namespace");
      facts.secondNamespace = { connected: admin.connected, sameEngine: admin.io === main.io };
      await ack(admin, "join", "room-a");
      await ack(main, "join", "room-a");
      let mainGotAdmin = false;
      main.on("ns-check", () => (mainGotAdmin = true));
      const adminGot = next(admin, "ns-check");
      await ack(admin, "publish", { room: "room-a", event: "ns-check", data: "from-admin" });
      [facts.secondNamespace.received] = await adminGot;
      // a round trip on `/` after the admin broadcast: anything for `/` would have arrived
      await ack(main, "join", "room-a");
      facts.secondNamespace.leakedToMain = mainGotAdmin;
      admin.disconnect();
    }

    facts.strayReceived = strayReceived;
    facts.afterLeaveReceived = afterLeave;
    main.disconnect();
    return facts;
  },

  // connect and report how it went (auth tests)
  async handshake() {
    const s = connect(opts.namespace ?? "");
    try {
      await connected(s);
      const facts = { connected: true, id: s.id };
      if (opts.join) facts.joinAcks = await Promise.all(opts.join.map((room) => ack(s, "join", room)));
      if (opts.publishToSelf) {
        const got = next(s, "to-self");
        facts.publishAck = await ack(s, "publish", { room: opts.publishToSelf, event: "to-self", data: "hi" });
        [facts.received] = await got;
      }
      s.disconnect();
      return facts;
    } catch (e) {
      s.close();
      return { connected: false, error: e.message };
    }
  },

  // many clients that emit `join` the instant `connect` fires: every ack must come back
  async burst() {
    const n = opts.clients ?? 200;
    const clients = [];
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        new Promise((resolve) => {
          const s = connect("", { forceNew: true });
          clients.push(s);
          const timer = setTimeout(() => resolve("timeout"), WAIT_MS);
          s.on("connect", () => {
            // no await between connect and emit: the race the server must win
            s.emit("join", `burst-${i % 10}`, (reply) => {
              clearTimeout(timer);
              resolve(reply && reply.ok ? "ok" : `bad reply ${JSON.stringify(reply)}`);
            });
          });
          s.on("connect_error", (err) => {
            clearTimeout(timer);
            resolve(`connect_error ${err.message}`);
          });
        }),
      ),
    );
    clients.forEach((s) => s.disconnect());
    const failures = results.filter((r) => r !== "ok");
    return { clients: n, acked: n - failures.length, failures: failures.slice(0, 5) };
  },

  // two chatters and a late-comer who must see the history
  async chat() {
    const a = connect("/chat", { forceNew: true });
    const b = connect("/chat", { forceNew: true });
    const aHistory = next(a, "history");
    await Promise.all([connected(a), connected(b)]);
    const [initialHistory] = await aHistory;
    const bGot = [];
    b.on("chat", (m) => bGot.push(m));
    const texts = ["hello", "how are you", "bye"];
    const acks = [];
    for (const text of texts) acks.push(await ack(a, "chat", { name: "ann", text }));
    acks.push(await ack(a, "chat", { text: "" }));
    await withTimeout(
      new Promise((resolve) => {
        const check = () => (bGot.length >= texts.length ? resolve() : setTimeout(check, 20));
        check();
      }),
      "chat messages at b",
    );
    const c = connect("/chat", { forceNew: true });
    const cHistory = next(c, "history");
    await connected(c);
    const [history] = await cHistory;
    [a, b, c].forEach((s) => s.disconnect());
    return { initialHistory, acks, received: bGot, history };
  },

  // one member and one outsider per node (in namespace `nsp`, default "/"); member 0
  // publishes `messages` events into the room as fast as it can; every member must get all
  // of them, once, in send order
  async fanout() {
    const urls = opts.urls;
    const n = opts.messages ?? 100;
    const make = (url) => io(url + (opts.nsp ?? ""), {
      transports: opts.transports ?? ["websocket"],
      reconnection: false,
      forceNew: true,
    });
    const members = urls.map(make);
    const outsiders = urls.map(make);
    await Promise.all([...members, ...outsiders].map((s) => connected(s)));
    await Promise.all(members.map((s) => ack(s, "join", opts.room)));
    // optional pause after the joins are acked (a Node.js node subscribes in the background)
    if (opts.settleMs) await new Promise((r) => setTimeout(r, opts.settleMs));
    const got = members.map(() => []);
    members.forEach((s, i) => s.on("seq", (m) => got[i].push(m.seq)));
    let outsiderGot = 0;
    outsiders.forEach((s) => s.on("seq", () => outsiderGot++));
    const acks = [];
    for (let i = 0; i < n; i++) {
      // no await: a burst, as a chatty client sends it
      acks.push(members[0].timeout(WAIT_MS).emitWithAck("publish", { room: opts.room, event: "seq", data: { seq: i } }));
    }
    const replies = await withTimeout(Promise.all(acks), "publish acks");
    await withTimeout(
      new Promise((resolve) => {
        const check = () => (got.every((g) => g.length >= n) ? resolve() : setTimeout(check, 20));
        check();
      }),
      "every member to receive every message",
    ).catch(() => {});
    // a round trip on every outsider: anything sent to them would have arrived by now
    await Promise.all(outsiders.map((s) => ack(s, "leave", "nothing")));
    [...members, ...outsiders].forEach((s) => s.disconnect());
    return {
      acked: replies.filter((r) => r && r.ok).length,
      perMember: got.map((g) => ({
        count: g.length,
        unique: new Set(g).size,
        inOrder: g.every((v, i) => i === 0 || v > g[i - 1]),
        // the first few sequence numbers that never arrived (diagnosis of a loss)
        missing: [...Array(n).keys()].filter((i) => !g.includes(i)).slice(0, 5),
      })),
      outsiderGot,
    };
  },

  // clients (each on its own node, in its rooms) wait for `event`; a controller client
  // asks its node to run `op` (see peer-node.mjs); reports what each client received
  async ops() {
    const make = (url, path = "") => io(url + path, { transports: ["websocket"], reconnection: false, forceNew: true });
    const clients = opts.clients.map((c) => ({ ...c, socket: make(c.url, c.nsp ?? "") }));
    const controller = make(opts.controller);
    await Promise.all([controller, ...clients.map((c) => c.socket)].map((s) => connected(s)));
    for (const c of clients) for (const room of c.rooms ?? []) await ack(c.socket, "join", room);
    const got = clients.map(() => []);
    const encode = (v) => (Buffer.isBuffer(v) ? { $binary: v.toString("hex") } : v);
    clients.forEach((c, i) => c.socket.on(opts.event, (...args) => got[i].push(args.map(encode))));
    const reply = await ack(controller, "op", opts.op);
    // give the broadcast time to cross Redis, then a round trip on every client
    await new Promise((r) => setTimeout(r, opts.settleMs ?? 300));
    await Promise.all(clients.map((c) => ack(c.socket, "leave", "nothing")));
    [controller, ...clients.map((c) => c.socket)].forEach((s) => s.disconnect());
    return { reply, received: got };
  },

  // a scripted conversation between named clients on several nodes:
  //   {connect: name, url, nsp?, rooms?, noAck?}  connect over websocket, join rooms;
  //                                          events asking for an ack get {from: name}
  //   {op: {...}, via: name, as}             facts[as] = ack of the `op` event (peer nodes)
  //   {waitEvent: {client, event}}           until `client` received `event`
  //   {waitDisconnect: client}               until `client` is disconnected
  //   {sleep: ms}
  //   {log: client, as}                      facts[as] = [[event, ...args]] received so far
  //   {id: client, as}                       facts[as] = the client's socket id
  //   {run: [program, ...args], as}          facts[as] = {code, stdout, stderr} of running it
  // Binary arguments are reported as {"$binary": hex}.
  async steps() {
    const clients = {};
    const facts = {};
    const encode = (v) => (Buffer.isBuffer(v) ? { $binary: v.toString("hex") } : v);
    const until = (what, pred) =>
      withTimeout(
        new Promise((resolve) => {
          const check = () => (pred() ? resolve() : setTimeout(check, 10));
          check();
        }),
        what,
      );
    try {
      for (const step of opts.steps) {
        if (step.connect) {
          const socket = io(step.url + (step.nsp ?? ""), { transports: ["websocket"], reconnection: false, forceNew: true });
          const c = { socket, log: [], disconnect: null };
          socket.onAny((event, ...args) => {
            const cb = typeof args[args.length - 1] === "function" ? args.pop() : null;
            c.log.push([event, ...args.map(encode)]);
            if (cb && !step.noAck) cb({ from: step.connect });
          });
          socket.on("disconnect", (reason) => (c.disconnect = reason));
          clients[step.connect] = c;
          await connected(socket, `connect ${step.connect}`);
          for (const room of step.rooms ?? []) await ack(socket, "join", room);
        } else if (step.op) {
          facts[step.as ?? "op"] = await ack(clients[step.via].socket, "op", step.op);
        } else if (step.waitEvent) {
          const { client, event } = step.waitEvent;
          await until(`${client} to receive ${event}`, () => clients[client].log.some((e) => e[0] === event));
        } else if (step.waitDisconnect) {
          await until(`${step.waitDisconnect} to be disconnected`, () => clients[step.waitDisconnect].disconnect !== null);
          facts[step.as ?? "disconnect"] = clients[step.waitDisconnect].disconnect;
        } else if (step.sleep) {
          await new Promise((r) => setTimeout(r, step.sleep));
        } else if (step.log) {
          facts[step.as] = clients[step.log].log;
        } else if (step.id) {
          facts[step.as] = clients[step.id].socket.id;
        } else if (step.run) {
          const [program, ...args] = step.run;
          facts[step.as ?? "run"] = await withTimeout(
            new Promise((resolve) =>
              execFile(program, args, (error, stdout, stderr) => resolve({ code: error ? (error.code ?? -1) : 0, stdout, stderr })),
            ),
            `${program} to finish`,
          );
        }
      }
    } finally {
      Object.values(clients).forEach((c) => c.socket.disconnect());
    }
    return facts;
  },

  // benchmark sink: `clients` websocket clients spread over `urls` join `room`, print
  // {"ready":true}, then count `event` until each has `expect` or `waitMs` passes
  async sink() {
    const n = opts.clients ?? 100;
    const sockets = Array.from({ length: n }, (_, i) =>
      io(opts.urls[i % opts.urls.length], { transports: ["websocket"], reconnection: false, forceNew: true }),
    );
    await Promise.all(sockets.map((s) => connected(s)));
    await Promise.all(sockets.map((s) => ack(s, "join", opts.room)));
    const counts = sockets.map(() => 0);
    let first = 0;
    let last = 0;
    sockets.forEach((s, i) =>
      s.on(opts.event ?? "bench", () => {
        const now = performance.now();
        if (!first) first = now;
        last = now;
        counts[i]++;
      }),
    );
    console.log(JSON.stringify({ ready: true }));
    const expect = opts.expect ?? 1;
    await withTimeout(
      new Promise((resolve) => {
        const check = () => (counts.every((c) => c >= expect) ? resolve() : setTimeout(check, 5));
        check();
      }),
      "every sink client to receive every message",
      opts.waitMs ?? 60_000,
    ).catch(() => {});
    sockets.forEach((s) => s.disconnect());
    return {
      received: counts.reduce((a, b) => a + b, 0),
      complete: counts.filter((c) => c >= expect).length,
      spreadMs: Math.round(last - first),
    };
  },

  // many clients through one URL (a balancer): `polling` polling-only clients and
  // `upgrading` default clients, in rooms of `roomSize`; each publishes `messages` events
  // into its room; reports connect errors, disconnects and deliveries
  async crowd() {
    const specs = [
      ...Array.from({ length: opts.polling ?? 0 }, () => ["polling"]),
      ...Array.from({ length: opts.upgrading ?? 0 }, () => ["polling", "websocket"]),
    ];
    const roomSize = opts.roomSize ?? 20;
    const per = opts.messages ?? 3;
    const facts = { clients: specs.length, connectErrors: 0, disconnects: [], errors: [], upgrades: 0, upgradeErrors: 0 };
    const sockets = specs.map((transports, i) => {
      const s = io(opts.url, { transports, reconnection: false, forceNew: true });
      s.on("connect_error", (e) => {
        facts.connectErrors++;
        facts.errors.push(e.message);
      });
      // a failed upgrade probe leaves the client on polling without any other sign
      s.io.engine.on("upgrade", () => facts.upgrades++);
      s.io.engine.on("upgradeError", (e) => {
        facts.upgradeErrors++;
        facts.errors.push(`upgrade: ${e.message}`);
      });
      s.on("disconnect", (reason) => facts.disconnects.push(reason));
      s.room = `room-crowd-${Math.floor(i / roomSize)}`;
      s.got = 0;
      s.on("crowd", () => s.got++);
      return s;
    });
    await Promise.all(sockets.map((s) => connected(s).catch(() => {})));
    await Promise.all(sockets.filter((s) => s.connected).map((s) => ack(s, "join", s.room)));
    // let the upgrades happen while traffic flows
    for (let round = 0; round < per; round++) {
      await Promise.all(
        sockets.filter((s) => s.connected).map((s) => ack(s, "publish", { room: s.room, event: "crowd", data: round })),
      );
      await new Promise((r) => setTimeout(r, opts.pauseMs ?? 300));
    }
    const expected = (s) => Math.min(roomSize, specs.length - Math.floor(specs.indexOf(s.io.opts.transports) * 0)) * per;
    const sizes = {};
    sockets.forEach((s) => (sizes[s.room] = (sizes[s.room] ?? 0) + 1));
    await withTimeout(
      new Promise((resolve) => {
        const check = () => (sockets.every((s) => s.got >= sizes[s.room] * per) ? resolve() : setTimeout(check, 20));
        check();
      }),
      "every delivery",
    ).catch(() => {});
    facts.transports = {};
    sockets.forEach((s) => {
      const t = s.io.engine?.transport?.name ?? "none";
      facts.transports[t] = (facts.transports[t] ?? 0) + 1;
    });
    facts.delivered = sockets.reduce((a, s) => a + s.got, 0);
    facts.expected = sockets.reduce((a, s) => a + sizes[s.room] * per, 0);
    facts.errors = facts.errors.slice(0, 5);
    sockets.forEach((s) => s.removeAllListeners("disconnect"));
    sockets.forEach((s) => s.disconnect());
    void expected;
    return facts;
  },

  // fail-over: clients through a balancer with reconnection on; prints {"ready":true}
  // once all are connected and in their room, then watches for `observeMs` (the test
  // kills a node meanwhile) and finally checks every client can still talk
  async failover() {
    const specs = [
      ...Array.from({ length: opts.websocket ?? 0 }, () => ["websocket"]),
      ...Array.from({ length: opts.polling ?? 0 }, () => ["polling"]),
    ];
    const clients = specs.map((transports) => {
      const s = io(opts.url, {
        transports,
        forceNew: true,
        reconnectionDelay: 100,
        reconnectionDelayMax: 500,
        randomizationFactor: 0,
      });
      const c = { s, transports: transports.join(), disconnects: 0, downAt: 0, downMs: [] };
      s.on("disconnect", () => {
        c.disconnects++;
        c.downAt = performance.now();
      });
      s.on("connect", () => {
        if (c.downAt) c.downMs.push(Math.round(performance.now() - c.downAt));
        c.downAt = 0;
        s.emit("join", "room-fo");
      });
      return c;
    });
    await Promise.all(clients.map((c) => connected(c.s)));
    await Promise.all(clients.map((c) => ack(c.s, "join", "room-fo")));
    console.log(JSON.stringify({ ready: true }));
    await new Promise((r) => setTimeout(r, opts.observeMs ?? 6000));
    // everyone connected again and reachable
    await withTimeout(
      new Promise((resolve) => {
        const check = () => (clients.every((c) => c.s.connected) ? resolve() : setTimeout(check, 20));
        check();
      }),
      "every client to be connected again",
    );
    let got = 0;
    clients.forEach((c) => c.s.on("fo-check", () => got++));
    await ack(clients[0].s, "publish", { room: "room-fo", event: "fo-check", data: 1 });
    await withTimeout(
      new Promise((resolve) => {
        const check = () => (got >= clients.length ? resolve() : setTimeout(check, 20));
        check();
      }),
      "the check message at every client",
    ).catch(() => {});
    clients.forEach((c) => c.s.removeAllListeners("disconnect"));
    clients.forEach((c) => c.s.disconnect());
    const by = (t) => clients.filter((c) => c.transports === t);
    const summary = (list) => ({
      clients: list.length,
      disturbed: list.filter((c) => c.disconnects > 0).length,
      reconnectedMs: list.flatMap((c) => c.downMs),
    });
    return { websocket: summary(by("websocket")), polling: summary(by("polling")), checkReceived: got };
  },

  // reports how the client saw the server go away (drain tests)
  async drain() {
    const s = connect("", { forceNew: true });
    await connected(s);
    await settledTransport(s);
    console.log(JSON.stringify({ ready: true, id: s.id }));
    const [reason] = await withTimeout(new Promise((resolve) => s.once("disconnect", (...a) => resolve(a))), "disconnect", opts.drainWaitMs ?? 30_000);
    return { reason, active: s.active };
  },

  // ---- security (issue #8) ------------------------------------------------------------

  // connect once and report exactly how it failed (or that it did not)
  async connectError() {
    const s = connect(opts.namespace ?? "", { forceNew: true, extraHeaders: opts.extraHeaders });
    const facts = await withTimeout(
      new Promise((resolve) => {
        s.once("connect", () => resolve({ connected: true }));
        s.once("connect_error", (err) =>
          resolve({
            connected: false,
            message: err.message,
            description: typeof err.description === "number" ? err.description : null,
            body: err.context?.responseText ?? null,
            data: err.data ?? null,
          }),
        );
      }),
      "connect or connect_error",
    );
    s.close();
    return facts;
  },

  // a victim (token `victimToken`) and an attacker (token `token`) on the same node: the
  // attacker tries to join and publish into rooms outside its token; reports the acks and
  // everything the victim received
  async authRooms() {
    const make = (token) => io(opts.url, { transports: ["websocket"], reconnection: false, forceNew: true, auth: { token } });
    const victim = make(opts.victimToken);
    const attacker = make(opts.token);
    await Promise.all([connected(victim, "victim"), connected(attacker, "attacker")]);
    const victimGot = [];
    victim.onAny((event, ...args) => victimGot.push([event, ...args]));
    const facts = { joins: {}, publishes: {} };
    for (const room of opts.rooms) {
      facts.joins[room] = await ack(attacker, "join", room);
      facts.publishes[room] = await ack(attacker, "publish", { room, event: "pwn", data: room });
    }
    // a round trip on the victim: anything published to it has arrived by now
    await ack(victim, "leave", "nothing");
    facts.victimGot = victimGot;
    victim.disconnect();
    attacker.disconnect();
    return facts;
  },

  // `count` acked events (`event`, default `join` of room-flood) sent at once by one
  // client, then `companionEvents` from a second client; reports acks, `error` events
  // and how the flooding client was disconnected
  async flood() {
    const make = () => io(opts.url, { transports: ["websocket"], reconnection: false, forceNew: true, auth: opts.token ? { token: opts.token } : undefined });
    const abuser = make();
    await connected(abuser, "abuser");
    const errors = [];
    abuser.on("error", (e) => errors.push(e));
    let disconnectReason = null;
    abuser.on("disconnect", (reason) => (disconnectReason = reason));
    const n = opts.count ?? 100;
    const event = opts.event ?? "join";
    const sends = Array.from({ length: n }, (_, i) =>
      abuser
        .timeout(WAIT_MS)
        .emitWithAck(event, event === "publish" ? { room: "room-flood", event: "x", data: i } : "room-flood")
        .then((reply) => reply)
        .catch((e) => ({ clientError: e.message })),
    );
    const replies = await withTimeout(Promise.all(sends), "flood acks");
    await withTimeout(
      new Promise((resolve) => {
        const check = () => (disconnectReason !== null || !opts.expectDisconnect ? resolve() : setTimeout(check, 20));
        check();
      }),
      "the abuser to be disconnected",
    ).catch(() => {});
    const companionReplies = [];
    if (opts.companionEvents) {
      const c = make();
      await connected(c, "companion");
      for (let i = 0; i < opts.companionEvents; i++) companionReplies.push(await ack(c, "join", `room-c-${i}`));
      c.disconnect();
    }
    abuser.disconnect();
    const refused = replies.filter((r) => r && r.ok === false);
    return {
      ok: replies.filter((r) => r && r.ok === true).length,
      refused: refused.length,
      firstRefusal: refused[0] ?? null,
      unanswered: replies.filter((r) => r && r.clientError).length,
      okIndexes: replies.map((r, i) => (r && r.ok === true ? i : -1)).filter((i) => i >= 0),
      errors,
      disconnectReason,
      companionReplies,
    };
  },

  // --- bad input (tests/tests/bad_input.rs) ---
  // witnesses: one client per entry of `kinds` (transport lists; default a websocket and a
  // polling-only client), each in its own room `<room>-<i>`, publishing a numbered tick
  // every `intervalMs` and counting the ticks that come back. Prints {"ready":true}, runs
  // until stdin closes (the test is done abusing the node), then waits for the last ticks
  // and reports, per witness: sent, acked, received, inOrder, disconnects, connectErrors.
  async witness() {
    const kinds = opts.kinds ?? [["websocket"], ["polling"]];
    const sockets = kinds.map((transports, i) => {
      const s = io(opts.url, { transports, reconnection: false, forceNew: true });
      s.room = `${opts.room}-${i}`;
      s.facts = { transports, sent: 0, acked: 0, received: 0, inOrder: true, disconnects: [], connectErrors: [] };
      s.on("connect_error", (e) => s.facts.connectErrors.push(e.message));
      s.on("disconnect", (reason) => s.facts.disconnects.push(reason));
      s.on("tick", (n) => {
        if (n !== s.facts.received) s.facts.inOrder = false;
        s.facts.received++;
      });
      return s;
    });
    await Promise.all(sockets.map((s) => connected(s)));
    await Promise.all(sockets.map((s) => ack(s, "join", s.room)));
    console.log(JSON.stringify({ ready: true }));
    const stdinClosed = new Promise((resolve) => {
      process.stdin.on("end", resolve);
      process.stdin.on("close", resolve);
      process.stdin.resume();
    });
    let stop = false;
    const loops = sockets.map(async (s) => {
      while (!stop && s.connected) {
        const n = s.facts.sent++;
        ack(s, "publish", { room: s.room, event: "tick", data: n })
          .then((a) => a?.ok && s.facts.acked++)
          .catch(() => {});
        await new Promise((r) => setTimeout(r, opts.intervalMs ?? 50));
      }
    });
    await stdinClosed;
    stop = true;
    await Promise.all(loops);
    await withTimeout(
      new Promise((resolve) => {
        // a polling client may get its last tick a poll before the ack of that publish
        const settled = (s) => (s.facts.received >= s.facts.sent && s.facts.acked >= s.facts.sent) || !s.connected;
        const check = () => (sockets.every(settled) ? resolve() : setTimeout(check, 20));
        check();
      }),
      "the last ticks",
    ).catch(() => {});
    const facts = sockets.map((s) => ({ ...s.facts, connected: s.connected }));
    sockets.forEach((s) => s.removeAllListeners("disconnect"));
    sockets.forEach((s) => s.disconnect());
    return { witnesses: facts };
  },
};

// ---- deploy test (tests/tests/deploy.rs) ----------------------------------------------
// The docker-compose cluster seen by official clients through its nginx: one polling-only,
// one websocket-only and one upgrading client, reconnection on, each (re)joining
// `opts.rooms` on every connect. Prints a JSON line per phase; the test acts in between:
//   {"phase":"ready"}      the test emits `opts.event` {"n":1} with sio-emit
//   {"phase":"got1"}       the test stops the node serving the clients
//   {"phase":"recovered"}  every client was disconnected, then connected and in its rooms
//                          again; the test emits {"n":2} (and starts the demo job)
//   {"phase":"done"}       every client got {"n":2} (and, with `opts.demo`, a
//                          `notification` from the demo job)
scenarios.deploy = async function deploy() {
  const rooms = opts.rooms ?? ["room-deploy"];
  const event = opts.event ?? "deploy-event";
  const modes = { polling: ["polling"], websocket: ["websocket"], upgrade: ["polling", "websocket"] };
  const clients = Object.entries(modes).map(([mode, transports]) => {
    const s = io(opts.url, {
      transports,
      forceNew: true,
      reconnectionDelay: 200,
      reconnectionDelayMax: 1000,
      randomizationFactor: 0,
    });
    const c = { mode, s, got: [], notifications: 0, disconnects: [], connectErrors: 0, joined: false };
    s.on("connect", async () => {
      c.joined = false;
      try {
        const acks = await Promise.all(rooms.map((r) => s.timeout(WAIT_MS).emitWithAck("join", r)));
        c.joined = acks.every((a) => a?.ok === true);
      } catch {
        // the next connect joins again
      }
    });
    s.on("disconnect", (reason) => {
      c.joined = false;
      c.disconnects.push(reason);
    });
    s.on("connect_error", () => c.connectErrors++);
    s.on(event, (data) => c.got.push(data));
    s.on("notification", () => c.notifications++);
    return c;
  });
  const until = (pred, what, ms) =>
    withTimeout(
      new Promise((resolve) => {
        const check = () => (pred() ? resolve() : setTimeout(check, 20));
        check();
      }),
      what,
      ms,
    );
  const wanted = (c) => (c.mode === "polling" ? "polling" : "websocket");
  const settled = () =>
    clients.every((c) => c.s.connected && c.joined && c.s.io.engine?.transport?.name === wanted(c));
  const transports = () => Object.fromEntries(clients.map((c) => [c.mode, c.s.io.engine?.transport?.name]));
  const gotN = (n) => clients.every((c) => c.got.some((d) => d?.n === n));
  const line = (facts) => console.log(JSON.stringify(facts));

  await until(settled, "every client connected, upgraded where asked, and in its rooms");
  line({ phase: "ready", transports: transports() });
  await until(() => gotN(1), "the first event at every client");
  line({ phase: "got1", got: clients.map((c) => c.got) });
  const before = clients.map((c) => c.disconnects.length);
  await until(
    () => settled() && clients.every((c, i) => c.disconnects.length > before[i]),
    "every client disconnected, then connected and in its rooms again",
    opts.recoverMs ?? 60_000,
  );
  line({
    phase: "recovered",
    transports: transports(),
    reasons: Object.fromEntries(clients.map((c) => [c.mode, c.disconnects])),
  });
  await until(() => gotN(2), "the second event at every client");
  if (opts.demo) {
    await until(() => clients.every((c) => c.notifications > 0), "a demo notification at every client", opts.recoverMs ?? 60_000);
  }
  const facts = {
    phase: "done",
    transports: transports(),
    got: clients.map((c) => c.got),
    notifications: clients.map((c) => c.notifications),
    disconnects: clients.map((c) => c.disconnects.length),
    connectErrors: clients.map((c) => c.connectErrors),
  };
  clients.forEach((c) => {
    c.s.removeAllListeners("disconnect");
    c.s.disconnect();
  });
  return facts;
};

// ---- slow and idle HTTP connections (tests/tests/security.rs, header timeout) --------
// Official clients, one polling-only, one websocket-only and one upgrading, each joins its
// room, then all stay quiet for `opts.quietMs` (long-polls wait for the next ping, longer
// than the node's header timeout), then each publishes `opts.messages` numbered events to
// its room and waits for them. Facts per client: final transport, events received in
// order, disconnects and connect errors, and the longest long-poll it saw (ms).
scenarios.quiet = async function quiet() {
  const modes = { polling: ["polling"], websocket: ["websocket"], upgrade: ["polling", "websocket"] };
  const messages = opts.messages ?? 5;
  const clients = Object.entries(modes).map(([mode, transports]) => {
    const s = io(opts.url, { transports, reconnection: false, forceNew: true });
    const c = { mode, s, received: [], disconnects: [], connectErrors: [], longestPollMs: 0 };
    s.on("connect_error", (e) => c.connectErrors.push(e.message));
    s.on("disconnect", (reason) => c.disconnects.push(reason));
    s.on("tick", (n) => c.received.push(n));
    s.io.on("open", () => {
      const transport = s.io.engine.transport;
      let started = 0;
      transport.on("poll", () => (started = Date.now()));
      transport.on("pollComplete", () => {
        if (started) c.longestPollMs = Math.max(c.longestPollMs, Date.now() - started);
      });
    });
    return c;
  });
  await Promise.all(clients.map((c) => connected(c.s, `${c.mode} connect`)));
  await Promise.all(clients.filter((c) => c.mode === "upgrade").map((c) => settledTransport(c.s)));
  await Promise.all(clients.map((c) => ack(c.s, "join", `${opts.room ?? "room-quiet"}-${c.mode}`)));
  await new Promise((r) => setTimeout(r, opts.quietMs ?? 3000));
  for (let n = 0; n < messages; n++) {
    await Promise.all(
      clients.map((c) => ack(c.s, "publish", { room: `${opts.room ?? "room-quiet"}-${c.mode}`, event: "tick", data: n })),
    );
  }
  await withTimeout(
    new Promise((resolve) => {
      const check = () => (clients.every((c) => c.received.length >= messages) ? resolve() : setTimeout(check, 20));
      check();
    }),
    "every event back",
  ).catch(() => {});
  const facts = Object.fromEntries(
    clients.map((c) => [
      c.mode,
      {
        transport: c.s.io.engine?.transport?.name,
        connected: c.s.connected,
        received: c.received,
        disconnects: c.disconnects,
        connectErrors: c.connectErrors,
        longestPollMs: c.longestPollMs,
      },
    ]),
  );
  clients.forEach((c) => {
    c.s.removeAllListeners("disconnect");
    c.s.disconnect();
  });
  return facts;
};

const run = scenarios[opts.scenario];
if (!run) {
  console.log(JSON.stringify({ error: `unknown scenario ${opts.scenario}` }));
  process.exit(2);
}
try {
  const facts = await run();
  console.log(JSON.stringify(facts));
  process.exit(0);
} catch (e) {
  console.log(JSON.stringify({ error: e.message }));
  process.exit(1);
}
