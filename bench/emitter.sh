#!/usr/bin/env bash
# Emitter throughput on a throwaway Redis container (redis:7.2, loopback only).
#   bench/emitter.sh            # 20,000 messages, 200 clients on 2 nodes
#   bench/emitter.sh --smoke    # a few seconds (CI)
# Extra arguments go to `emitter-rate` (see bench/src/bin/emitter_rate.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
# a smoke run (CI) uses the debug build, whose dependencies the tests have compiled already
profile=release; profile_flag=--release
case " $* " in *" --smoke "*) profile=debug; profile_flag="" ;; esac
cargo build $profile_flag --locked -q -p sio-bench
cid=$(docker run -d -p 127.0.0.1::6379 redis:7.2)
trap 'docker rm -f "$cid" >/dev/null' EXIT
port=$(docker port "$cid" 6379/tcp | head -n1 | sed 's/.*://')
for _ in $(seq 1 50); do
  docker exec "$cid" redis-cli ping >/dev/null 2>&1 && break
  sleep 0.1
done
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB; redis: container redis:7.2"
target/$profile/emitter-rate --redis "redis://127.0.0.1:${port}" "$@"
