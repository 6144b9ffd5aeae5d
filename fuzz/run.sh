#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (cargo-fuzz + libFuzzer, on stable Rust).
#
#   fuzz/run.sh              # 300 s per target, optimized build (local runs)
#   fuzz/run.sh --smoke      # 20 s per target, unoptimized build (CI: builds ~3x faster)
#   FUZZ_SECONDS=60 fuzz/run.sh classic_broadcast engine_query
#
# cargo-fuzz passes nightly-only flags (-Zsanitizer=address, sanitizer-coverage); on a
# stable toolchain RUSTC_BOOTSTRAP=1 lets rustc accept them (the AddressSanitizer runtime
# ships with stable's rust-std). Seeds come from the golden fixtures (fuzz/seeds.py); the
# corpus grows in fuzz/corpus/ (ignored by git). A crash stops the run, leaves its input
# in fuzz/artifacts/<target>/ and exits non-zero.
set -euo pipefail
cd "$(dirname "$0")"

seconds=${FUZZ_SECONDS:-300}
profile=()
targets=()
for arg in "$@"; do
  case "$arg" in
    --smoke) seconds=${FUZZ_SECONDS:-20}; profile=(--dev) ;;
    -*) echo "unknown option $arg" >&2; exit 2 ;;
    *) targets+=("$arg") ;;
  esac
done
if ! command -v cargo-fuzz >/dev/null; then
  echo "==> cargo install cargo-fuzz --locked"
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)

python3 seeds.py
echo "==> cargo fuzz build ${profile[*]:-(optimized)}: debug assertions, AddressSanitizer"
cargo fuzz build "${profile[@]}"

for target in "${targets[@]}"; do
  echo "==> fuzz $target for ${seconds}s"
  mkdir -p "artifacts/$target"
  log="artifacts/$target/last-run.log"
  # -rss_limit_mb: a decoder that allocates a declared length it never receives fails.
  if ! cargo fuzz run "${profile[@]}" "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz target $target failed; inputs in fuzz/artifacts/$target/, log $log" >&2
    exit 1
  fi
  grep -E '^(Done |stat::number_of_executed_units|stat::peak_rss_mb|stat::new_units_added)' "$log" || true
done
echo "==> fuzzing done: ${#targets[@]} targets, ${seconds}s each"
