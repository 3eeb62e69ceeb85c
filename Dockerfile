# syntax=docker/dockerfile:1
# The permetrix image. cargo-chef derives the dependency layer from the manifests and the
# lockfile (no hand-written stubs), so a new workspace member or target needs no edit here.
# deploy/check-image.sh performs these steps outside a container in CI; its header says
# which instructions it understands.

# The workspace's rust-version (Cargo.toml); deploy/check-image.sh fails when they differ.
ARG RUST_VERSION=1.89
ARG CARGO_CHEF_VERSION=0.1.78
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS chef
ARG CARGO_CHEF_VERSION
RUN cargo install cargo-chef --locked --version ${CARGO_CHEF_VERSION}
WORKDIR /src

# The recipe: every member's manifest and targets, and Cargo.lock, read from the whole tree.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
# Dependencies only: this layer is rebuilt only when recipe.json changes. Same selection
# (--bin) and profile as the build below, so that build finds them compiled.
RUN cargo chef cook --release --locked --recipe-path recipe.json --bin permetrix
COPY . .
RUN cargo build --release --locked --bin permetrix

# Runtime: tini as PID 1 forwards SIGTERM, so that permetrix drains and flushes before it
# exits. The binary carries its TLS roots (webpki-roots): no ca-certificates needed.
FROM debian:${DEBIAN_RELEASE}-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --home-dir /data \
      --shell /usr/sbin/nologin permetrix \
 && mkdir -p /data && chown permetrix:permetrix /data
COPY --from=builder /src/target/release/permetrix /usr/local/bin/permetrix
USER permetrix
# The port is fly.toml's internal_port (deploy/check-image.sh compares them).
ENV PERMETRIX_BIND=0.0.0.0:8000 \
    PERMETRIX_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8000
# No HEALTHCHECK: Fly ignores it and checks GET /health itself (fly.toml).
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/permetrix"]
CMD ["serve"]
