// Real socket.io-client traffic for the fault tests (tests/tests/faults.rs).
//
//   node faults.mjs '<json>'
//
// scenario "stream": subscribers (websocket, reconnection on, re-joining on every
// connect) spread over `subscribers: [{url, n}]`; a publisher on `publisherUrl` sends
// `publish {room, event: "tick", data: {seq, t}}` at `rate` per second for `durationMs`.
// Prints {"ready": true} once everyone is in the room, then one JSON line of facts:
// per-subscriber-group counts, the sequence numbers some subscriber missed (as ranges
// with their publish times, epoch ms), order violations, disconnects and publish acks.
//
// scenario "recover" (nodes with connection state recovery on; the test publishes):
// subscribers in `groups: [{name, url, n, transports}]` join `room` once, on their first
// connect, and never again, so a reconnect that is not recovered leaves its client out of
// the room and shows as loss (`rejoin: true`, for the control without recovery: on every
// connect). They count `tick` events whose first argument is a number 1..=`expect` (with
// recovery on, the last one is the stream offset the client keeps). Prints {"ready": true}
// once everyone is in the room, then, once every subscriber has seen `expect` (plus
// `lingerMs` for late duplicates) or `timeoutMs` after ready, one JSON line: per group
// and in total, lost, duplicated and reordered deliveries, reconnects and how many were
// recovered.
import { io } from "socket.io-client";

