#!/usr/bin/env python3
"""Turns bench/run.sh results (one JSON line per stack, scenario and round) into
BENCHMARKS.md (medians, ratios, targets, machine, commands) and bench/chart.png.

    python3 bench/report.py --results bench/results.jsonl --out . --command "bench/run.sh"

With --section TITLE it writes one section (## TITLE, every heading one level down, no
"not measured" target rows) to --md, to be added to BENCHMARKS.md beside earlier runs,
and its chart to --chart:

    python3 bench/report.py --results bench/results-streams.jsonl --out . --section "Streams mode" \
      --md /tmp/section.md --chart bench/chart-streams.png --stacks "ours ours-streams node node-streams"
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess

# (scenario, metric, label, higher_is_better)
METRICS = [
    ("fanout-max", "connect_failed", "fan-out: subscribers that could not connect/join", False),
    ("fanout-max", "delivered_per_s", "fan-out, max rate: delivered msgs/s", True),
    ("fanout-max", "lost", "fan-out, max rate: lost deliveries", False),
    ("fanout-max", "reordered", "fan-out, max rate: reordered deliveries", False),
    ("fanout-max", "p99_ms", "fan-out, max rate: latency p99 (ms)", False),
    ("fanout-max", "server_cpu_us_per_delivery", "fan-out, max rate: server CPU µs per delivery", False),
    ("fanout-50", "p50_ms", "fan-out, 50 msgs/s: latency p50 (ms)", False),
    ("fanout-50", "p99_ms", "fan-out, 50 msgs/s: latency p99 (ms)", False),
    ("fanout-50", "p999_ms", "fan-out, 50 msgs/s: latency p999 (ms)", False),
    ("fanout-50", "p50_ms_by_node_0", "fan-out, 50 msgs/s: p50, subscribers on the publisher's node (ms)", False),
    ("fanout-50", "p50_ms_by_node_1", "fan-out, 50 msgs/s: p50, subscribers on the other node (ms)", False),
    ("fanout-50", "p99_ms_by_node_1", "fan-out, 50 msgs/s: p99, subscribers on the other node (ms)", False),
    ("fanout-50", "lost", "fan-out, 50 msgs/s: lost deliveries", False),
    ("fanout-50", "reordered", "fan-out, 50 msgs/s: reordered deliveries", False),
    ("fanout-50", "server_cpu_us_per_delivery", "fan-out, 50 msgs/s: server CPU µs per delivery", False),
    ("fanout-max", "redis_cpu_us_per_delivery", "fan-out, max rate: Redis CPU µs per delivery (whole scenario)", False),
    ("fanout-max", "redis_stream_bytes", "fan-out, max rate: Redis stream memory after the run (bytes, MEMORY USAGE)", False),
    ("fanout-max", "redis_stream_entries", "fan-out, max rate: Redis stream entries after the run", False),
    ("fanout-max", "redis_used_memory_bytes", "fan-out, max rate: Redis used_memory after the run (bytes)", False),
    ("fanout-50", "redis_stream_bytes", "fan-out, 50 msgs/s: Redis stream memory after the run (bytes)", False),
    ("overload", "delivered_per_s", "overload (unbounded publisher): delivered msgs/s", True),
    ("overload", "lost", "overload: lost deliveries", False),
    ("overload", "reordered", "overload: reordered deliveries", False),
    ("overload", "disconnects", "overload: subscriber connections dropped", False),
    ("overload", "server_rss_kib_peak", "overload: peak server RSS (KiB, 2 nodes)", False),
    ("emitter", "emit_msgs_per_s", "emitter: publishes/s (own emitter)", True),
    ("emitter", "delivered_per_s", "emitter → clients: delivered msgs/s", True),
    ("emitter", "lost", "emitter → clients: lost deliveries", False),
    ("emitter", "redis_stream_bytes", "emitter: Redis stream memory after the run (bytes)", False),
    ("idle-2k", "kib_per_connection", "idle, 2,000 websockets: KiB per connection", False),
    ("idle-2k", "server_rss_kib", "idle, 2,000 websockets: total RSS (KiB, 2 nodes)", False),
    ("idle-10k", "kib_per_connection", "idle, 10,000 websockets: KiB per connection", False),
    ("idle-10k", "server_rss_kib", "idle, 10,000 websockets: total RSS (KiB, 2 nodes)", False),
    ("idle-10k", "server_rss_kib_base", "idle: RSS before connecting (KiB, 2 nodes)", False),
    ("idle-10k", "redis_used_memory_bytes", "idle, 10,000 websockets: Redis used_memory after the run (bytes; "
     "with recovery on, the sessions the stopped nodes left for the window)", False),
    ("storm-rr", "sessions_per_s", "connect storm, round robin: sessions/s", True),
    ("storm-rr", "failed", "connect storm, round robin: failed sessions", False),
    ("storm-rr", "server_cpu_us_per_session", "connect storm, round robin: server CPU µs/session", False),
    ("storm-sticky", "sessions_per_s", "connect storm, sticky: sessions/s", True),
    ("storm-sticky", "failed", "connect storm, sticky: failed sessions", False),
    ("storm-sticky", "server_cpu_us_per_session", "connect storm, sticky: server CPU µs/session", False),
    ("storm-rr-polling", "server_cpu_us_per_session", "polling-only sessions at 2,000/s, round robin: server CPU µs/session", False),
    ("storm-sticky-polling", "server_cpu_us_per_session", "polling-only sessions at 2,000/s, sticky: server CPU µs/session", False),
    ("storm-rr-paced", "server_cpu_us_per_session", "upgrading sessions at 1,000/s, round robin: server CPU µs/session", False),
    ("storm-sticky-paced", "server_cpu_us_per_session", "upgrading sessions at 1,000/s, sticky: server CPU µs/session", False),
]

# counts of failures: any round with a failure matters, so the worst round is shown
WORST = {"lost", "reordered", "disconnects", "failed", "connect_failed"}

NAMES = {
    "ours": "sio-cluster",
    "node": "Node socket.io 4.8 + redis-adapter 8.3",
    "socketioxide": "socketioxide 0.18 + socketioxide-redis 0.4",
    "ours-streams": "sio-cluster in Redis streams mode (`SIO_REDIS_MODE=streams`, Node's stream "
    "defaults: one stream `socket.io`, MAXLEN ~ 10,000, XREAD COUNT 100)",
    "node-streams": "Node socket.io 4.8 + @socket.io/redis-streams-adapter 0.3.1 (`createAdapter(redisClient)`, defaults)",
    "ours-recovery": "sio-cluster in Redis streams mode with connection state recovery on "
    "(`SIO_RECOVERY_WINDOW_MS=120000`): broadcasts delivered when read back from the stream, "
    "each with its offset as a last argument, a session per socket in Redis",
    "ours-streams-ref": "sio-cluster in Redis streams mode, a reference build (`BENCH_REF_SERVER`: "
    "another commit's sio-server), for a before/after comparison on one machine in one run",
    "ours-sharded": "sio-cluster in Redis 7 sharded pub/sub mode (`SIO_REDIS_MODE=sharded`: the dynamic "
    "subscription mode, Node's `createShardedAdapter` default; `SPUBLISH`/`SSUBSCRIBE`, a room's broadcasts "
    "on the room's own channel)",
    "ours-sharded-ref": "sio-cluster in sharded mode, a reference build (`BENCH_REF_SERVER`: another commit's "
    "sio-server), for a before/after comparison on one machine in one run",
    "ours-ref": "sio-cluster, a reference build (`BENCH_REF_SERVER`: another commit's sio-server, classic mode), "
    "for a before/after comparison on one machine in one run",
    "floor": "the floor (bench/floor): one process for both nodes, no Redis, no Socket.IO "
    "library, each broadcast written straight to the sockets; what the machine allows",
}


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:  # noqa: BLE001 - a description line is optional
        return "?"


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
    except OSError:
        pass
    mem = sh("free -g | awk '/Mem:/ {print $2}'")
    return [
        f"CPU: {cpu}, {os.cpu_count()} cores; memory {mem} GiB",
        f"OS: {platform.platform()}",
        f"Rust: {sh('rustc --version')}; Node.js: {sh('node --version')}; Redis: {sh('docker run --rm redis:7.2 redis-server --version')}",
        "Load: sio-load (bench/load, 1 runtime thread) on the same machine; servers on 127.0.0.1",
        f"Threads: each Rust node (sio-cluster: `SIO_WORKER_THREADS`, the socketioxide peer: "
        f"`TOKIO_WORKER_THREADS`) runs {os.environ.get('BENCH_RUST_WORKERS', '?')} worker thread(s), "
        "half the cores, as each Node.js node runs its JavaScript on one thread: two nodes share the machine",
        f"Other load: load average (1/5/15 min) {os.environ.get('BENCH_LOAD_START', '?')} when the run "
        f"started, {loadavg()} when it ended (2 cores: near 0 at the start means a quiet machine)",
    ]


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def fmt(v):
    if v is None:
        return "–"
    if isinstance(v, float) and not v.is_integer():
        return f"{v:,.2f}"
    return f"{int(v):,}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--command", default="bench/run.sh")
    ap.add_argument("--stacks", default="ours node socketioxide")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--note", default=os.environ.get("BENCH_NOTE", ""))
    ap.add_argument("--section", help="write one section of BENCHMARKS.md with this title")
    ap.add_argument("--md", help="the markdown file (default: OUT/BENCHMARKS.md)")
    ap.add_argument("--chart", help="the chart (default: OUT/bench/chart.png)")
    a = ap.parse_args()
    stacks = a.stacks.split()
    rows = [json.loads(l) for l in open(a.results) if l.strip()]
    for r in rows:  # per-node lists ("p99_ms_by_node": [..]) as one figure per node
        for k, v in list(r.items()):
            if k.endswith("_by_node") and isinstance(v, list):
                r.update({f"{k}_{i}": x for i, x in enumerate(v)})
    rounds = max((r["round"] for r in rows), default=0)

    def values(stack, scenario, metric):
        return [r[metric] for r in rows if r["stack"] == stack and r["scenario"] == scenario and metric in r]

    def median(stack, scenario, metric):
        """The median over rounds; for counts of failures, the worst round."""
        v = values(stack, scenario, metric)
        if not v:
            return None
        return max(v) if metric in WORST else statistics.median(v)

    errors = [r for r in rows if "error" in r]
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    md = ["# Benchmarks", ""]
    md.append(f"Run {today}, {rounds} round(s), stacks alternating {' '.join(stacks)} per scenario; "
              "every figure is the median over the rounds, except counts of failures (lost, reordered, "
              "dropped, failed), which show the worst round; every scenario starts fresh nodes.")
    if a.note:
        md += ["", f"**{a.note}**"]
    if a.smoke:
        md += ["", "**Smoke run: tiny loads, figures mean nothing.**"]
    md += ["", "Stacks (2 nodes each, one Redis, the same client contract: `join` a room, "
           "`publish {room, event, data}` → `to(room).emit(event, data)`):", ""]
    md += [f"- **{s}**: {NAMES.get(s, s)}" for s in stacks]
    md += ["", "## Results", ""]
    # ratio columns: ours ÷ each other stack but the streams ones, then streams mode against
    # Node's streams adapter and against our classic mode
    ours_variants = ("ours", "ours-streams", "node-streams", "ours-recovery", "ours-streams-ref",
                     "ours-sharded", "ours-sharded-ref")
    pairs = [("ours", o) for o in stacks if o not in ours_variants] if "ours" in stacks else []
    if "ours-streams" in stacks:
        pairs += [("ours-streams", o) for o in ("node-streams", "ours", "ours-streams-ref") if o in stacks]
        pairs += [("ours-recovery", "ours-streams")] if "ours-recovery" in stacks else []
    if "ours-sharded" in stacks:
        pairs += [("ours-sharded", o) for o in ("ours-sharded-ref", "ours") if o in stacks]
    head = "| scenario / metric | " + " | ".join(stacks) + " | " + " | ".join(f"{a_} ÷ {b_}" for a_, b_ in pairs) + " |"
    md += [head, "|" + "---|" * (1 + len(stacks) + len(pairs))]
    for sc, metric, label, _higher in METRICS:
        meds = {s: median(s, sc, metric) for s in stacks}
        if all(v is None for v in meds.values()):
            continue
        ratios = []
        for a_, b_ in pairs:
            if meds.get(a_) is not None and meds.get(b_):
                ratios.append(f"{meds[a_] / meds[b_]:.2f}")
            else:
                ratios.append("–")
        md.append(f"| {label} | " + " | ".join(fmt(meds[s]) for s in stacks) + " | " + " | ".join(ratios) + " |")

    # targets of issue #7
    def m(s, sc, k):
        return median(s, sc, k)

    md += ["", "## Targets (issue #7)", ""]
    checks = []

    def check(name, ok, detail):
        if ok is None and a.section:
            return  # a section shows what its run measured
        checks.append(f"| {name} | {'met' if ok else ('not met' if ok is False else 'not measured')} | {detail} |")

    def ratio(x, y):
        return x / y if x is not None and y else None

    r = ratio(m("ours", "fanout-max", "delivered_per_s"), m("node", "fanout-max", "delivered_per_s"))
    lost = m("ours", "fanout-max", "lost")
    reo = m("ours", "fanout-max", "reordered")
    check("fan-out msgs/s ≥ 6× Node, no loss, in order",
          None if r is None else (r >= 6 and lost == 0 and reo == 0),
          f"{fmt(r)}×, lost {fmt(lost)}, reordered {fmt(reo)}" if r else "–")
    r = ratio(m("ours", "fanout-50", "p99_ms"), m("node", "fanout-50", "p99_ms"))
    check("p99 at 50 msgs/s ≤ ¼ of Node", None if r is None else r <= 0.25, f"{fmt(r)}× Node's" if r else "–")
    for sc in ("idle-2k", "idle-10k"):
        r = ratio(m("ours", sc, "kib_per_connection"), m("node", sc, "kib_per_connection"))
        check(f"{sc}: RSS per websocket ≤ Node's", None if r is None else r <= 1, f"{fmt(r)}× Node's" if r else "–")
    r = ratio(m("ours", "idle-10k", "server_rss_kib"), m("node", "idle-10k", "server_rss_kib"))
    check("total RSS at 10,000 idle ≤ ½ Node's", None if r is None else r <= 0.5, f"{fmt(r)}× Node's" if r else "–")
    d = m("ours", "overload", "disconnects")
    check("overload: no connection reset, drops counted", None if d is None else d == 0,
          f"disconnects {fmt(d)}, lost {fmt(m('ours', 'overload', 'lost'))}, "
          f"reordered {fmt(m('ours', 'overload', 'reordered'))} (order is not part of this target), peak RSS {fmt(m('ours', 'overload', 'server_rss_kib_peak'))} KiB")
    r = ratio(m("ours", "emitter", "delivered_per_s"), m("node", "emitter", "delivered_per_s"))
    check("emitter → clients ≥ 3× Node emitter into Node", None if r is None else r >= 3, f"{fmt(r)}×" if r else "–")
    r = ratio(m("ours", "storm-rr-polling", "server_cpu_us_per_session"),
              m("ours", "storm-sticky-polling", "server_cpu_us_per_session"))
    check("forwarded polling session ≤ 1.5× CPU of a local one (round robin vs sticky, polling-only sessions, both at 2,000/s)",
          None if r is None else r <= 1.5, f"{fmt(r)}×" if r else "–")
    r = ratio(m("ours", "storm-rr-paced", "server_cpu_us_per_session"),
              m("ours", "storm-sticky-paced", "server_cpu_us_per_session"))
    check("the same with the websocket upgrade forwarded too (upgrading sessions, both at 1,000/s)",
          None if r is None else r <= 1.5, f"{fmt(r)}×" if r else "–")
    r = ratio(m("ours", "storm-rr", "server_cpu_us_per_session"), m("ours", "storm-sticky", "server_cpu_us_per_session"))
    rr, st = m("ours", "storm-rr", "sessions_per_s"), m("ours", "storm-sticky", "sessions_per_s")
    if r or not a.section:
        checks.append(f"| (not a target) the same at max rate, where sticky runs faster and so pays less per session "
                      f"| – | {fmt(r)}× ({fmt(rr)} vs {fmt(st)} sessions/s) |" if r else
                      "| (not a target) the same at max rate | – | – |")
    if checks or not a.section:
        md += ["| target | status | measured |", "|---|---|---|"] + checks
    else:
        md.pop(); md.pop(); md.pop()  # no target of issue #7 measured: no heading

    if "ours-streams" in stacks:  # issue #17: streams mode
        checks = []
        r = ratio(m("ours-streams", "fanout-max", "delivered_per_s"), m("node-streams", "fanout-max", "delivered_per_s"))
        lost = m("ours-streams", "fanout-max", "lost")
        reo = m("ours-streams", "fanout-max", "reordered")
        check("streams: fan-out msgs/s ≥ 6× Node's streams adapter, 0 loss",
              None if r is None else (r >= 6 and lost == 0),
              f"{fmt(r)}× ({fmt(m('ours-streams', 'fanout-max', 'delivered_per_s'))} vs "
              f"{fmt(m('node-streams', 'fanout-max', 'delivered_per_s'))} msgs/s), lost {fmt(lost)}, reordered {fmt(reo)}"
              if r else "–")
        r = ratio(m("ours-streams", "fanout-50", "p99_ms"), m("node-streams", "fanout-50", "p99_ms"))
        check("streams: p99 at 50 msgs/s ≤ ¼ of Node's streams adapter", None if r is None else r <= 0.25,
              f"{fmt(r)}× ({fmt(m('ours-streams', 'fanout-50', 'p99_ms'))} vs "
              f"{fmt(m('node-streams', 'fanout-50', 'p99_ms'))} ms)" if r else "–")
        r = ratio(m("ours-streams", "fanout-max", "delivered_per_s"), m("ours", "fanout-max", "delivered_per_s"))
        check("streams mode fan-out ≥ 0.7× our classic mode", None if r is None else r >= 0.7,
              f"{fmt(r)}× ({fmt(m('ours-streams', 'fanout-max', 'delivered_per_s'))} vs "
              f"{fmt(m('ours', 'fanout-max', 'delivered_per_s'))} msgs/s)" if r else "–")
        if checks or not a.section:
            md += ["", "## Targets (issue #17, streams mode)", "", "| target | status | measured |", "|---|---|---|"] + checks

    if "ours-recovery" in stacks and "ours-streams" in stacks:  # issue #18: connection state recovery
        checks = []
        for sc, how in (("fanout-max", "max rate"), ("fanout-50", "50 msgs/s")):
            on, off = m("ours-recovery", sc, "server_cpu_us_per_delivery"), m("ours-streams", sc, "server_cpu_us_per_delivery")
            r = ratio(on, off)
            check(f"recovery on: server CPU per delivered message ≤ 1.3× off (fan-out, {how})",
                  None if r is None else r <= 1.3,
                  f"{r:.2f}× ({fmt(on)} vs {fmt(off)} µs), lost {fmt(m('ours-recovery', sc, 'lost'))}, "
                  f"reordered {fmt(m('ours-recovery', sc, 'reordered'))}" if r else "–")
        for sc in ("idle-2k", "idle-10k"):
            on, off = m("ours-recovery", sc, "kib_per_connection"), m("ours-streams", sc, "kib_per_connection")
            d = None if on is None or off is None else on - off
            check(f"recovery on: idle memory per websocket ≤ off + 1 KiB ({sc})", None if d is None else d <= 1,
                  f"{d:+.2f} KiB ({fmt(on)} vs {fmt(off)} KiB)" if d is not None else "–")
        if checks or not a.section:
            md += ["", "## Targets (issue #18, connection state recovery)", "", "| target | status | measured |",
                   "|---|---|---|"] + checks

    if "ours-sharded" in stacks and "ours-sharded-ref" in stacks:  # issue #17: sharded mode, no regression
        checks = []

        def per_round(stack, sc, k):
            return {r["round"]: r[k] for r in rows if r["stack"] == stack and r["scenario"] == sc and k in r}

        for sc, k, what, higher in (("fanout-max", "delivered_per_s", "fan-out, max rate: msgs/s", True),
                                    ("fanout-max", "server_cpu_us_per_delivery", "fan-out, max rate: server CPU µs per delivery", False),
                                    ("fanout-50", "p99_ms", "fan-out, 50 msgs/s: p99 (ms)", False),
                                    ("fanout-50", "server_cpu_us_per_delivery", "fan-out, 50 msgs/s: server CPU µs per delivery", False)):
            new, ref = per_round("ours-sharded", sc, k), per_round("ours-sharded-ref", sc, k)
            if not new or not ref:
                continue
            mn, mr = statistics.median(new.values()), statistics.median(ref.values())
            # no regression: this build's median within the reference's rounds or better
            ok = mn >= min(ref.values()) if higher else mn <= max(ref.values())
            rr = [new[i] / ref[i] for i in sorted(new) if i in ref and ref[i]]
            check(f"sharded: {what} no worse than the reference build's rounds",
                  ok, f"{mn / mr:.2f}× ({fmt(mn)} vs {fmt(mr)}; reference rounds {fmt(min(ref.values()))}–"
                  f"{fmt(max(ref.values()))}, this build's {fmt(min(new.values()))}–{fmt(max(new.values()))}; "
                  f"per round {', '.join(f'{x:.2f}' for x in rr)})")
        for sc in ("fanout-max", "fanout-50"):
            lost, reo = m("ours-sharded", sc, "lost"), m("ours-sharded", sc, "reordered")
            if lost is not None:
                check(f"sharded: {sc} 0 lost, 0 reordered", lost == 0 and reo == 0,
                      f"lost {fmt(lost)}, reordered {fmt(reo)} (worst round)")
        if checks:
            md += ["", "## No regression (issue #17, sharded mode against the reference build)", "",
                   "A figure passes when this build's median lies within the reference build's rounds "
                   "(or beyond them on the better side): the rounds' spread is the noise the comparison "
                   "cannot see through.", "", "| target | status | measured |", "|---|---|---|"] + checks

    if errors:
        md += ["", "## Failed runs", ""]
        md += [f"- {e['stack']} {e['scenario']} round {e['round']}: {e['error']}" for e in errors]

    md += ["", "## Machine", ""] + [f"- {l}" for l in machine()]
    md += ["", "## How to run", "", "```", a.command, "```", "",
           "Scenarios (sio-load subcommands; see `bench/run.sh` for the exact arguments):", "",
           "- `fanout-max`: 1,000 subscribers in one room over both nodes, one publisher on node 1 with ≤100 "
           "unacked publishes, 2,000 messages; every delivery carries sender, sequence and send time.",
           "- `fanout-50`: the same at 50 publishes/s for 10 s (latency).",
           "- `overload`: the publisher does not wait for acks (3,000 messages).",
           "- `emitter`: the stack's own emitter (sio-cluster: `sio-load emit` on sio-emitter; Node: "
           "@socket.io/redis-emitter 5.1) publishes 2,000 messages, ≤100 outstanding, to 1,000 subscribers. "
           "socketioxide-redis has no emitter. In streams mode, sio-cluster's emitter XADDs to the stream "
           "(`sio-load emit --redis-mode streams`); Node's streams adapter has no emitter. In sharded mode "
           "it SPUBLISHes to the room's channel (`sio-load emit --redis-mode sharded`).",
           "- after every scenario: what Redis holds (the streams' `MEMORY USAGE … SAMPLES 0` and `XLEN`, "
           "`INFO memory` used_memory, with the nodes stopped) and Redis's own CPU time (`INFO cpu`) over "
           "the scenario, per delivery.",
           "- `idle-2k`, `idle-10k`: RSS of both nodes before and 3–5 s after that many websocket connections.",
           "- `storm-rr`, `storm-sticky`: 2,000 sessions (32 at a time), each a polling handshake, connect, "
           "websocket upgrade and a `join` over websocket, through nginx (round robin, or `hash $remote_addr` "
           "with clients on 500 source addresses). Only sio-cluster forwards sessions between nodes; the "
           "others fail round robin by design.",
           "- `storm-rr-polling`, `storm-sticky-polling`: 6,000 sessions without the upgrade (handshake, "
           "connect, polls) started at 2,000 per second, sio-cluster only: what forwarding a polling session "
           "costs, compared at equal load (CPU per session falls as the session rate rises, so at max rate "
           "the cheaper sticky set-up would also be measured at a higher, more efficient rate).",
           "- `storm-rr-paced`, `storm-sticky-paced`: 3,000 upgrading sessions started at 1,000 per second, "
           "sio-cluster only: the same comparison with the websocket upgrade forwarded too.",
           "", f"Raw results: `{os.path.relpath(a.results, a.out)}`."]
    if not a.smoke or os.path.isdir(os.path.join(a.out, "bench")):
        chart = a.chart or os.path.join(a.out, "bench", "chart.png")
        if draw(chart, stacks, median):
            md += ["", f"![chart]({os.path.relpath(chart, a.out)})"]
    if a.section:
        md = [f"## {a.section}"] + ["#" + l if l.startswith("#") else l for l in md[1:]]
    with open(a.md or os.path.join(a.out, "BENCHMARKS.md"), "w") as f:
        f.write("\n".join(md) + "\n")


def draw(path, stacks, median):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing (pip install -r bench/requirements.txt): no chart")
        return False
    panels = [
        ("fanout-max", "delivered_per_s", "fan-out msgs/s"),
        ("fanout-50", "p99_ms", "p99 ms at 50/s"),
        ("emitter", "delivered_per_s", "emitter→clients msgs/s"),
        ("idle-10k", "kib_per_connection", "KiB / idle websocket"),
        ("storm-sticky", "sessions_per_s", "sessions/s (sticky)"),
        ("fanout-max", "server_cpu_us_per_delivery", "CPU µs / delivery"),
    ]
    panels = [p for p in panels if any(median(s, p[0], p[1]) is not None for s in stacks)]
    if not panels:
        return False
    fig, axes = plt.subplots(1, len(panels), figsize=(3.0 * len(panels), 3.2), squeeze=False)
    axes = axes[0]
    colors = {"ours": "#2b6cb0", "node": "#68a063", "socketioxide": "#b7791f",
              "ours-streams": "#63b3ed", "node-streams": "#9ae6b4", "ours-recovery": "#805ad5",
              "ours-streams-ref": "#a0aec0", "ours-ref": "#a0aec0",
              "ours-sharded": "#2c7a7b", "ours-sharded-ref": "#a0aec0"}
    for ax, (sc, metric, title) in zip(axes, panels):
        vals = [median(s, sc, metric) or 0 for s in stacks]
        ax.bar(range(len(stacks)), vals, color=[colors.get(s, "gray") for s in stacks])
        ax.set_xticks(range(len(stacks)), stacks, rotation=30, fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


if __name__ == "__main__":
    main()
