#!/usr/bin/env bash
# Side-by-side benchmark: this project's cluster ("ours"), Node.js socket.io 4.8 +
# @socket.io/redis-adapter 8.3 ("node"), socketioxide 0.18 + socketioxide-redis 0.4
# ("socketioxide"), and in Redis streams mode: ours with SIO_REDIS_MODE=streams
# ("ours-streams"), Node.js socket.io 4.8 + @socket.io/redis-streams-adapter 0.3.1
# ("node-streams"); each 2 nodes on 127.0.0.1, the same throwaway Redis (redis:7.2
# container), the same load from sio-load (bench/load). Stacks alternate A B C A B C ...
# and every scenario starts fresh nodes. Writes BENCHMARKS.md and bench/chart.png.
#
#   bench/run.sh                 # full run, 3 rounds (takes a while)
#   bench/run.sh --smoke         # tiny loads, 1 round, report to a temp dir (CI)
#   bench/run.sh --rounds 5 --stacks "ours node" --scenarios "fanout-max idle-2k"
#   bench/run.sh --stacks "ours ours-streams node node-streams" --scenarios "fanout-max fanout-50" \
#     --out /tmp/streams   # results and report in another directory (BENCHMARKS.md untouched)
#
# Scenarios: fanout-max fanout-50 overload emitter idle-2k idle-10k storm-rr storm-sticky
#   storm-rr-polling storm-sticky-polling (polling-only sessions at a fixed rate) and
#   storm-rr-paced storm-sticky-paced (upgrading sessions at a fixed rate): sio-cluster only
# Stacks: ours node socketioxide (the default), and floor: bench/floor, the least work a
#   Socket.IO server can do (one process, no Redis, no library; fan-out and idle only), a
#   reference line for what the machine itself allows: --stacks "ours node floor"
#   ours-streams, node-streams: Redis streams mode, opt-in in a full run (--stacks "ours
#   ours-streams node node-streams"); a smoke run adds them by default, with fanout-max,
#   fanout-50 and emitter only (some 15 s more). Every scenario but the storms of forwarded
#   sessions; node-streams has no emitter (Node's
#   @socket.io/redis-emitter speaks classic pub/sub only). After each scenario the Redis
#   memory is recorded: the streams' MEMORY USAGE and length, INFO memory's used_memory,
#   and Redis's own CPU (INFO cpu, over the scenario) per delivery.
#   ours-ref: sio-cluster from BENCH_REF_SERVER=/path/to/sio-server (another commit's
#   release build), as "ours" otherwise: a before/after comparison in one run;
#   ours-streams-ref: the same build in streams mode, as "ours-streams"
#   ours-recovery: ours-streams with connection state recovery on
#   (SIO_RECOVERY_WINDOW_MS=120000): every broadcast delivered when read back from the
#   stream, its offset appended, a session per socket in Redis; compare it with
#   ours-streams (--stacks "ours-streams ours-recovery"). A smoke run adds it with
#   fanout-max, fanout-50, emitter and idle-2k
#   ours-sharded: Redis 7 sharded pub/sub (SIO_REDIS_MODE=sharded, the dynamic subscription
#   mode: SPUBLISH/SSUBSCRIBE per room channel), as "ours" otherwise; ours-sharded-ref: the
#   BENCH_REF_SERVER build in the same mode (--stacks "ours-sharded ours-sharded-ref"). A
#   smoke run adds ours-sharded with fanout-max, fanout-50 and emitter
# Needs: cargo, node/npm, python3, docker (redis:7.2 image), /usr/sbin/nginx, curl.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

smoke=0
rounds=3
stacks=""
out_arg=""
scenarios="fanout-max fanout-50 overload emitter idle-2k idle-10k storm-rr storm-sticky storm-rr-polling storm-sticky-polling storm-rr-paced storm-sticky-paced"
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1 ;;
    --rounds) rounds=$2; shift ;;
    --stacks) stacks=$2; shift ;;
    --scenarios) scenarios=$2; shift ;;
    --out) out_arg=$2; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

[ -z "$stacks" ] && { stacks="ours node socketioxide"; [ $smoke = 1 ] && stacks="$stacks ours-streams node-streams ours-recovery ours-sharded"; }

