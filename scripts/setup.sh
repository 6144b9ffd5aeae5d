#!/usr/bin/env bash
# Sets up what the tests need on a fresh Debian or Ubuntu machine, and nothing when it is
# all there (a few checks, no network). Called by scripts/test.sh before the tests; run
# it alone to prepare a machine. Installing needs root, or sudo.
#
#   system packages (apt-get): chromium (the chat page is tested in a real browser,
#     driven by playwright-core: no browser download), nginx-light (in front of test
#     clusters), g++ (libFuzzer, for fuzz/run.sh), make (jemalloc is built from
#     source), curl (bench/run.sh);
#   Docker and its images: redis:7.2 (testcontainers), nginx:1.27 and debian:bookworm-slim
#     (the deploy test). Where ../shared/ci/standin-images.sh exists (this project's
#     machines, where no image registry is reachable) it installs Docker and builds
#     stand-ins of those images from Debian packages; elsewhere Docker and
#     docker-compose come from apt and the images are pulled when first used.
#
# The npm and pip client libraries are installed by scripts/test.sh itself.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '%s\n' "$*" >&2; }

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then
    as_root=(sudo)
  else
    as_root=(false)
  fi
fi
root() {
  if [ "${as_root[0]:-}" = false ]; then
    say "setup: '$*' needs root: run scripts/setup.sh as root or install sudo"
    return 1
  fi
  "${as_root[@]}" "$@"
}

for tool in cargo node npm python3; do
  command -v "$tool" >/dev/null || {
    say "setup: $tool is missing: the tests need Rust 1.94+, Node.js 18+ and Python 3.9+"
    exit 1
  }
done

need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v c++ >/dev/null || need+=(g++)
command -v make >/dev/null || need+=(make)
command -v curl >/dev/null || need+=(curl)
shared_images=../shared/ci/standin-images.sh
if [ ! -f "$shared_images" ]; then
  command -v docker >/dev/null || need+=(docker.io)
  command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || need+=(docker-compose)
fi
if [ ${#need[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    say "setup: missing ${need[*]} and no apt-get here: install them with your package manager"
    exit 1
  fi
  say "==> apt-get install ${need[*]}"
  root env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
  # keep the distribution's auto-started nginx off port 80; the tests start their own
  if [[ " ${need[*]} " == *" nginx-light "* ]]; then
    root invoke-rc.d nginx stop >/dev/null 2>&1 || true
  fi
fi

images=(redis:7.2 nginx:1.27 debian:bookworm-slim)
have_images() {
  { command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1; } &&
    docker image inspect "${images[@]}" >/dev/null 2>&1
}
if [ -f "$shared_images" ] && ! have_images; then
  # idempotent: existing tags are skipped, a running engine is kept
  say "==> docker + stand-in images ($shared_images)"
  root env REDIS_TAGS="redis:7.2" NGINX_TAGS="nginx:1.27" BUSYBOX_TAGS="" \
    DEBIAN_TAGS="debian:bookworm-slim" bash "$shared_images"
elif ! docker info >/dev/null 2>&1; then
  root service docker start >/dev/null 2>&1 || root systemctl start docker >/dev/null 2>&1 || true
fi
if ! docker info >/dev/null 2>&1; then
  say "setup: Docker is not running (or this user may not use it): the cluster tests start Redis in it."
  if [ ! -f "$shared_images" ]; then
    say "  No $shared_images here: Docker must be able to pull ${images[*]},"
    say "  or have them already (docker image ls)."
  fi
  exit 1
fi
# `kubectl kustomize` renders k8s/ for the manifest test; without it the test uses
# tests/py/kustomize_lite.py (checked against kubectl wherever both exist)
command -v kubectl >/dev/null || say "note: no kubectl: k8s/ is rendered by tests/py/kustomize_lite.py"
exit 0