const opts = JSON.parse(process.argv[2] ?? "{}");
const WAIT_MS = opts.waitMs ?? 10_000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function withTimeout(promise, what, ms = WAIT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function client(url, room) {
  const s = io(url, {
    transports: opts.transports ?? ["websocket"],
    forceNew: true,
    reconnectionDelay: 100,
    reconnectionDelayMax: 1000,
    randomizationFactor: 0,
    auth: opts.token ? { token: opts.token } : undefined,
  });
  const c = { s, url, joined: false, disconnects: [], connectErrors: 0 };
  s.on("connect", () => {
    c.joined = false;
    if (room)
      s.timeout(WAIT_MS)
        .emitWithAck("join", room)
        .then((res) => (c.joined = res?.ok === true))
        .catch(() => {});
  });
  s.on("disconnect", (reason) => c.disconnects.push({ reason, at: Date.now() }));
  s.on("connect_error", () => c.connectErrors++);
  return c;
}

async function stream() {
  const room = opts.room ?? "room-stream";
  const subs = [];
  for (const group of opts.subscribers) {
    for (let i = 0; i < group.n; i++) {
      const c = client(group.url, room);
      c.got = [];
      c.outOfOrder = 0;
      c.s.on("tick", (data) => {
        if (c.got.length && data.seq <= c.got[c.got.length - 1]) c.outOfOrder++;
        c.got.push(data.seq);
      });
      subs.push(c);
    }
  }
  const pub = client(opts.publisherUrl, null);
  await withTimeout(
    (async () => {
      while (!(subs.every((c) => c.joined) && pub.s.connected)) await sleep(10);
    })(),
    "every subscriber in the room",
  );
  console.log(JSON.stringify({ ready: true, at: Date.now() }));

  const rate = opts.rate ?? 50;
  const total = Math.round(((opts.durationMs ?? 5000) * rate) / 1000);
  const sentAt = [];
  const acks = { ok: 0, refused: 0, failed: 0, offline: 0 };
  const started = performance.now();
  for (let seq = 0; seq < total; seq++) {
    const due = started + (seq * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    sentAt.push(Date.now());
    if (!pub.s.connected) {
      acks.offline++; // socket.io-client buffers it and sends it on reconnect
    }
    pub.s
      .timeout(WAIT_MS)
      .emitWithAck("publish", { room, event: "tick", data: { seq, t: Date.now() } })
      .then((res) => (res?.ok ? acks.ok++ : acks.refused++))
      .catch(() => acks.failed++);
  }
  // stragglers
  const settle = opts.settleMs ?? 3000;
  const deadline = performance.now() + settle;
  while (performance.now() < deadline && !subs.every((c) => c.got.length >= total)) await sleep(20);

  const missing = new Set();
  for (const c of subs) {
    const have = new Set(c.got);
    for (let seq = 0; seq < total; seq++) if (!have.has(seq)) missing.add(seq);
  }
  const sorted = [...missing].sort((a, b) => a - b);
  const gaps = [];
  for (const seq of sorted) {
    const g = gaps[gaps.length - 1];
    if (g && g.last === seq - 1) g.last = seq;
    else gaps.push({ first: seq, last: seq });
  }
  for (const g of gaps) {
    g.firstSentAt = sentAt[g.first];
    g.lastSentAt = sentAt[g.last];
  }
  const groups = {};
  for (const c of subs) {
    const g = (groups[c.url] ??= { clients: 0, received: 0, expected: 0, outOfOrder: 0, disconnects: 0, duplicates: 0 });
    g.clients++;
    g.received += new Set(c.got).size;
    g.duplicates += c.got.length - new Set(c.got).size;
    g.expected += total;
    g.outOfOrder += c.outOfOrder;
    g.disconnects += c.disconnects.length;
    g.reasons ??= {};
    for (const d of c.disconnects) g.reasons[d.reason] = (g.reasons[d.reason] ?? 0) + 1;
    g.connectErrors = (g.connectErrors ?? 0) + c.connectErrors;
    if (!c.s.connected) g.notConnectedAtEnd = (g.notConnectedAtEnd ?? 0) + 1;
  }
  for (const c of [...subs, pub]) {
    c.s.removeAllListeners("disconnect");
    c.s.disconnect();
  }
  return {
    sent: total,
    acks,
    groups,
    lostSeqs: sorted.length,
    gaps: gaps.slice(0, 20),
    lastReceivedAt: Date.now(),
    publisherDisconnects: pub.disconnects,
  };
}

async function recover() {
  const room = opts.room ?? "room-recover";
  const expect = opts.expect;
  const subs = [];
  for (const group of opts.groups) {
    for (let i = 0; i < group.n; i++) {
      const s = io(group.url, {
        transports: group.transports,
        forceNew: true,
        reconnectionDelay: 100,
        reconnectionDelayMax: 1000,
        randomizationFactor: 0,
      });
      const c = {
        s, group: group.name, joined: false, got: [], seen: new Set(), duplicates: 0, outOfOrder: 0,
        connects: 0, recovered: 0, pids: new Set(), disconnects: [], connectErrors: 0,
      };
      s.on("connect", () => {
        c.connects++;
        if (c.connects === 1 || opts.rejoin) {
          // once: a recovered session has its rooms back by itself
          s.timeout(WAIT_MS)
            .emitWithAck("join", room)
            .then((res) => (c.joined = res?.ok === true))
            .catch(() => {});
        }
        if (c.connects > 1 && s.recovered) c.recovered++;
        if (s._pid) c.pids.add(s._pid);
      });
      s.on("disconnect", (reason) => c.disconnects.push(reason));
      s.on("connect_error", () => c.connectErrors++);
      s.on("tick", (seq) => {
        if (c.seen.has(seq)) c.duplicates++;
        else if (c.got.length && seq < c.got[c.got.length - 1]) c.outOfOrder++;
        c.seen.add(seq);
        c.got.push(seq);
      });
      subs.push(c);
    }
  }
  await withTimeout(
    (async () => {
      while (!subs.every((c) => c.joined)) await sleep(10);
    })(),
    "every subscriber in the room",
  );
  console.log(JSON.stringify({ ready: true, at: Date.now() }));

  const deadline = performance.now() + (opts.timeoutMs ?? 30_000);
  while (performance.now() < deadline && !subs.every((c) => c.seen.has(expect))) await sleep(20);
  await sleep(opts.lingerMs ?? 500);

  const zero = () => ({
    clients: 0, expected: 0, received: 0, lost: 0, duplicated: 0, reordered: 0, unexpected: 0, reconnects: 0,
    recovered: 0, notRecovered: 0, pidChanged: 0, disconnects: {}, connectErrors: 0, notConnectedAtEnd: 0,
  });
  const total = zero();
  const groups = {};
  const missing = [];
  for (const c of subs) {
    const g = (groups[c.group] ??= zero());
    let lost = 0;
    for (let seq = 1; seq <= expect; seq++) if (!c.seen.has(seq)) lost++;
    const unexpected = [...c.seen].filter((seq) => !(seq >= 1 && seq <= expect)).length;
    if (lost) {
      const first = [];
      for (let seq = 1; seq <= expect && first.length < 10; seq++) if (!c.seen.has(seq)) first.push(seq);
      missing.push({ group: c.group, lost, first, connects: c.connects, recovered: c.recovered });
    }
    for (const t of [g, total]) {
      t.clients++;
      t.expected += expect;
      t.received += c.got.length;
      t.lost += lost;
      t.duplicated += c.duplicates;
      t.unexpected += unexpected;
      t.reordered += c.outOfOrder;
      t.reconnects += c.connects - 1;
      t.recovered += c.recovered;
      t.notRecovered += c.connects - 1 - c.recovered;
      t.pidChanged += c.pids.size > 1 ? 1 : 0;
      for (const r of c.disconnects) t.disconnects[r] = (t.disconnects[r] ?? 0) + 1;
      t.connectErrors += c.connectErrors;
      if (!c.s.connected) t.notConnectedAtEnd++;
    }
  }
  for (const c of subs) c.s.disconnect();
  return { expect, total, groups, missing: missing.slice(0, 10) };
}

const scenarios = { stream, recover };
const run = scenarios[opts.scenario];
if (!run) {
  console.log(JSON.stringify({ error: `unknown scenario ${opts.scenario}` }));
  process.exit(2);
}
try {
  console.log(JSON.stringify(await run()));
  process.exit(0);
} catch (e) {
  console.log(JSON.stringify({ error: e.message }));
  process.exit(1);
}