# Load sizes (full / smoke).
if [ $smoke = 1 ]; then
  rounds=1
  subs=20; msgs=200; slow_msgs=20; over_msgs=300; emit_msgs=200
  idle_small=50; idle_large=100; storm_sessions=40
  # paced storms: sessions started per second, and how many (polling-only; upgrading)
  polling_rate=100; polling_sessions=40; paced_rate=50; paced_sessions=20
  out_dir=$(mktemp -d)
else
  subs=1000; msgs=2000; slow_msgs=500; over_msgs=3000; emit_msgs=2000
  idle_small=2000; idle_large=10000; storm_sessions=2000
  polling_rate=2000; polling_sessions=6000; paced_rate=1000; paced_sessions=3000
  out_dir=$root
fi
[ -n "$out_arg" ] && { mkdir -p "$out_arg"; out_dir=$(cd "$out_arg" && pwd); }
results=$out_dir/bench/results.jsonl
# Figures come from release builds; a smoke run (CI: it only checks that everything runs)
# uses the debug build, whose dependencies the tests have compiled already.
if [ $smoke = 1 ]; then profile=debug; profile_flag=""; else profile=release; profile_flag=--release; fi
mkdir -p "$out_dir/bench"
: > "$results"

# Worker threads of each Rust node (sio-cluster and the socketioxide peer alike): two
# nodes share the machine's cores, as the two single-threaded Node.js nodes do, so each
# gets cores/2 threads (BENCH_RUST_WORKERS overrides; bench/NOTES.md has both figures).
rust_workers=${BENCH_RUST_WORKERS:-$(( $(nproc) / 2 > 0 ? $(nproc) / 2 : 1 ))}
export BENCH_RUST_WORKERS=$rust_workers

# the machine's own load before anything starts (the report quotes it)
BENCH_LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
export BENCH_LOAD_START

