#!/usr/bin/env bash
# The test command (README "Run the tests"): sets up what a fresh Debian or Ubuntu
# machine lacks (scripts/setup.sh: system packages, Docker and its images; root or sudo
# needed only when something is missing), installs the real client libraries the tests
# drive, checks formatting and lints, then runs every test in the workspace.
#
#   scripts/test.sh            # everything
#   scripts/test.sh -p sio-server   # extra arguments go to `cargo test`
#   SIO_TEST_SETUP=0 scripts/test.sh   # skip scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

if [ "${SIO_TEST_SETUP:-1}" != 0 ]; then
  step "machine setup (scripts/setup.sh)"
  scripts/setup.sh
fi

step "client libraries and tools (socket.io-client from npm; python-socketio, kubernetes-validate from PyPI)"
npm ci --prefix tests/js --no-audit --no-fund --loglevel=error
if [ -f adapter-redis/tests/golden/package-lock.json ]; then
  npm ci --prefix adapter-redis/tests/golden --no-audit --no-fund --loglevel=error
fi
python3 -m pip install --quiet --disable-pip-version-check -r tests/py/requirements.txt

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo doc (broken intra-doc links fail)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked -q

step "cargo test"
cargo test --workspace --locked "$@"
