# sio-cluster node image: `sio-server` (the node) and `sio-emit` (the emitter CLI) on a
# slim Debian, run as a non-root user, with a curl-free HEALTHCHECK. The demo page's
# Socket.IO client bundle ships in the image (SIO_CLIENT_JS): the page works offline.
#
#   docker build -t sio-cluster .            # the default: compile in a Rust stage,
#                                            # the client bundle from npm in a Node stage
#
# Binaries built on the host instead (a Debian 12 / glibc 2.36 host; what CI does, as no
# Rust or Node image can be pulled there), with the bundle from the host's npm:
#
#   cargo build --release -p sio-server -p sio-emitter
#   cp target/release/sio-server target/release/sio-emit docker-bin/
#   npm install --prefix /tmp/sio-client socket.io-client@4.8.3
#   cp /tmp/sio-client/node_modules/socket.io-client/dist/socket.io.min.js docker-bin/
#   docker build --target from-host -t sio-cluster .
#
# Stage order matters: the classic builder (no BuildKit, e.g. docker-compose v1) builds
# every stage up to the target in file order, so the host-binary stage sits before the
# Rust one (`--target from-host` never needs a Rust image), and copies a folder that
# exists in every context (docker-bin/, empty in git), so a default classic build passes
# through it too (its copies name docker-bin/.gitkeep, so an empty docker-bin/ passes).

ARG RUNTIME_IMAGE=debian:bookworm-slim
ARG RUST_IMAGE=rust:1.94-slim-bookworm
ARG NODE_IMAGE=node:22-bookworm-slim
# the demo page's client; the same version as chat::CLIENT_VERSION (a test checks)
ARG SOCKET_IO_CLIENT_VERSION=4.8.3

# ---- runtime base: what every variant of the image shares
FROM ${RUNTIME_IMAGE} AS runtime-base
# CA certificates for rediss:// (already in some base images: then no apt at all);
# a system user with a fixed uid so Kubernetes' runAsNonRoot can check it.
RUN set -eu; \
    if [ ! -s /etc/ssl/certs/ca-certificates.crt ]; then \
        apt-get update; \
        apt-get install -y --no-install-recommends ca-certificates; \
        rm -rf /var/lib/apt/lists/*; \
    fi; \
    groupadd --system --gid 10001 sio; \
    useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin sio
LABEL org.opencontainers.image.title="sio-cluster" \
      org.opencontainers.image.description="Horizontally scaled Socket.IO v4 server (sio-server) and emitter CLI (sio-emit)" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.source="https://github.com/sio-cluster/sio-cluster"
# SIO_CLIENT_JS: the demo page loads the client bundle from the node, not from a CDN
ENV SIO_LISTEN=0.0.0.0:3000 \
    SIO_LOG_FORMAT=json \
    SIO_CLIENT_JS=/usr/share/sio-cluster/socket.io.min.js
EXPOSE 3000
USER 10001:10001
STOPSIGNAL SIGTERM
# GET /healthz on the SIO_LISTEN port; exit 0/1 (server/src/entry.rs)
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
    CMD ["sio-server", "healthcheck"]
CMD ["sio-server"]

# ---- from-host: binaries built outside Docker (CI, or no Rust image reachable)
FROM runtime-base AS from-host
COPY docker-bin/.gitkeep docker-bin/sio-* /usr/local/bin/
COPY docker-bin/.gitkeep docker-bin/*.js /usr/share/sio-cluster/

# ---- client-js: the socket.io client bundle from npm, at build time only
FROM ${NODE_IMAGE} AS client-js
ARG SOCKET_IO_CLIENT_VERSION
WORKDIR /client
RUN npm install --no-save --no-audit --no-fund "socket.io-client@${SOCKET_IO_CLIENT_VERSION}" \
 && cp node_modules/socket.io-client/dist/socket.io.min.js /client/

# ---- build: compile both binaries in the official Rust image
FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p sio-server -p sio-emitter \
 && install -m 0755 target/release/sio-server target/release/sio-emit /usr/local/bin/

# ---- runtime (default target): the image users get
FROM runtime-base AS runtime
COPY --from=build /usr/local/bin/sio-server /usr/local/bin/sio-emit /usr/local/bin/
COPY --from=client-js /client/socket.io.min.js /usr/share/sio-cluster/