# binaries: cargo's target directory (CARGO_TARGET_DIR if set), as cargo build uses it
target_dir=${CARGO_TARGET_DIR:-$root/target}
case "$target_dir" in /*) ;; *) target_dir=$root/$target_dir ;; esac
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then # BENCH_NO_BUILD=1: re-run with what is built
  echo "==> build ($profile)"
  cargo build $profile_flag --locked -q -p sio-server -p sio-load -p sio-floor
  case " $stacks " in *" socketioxide "*)
    CARGO_TARGET_DIR=$target_dir cargo build $profile_flag --locked -q \
      --manifest-path bench/peers/socketioxide/Cargo.toml ;;
  esac
  npm ci --prefix bench/peers/node --no-audit --no-fund --loglevel=error
  python3 -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
fi
load=$target_dir/$profile/sio-load

started_pids=()
tmp=$(mktemp -d)
cid=""
cleanup() {
  for p in "${started_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "$cid" ] && docker rm -f "$cid" >/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM # so that `timeout` or Ctrl-C still removes Redis and the nodes

echo "==> redis"
cid=$(docker run -d -p 127.0.0.1::6379 redis:7.2)
rport=$(docker port "$cid" 6379/tcp | head -n1 | sed 's/.*://')
redis="redis://127.0.0.1:${rport}"
for _ in $(seq 1 50); do
  docker exec "$cid" redis-cli ping >/dev/null 2>&1 && break
  sleep 0.1
done

# N distinct free ports (all bound at once, so two calls cannot return the same one).
free_ports() {
  python3 -c 'import socket,sys
ss=[socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1",0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$1"
}

wait_http() {
  for _ in $(seq 1 600); do # 30 s: a busy CI machine may be slow to start a node
    curl -fsS -o /dev/null "http://127.0.0.1:$1/socket.io/?EIO=4&transport=polling" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "node on port $1 did not come up; its log:" >&2
  tail -n 20 "$2" >&2 || true
  return 1
}

# The Redis mode of one of our stacks: streams for ours-streams, ours-streams-ref and
# ours-recovery (recovery needs streams), sharded (= sharded-dynamic, Node's default
# subscription mode) for ours-sharded and ours-sharded-ref, classic for the others.
redis_mode() {
  case "$1" in *streams*|ours-recovery) echo streams ;; *sharded*) echo sharded ;; *) echo classic ;; esac
}

# start_stack STACK: two nodes; sets PORTS, PIDS.
start_stack() {
  docker exec "$cid" redis-cli flushall >/dev/null
  PORTS=(); PIDS=()
  local ports; read -r -a ports <<<"$(free_ports 3)"
  NGINX_PORT=${ports[2]}
  for i in 1 2; do
    local port=${ports[$((i - 1))]}
    case "$1" in
      floor) # one process listening for both "nodes"
        if [ "$i" = 1 ]; then
          TOKIO_WORKER_THREADS=$((rust_workers * 2)) \
            "$target_dir/$profile/sio-floor" "${ports[0]}" "${ports[1]}" >"$tmp/$1-$i.log" 2>&1 &
        fi
        ;;
      ours|ours-streams|ours-ref|ours-streams-ref|ours-recovery|ours-sharded|ours-sharded-ref) # streams: Node's stream defaults (socket.io, 1 stream, MAXLEN ~ 10000)
        local mode; mode=$(redis_mode "$1")
        local recovery=(); [ "$1" = ours-recovery ] && recovery=(SIO_RECOVERY_WINDOW_MS=120000) # 2 min
        local server=$target_dir/$profile/sio-server
        [ "${1%-ref}" != "$1" ] && server=${BENCH_REF_SERVER:?$1 needs BENCH_REF_SERVER=/path/to/sio-server}
        env "${recovery[@]}" SIO_LISTEN=127.0.0.1:$port SIO_REDIS_URL=$redis SIO_REDIS_MODE=$mode SIO_NODE_ID=bench-$i SIO_CLIENT_PUBLISH='*' \
          SIO_CHAT=false SIO_WORKER_THREADS=$rust_workers RUST_LOG=warn "$server" >"$tmp/$1-$i.log" 2>&1 &
        ;;
      node|node-streams)
        local adapter=redis; [ "$1" = node-streams ] && adapter=streams
        node bench/peers/node/server.mjs "{\"redis\":\"$redis\",\"port\":$port,\"adapter\":\"$adapter\"}" >"$tmp/$1-$i.log" 2>&1 &
        ;;
      socketioxide)
        TOKIO_WORKER_THREADS=$rust_workers \
          "$target_dir/$profile/bench-peer-socketioxide" "{\"redis\":\"$redis\",\"port\":$port}" >"$tmp/$1-$i.log" 2>&1 &
        ;;
    esac
    local pid=$!
    PORTS+=("$port")
    [ "$1" = floor ] && [ "$i" = 2 ] && continue # its one process is counted once
    started_pids+=("$pid"); PIDS+=("$pid")
  done
  wait_http "${PORTS[0]}" "$tmp/$1-1.log"
  wait_http "${PORTS[1]}" "$tmp/$1-2.log"
  sleep 0.5
}

stop_stack() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}

# nginx in front of the two nodes: round robin, or sticky by client address.
start_nginx() {
  local port=$NGINX_PORT
  local d=$tmp/nginx-$port; mkdir -p "$d/tmp"
  local hash=""; [ "$1" = sticky ] && hash="hash \$remote_addr consistent;"
  cat >"$d/nginx.conf" <<EOF
worker_processes 1;
error_log $d/error.log warn;
pid $d/nginx.pid;
events { worker_connections 8192; }
http {
  access_log ${BENCH_DEBUG:+$tmp/access.log}${BENCH_DEBUG:-off};
  client_body_temp_path $d/tmp/body; proxy_temp_path $d/tmp/proxy;
  fastcgi_temp_path $d/tmp/fastcgi; uwsgi_temp_path $d/tmp/uwsgi; scgi_temp_path $d/tmp/scgi;
  map \$http_upgrade \$connection_upgrade { default upgrade; '' ''; }
  upstream sio { $hash server 127.0.0.1:${PORTS[0]}; server 127.0.0.1:${PORTS[1]}; keepalive 64; }
  server {
    listen 127.0.0.1:$port;
    location / {
      proxy_pass http://sio; proxy_http_version 1.1;
      proxy_set_header Upgrade \$http_upgrade; proxy_set_header Connection \$connection_upgrade;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_read_timeout 60s; proxy_buffering off; proxy_next_upstream off;
    }
  }
}
EOF
  [ -n "${BENCH_DEBUG:-}" ] && grep upstream "$d/nginx.conf" >&2
  /usr/sbin/nginx -p "$d" -c "$d/nginx.conf" -g "daemon off;" &
  NGINX_PID=$!
  started_pids+=("$NGINX_PID")
  # a TCP probe: an HTTP probe would hang on a Node node and make nginx mark it failed
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
}

rcli() { docker exec "$cid" redis-cli "$@"; }

# Redis's own CPU time so far (µs, user + sys of the server process).
redis_cpu_us() {
  rcli info cpu | tr -d '\r' | awk -F: '/^used_cpu_(user|sys):/ {s += $2} END {printf "%d\n", s * 1e6}'
}

# redis_figures JSON CPU0: JSON plus what Redis holds after the scenario (the nodes are
# stopped, nothing trims or adds): every stream's MEMORY USAGE (SAMPLES 0: every entry)
# and length, used_memory, and Redis's CPU since CPU0 per delivery.
redis_figures() {
  # Redis's CPU and memory first: what follows runs commands, and takes time (keys with
  # an expiry, like recovery's sessions, must still be there)
  local cpu1; cpu1=$(redis_cpu_us)
  local used; used=$(rcli info memory | tr -d '\r' | awk -F: '/^used_memory:/ {print $2}')
  local streams=() k bytes=0 len=0 b cursor=0 page
  # the streams only, by SCAN's TYPE filter (redis-cli 7.0's --scan has no --type): one
  # command per thousand keys, not one per key (recovery leaves a session key per socket)
  while :; do
    mapfile -t page < <(rcli scan "$cursor" count 1000 type stream)
    cursor=${page[0]:-0}
    for k in "${page[@]:1}"; do [ -n "$k" ] && streams+=("$k"); done
    [ "$cursor" = 0 ] && break
  done
  for k in "${streams[@]}"; do
    b=$(rcli memory usage "$k" samples 0); bytes=$((bytes + ${b:-0}))
    len=$((len + $(rcli xlen "$k")))
  done
  python3 -c 'import json,sys
r=json.loads(sys.argv[1]); streams, nbytes, entries, used, cpu = sys.argv[2], *map(int, sys.argv[3:7])
r.update(redis_streams=streams.split(), redis_stream_bytes=nbytes, redis_stream_entries=entries,
         redis_used_memory_bytes=used, redis_cpu_ms=round(cpu / 1000))
if r.get("received"): r["redis_cpu_us_per_delivery"] = round(cpu / r["received"], 3)
print(json.dumps(r))' "$1" "${streams[*]}" "$bytes" "$len" "$used" "$(( cpu1 - $2 ))"
}

record() { # record STACK SCENARIO ROUND JSON
  python3 -c 'import json,sys; r=json.loads(sys.argv[4]); r.update(stack=sys.argv[1], scenario=sys.argv[2], round=int(sys.argv[3])); print(json.dumps(r))' \
    "$1" "$2" "$3" "$4" >>"$results"
  echo "   $1 $2: $4"
}

# Runs a load command; in a full run a failure is recorded, not fatal (smoke: fatal).
fail_soft() {
  if [ $smoke = 1 ]; then "$@"; else "$@" || echo '{"error":"load command failed"}'; fi
}

run_scenario() { # STACK SCENARIO ROUND
  local stack=$1 sc=$2 round=$3
  if [ "$sc" = emitter ] && { [ "$stack" = socketioxide ] || [ "$stack" = node-streams ]; }; then
    return 0 # socketioxide-redis has no emitter (its wire format is its own), nor has
             # @socket.io/redis-streams-adapter (@socket.io/redis-emitter is classic only)
  fi
  if [ "$stack" = floor ] && [ "${sc#fanout}" = "$sc" ] && [ "${sc#idle}" = "$sc" ]; then
    return 0 # the floor speaks websocket, join and publish only
  fi
  if { [ "${sc%-polling}" != "$sc" ] || [ "${sc%-paced}" != "$sc" ]; } && [ "$stack" != ours ]; then
    return 0 # forwarded vs local sessions at equal load: only sio-cluster forwards
  fi
  if [ $smoke = 1 ] && { [ "${stack%-streams}" != "$stack" ] || [ "$stack" = ours-sharded ]; }; then
    case "$sc" in fanout-max|fanout-50|emitter) ;; *) return 0 ;; esac # the smoke run's time
  fi
  if [ $smoke = 1 ] && [ "$stack" = ours-recovery ]; then # its targets' scenarios, and the emitter
    case "$sc" in fanout-max|fanout-50|emitter|idle-2k) ;; *) return 0 ;; esac
  fi
  start_stack "$stack"
  local urls=(--url "http://127.0.0.1:${PORTS[0]}" --url "http://127.0.0.1:${PORTS[1]}")
  local pids=(); for p in "${PIDS[@]}"; do pids+=(--pid "$p"); done
  local out=""
  local redis_cpu0; redis_cpu0=$(redis_cpu_us)
  case "$sc" in
    fanout-max) out=$(fail_soft "$load" fanout "${urls[@]}" "${pids[@]}" --subscribers $subs --messages $msgs --in-flight 100) ;;
    fanout-50) out=$(fail_soft "$load" fanout "${urls[@]}" "${pids[@]}" --subscribers $subs --messages $slow_msgs --rate 50) ;;
    overload) out=$(fail_soft "$load" fanout "${urls[@]}" "${pids[@]}" --subscribers $subs --messages $over_msgs --in-flight 0 --drain 10s) ;;
    emitter)
      local sink=$tmp/sink.out; : >"$sink"
      "$load" sink "${urls[@]}" "${pids[@]}" --subscribers $subs --messages $emit_msgs --drain 10s >"$sink" &
      local sink_pid=$!
      for _ in $(seq 1 600); do grep -q ready "$sink" && break; sleep 0.1; done
      local em
      if [ "${stack#ours}" != "$stack" ]; then # ours, ours-streams, ours-ref, ours-recovery, ...
        local mode; mode=$(redis_mode "$stack")
        em=$("$load" emit --redis "$redis" --redis-mode $mode --messages $emit_msgs --in-flight 100)
      else
        em=$(node bench/peers/node/emit.mjs "{\"redis\":\"$redis\",\"messages\":$emit_msgs,\"inFlight\":100}")
      fi
      wait "$sink_pid"
      out=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); e=json.loads(sys.argv[2]); r["emit_msgs_per_s"]=e["msgs_per_s"]; print(json.dumps(r))' \
        "$(tail -n1 "$sink")" "$em")
      ;;
    idle-2k) out=$(fail_soft "$load" idle "${urls[@]}" "${pids[@]}" --connections $idle_small --settle 3s) ;;
    idle-10k) out=$(fail_soft "$load" idle "${urls[@]}" "${pids[@]}" --connections $idle_large --settle 5s --concurrency 128) ;;
    storm-rr|storm-sticky|storm-rr-polling|storm-sticky-polling|storm-rr-paced|storm-sticky-paced)
      local mode=${sc#storm-}
      # max rate (32 sessions at a time), or a fixed rate that both balancer modes sustain:
      # CPU per session falls as the rate rises, so cost is compared at equal load
      local how=(--sessions $storm_sessions --concurrency 32)
      case "$mode" in
        *-polling) how=(--sessions $polling_sessions --rate $polling_rate --concurrency 128 --no-upgrade) ;;
        *-paced) how=(--sessions $paced_sessions --rate $paced_rate --concurrency 128) ;;
      esac
      mode=${mode%-polling}; mode=${mode%-paced}
      start_nginx "$mode"
      out=$(fail_soft "$load" storm --url "http://127.0.0.1:$NGINX_PORT" "${pids[@]}" "${how[@]}")
      kill "$NGINX_PID" 2>/dev/null || true; wait "$NGINX_PID" 2>/dev/null || true
      ;;
    *) echo "unknown scenario $sc" >&2; exit 2 ;;
  esac
  stop_stack
  if [ -z "$out" ] || [ "${out:0:1}" != "{" ]; then
    [ $smoke = 1 ] && { echo "$stack $sc failed" >&2; exit 1; }
    out='{"error":"the scenario failed"}'
  else
    out=$(redis_figures "$out" "$redis_cpu0")
  fi
  record "$stack" "$sc" "$round" "$out"
}

echo "==> machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; stacks: $stacks; rounds: $rounds"
for round in $(seq 1 "$rounds"); do
  for sc in $scenarios; do
    for stack in $stacks; do
      echo "==> round $round: $sc on $stack"
      run_scenario "$stack" "$sc" "$round"
    done
  done
done

command_line="bench/run.sh"
[ $smoke = 1 ] && command_line="$command_line --smoke"
python3 bench/report.py --results "$results" --out "$out_dir" --command "$command_line --rounds $rounds" \
  --stacks "$stacks" $([ $smoke = 1 ] && echo --smoke)
echo "==> wrote $out_dir/BENCHMARKS.md"
