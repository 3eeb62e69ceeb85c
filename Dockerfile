# syntax=docker/dockerfile:1
# Build stage: compile the release binary.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so that a source change does not refetch them.
COPY Cargo.toml Cargo.lock ./
COPY actors/Cargo.toml actors/Cargo.toml
COPY storage/Cargo.toml storage/Cargo.toml
COPY client/Cargo.toml client/Cargo.toml
RUN mkdir -p src actors/src storage/src client/src benches tests/api \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs actors/src/lib.rs storage/src/lib.rs client/src/lib.rs \
 && cargo fetch --locked
COPY . .
RUN cargo build --release --locked --bin permetrix

# Runtime stage: the binary, CA certificates (for `permetrix run` against https), a volume.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /data permetrix \
 && mkdir -p /data && chown permetrix /data
COPY --from=build /src/target/release/permetrix /usr/local/bin/permetrix
USER permetrix
ENV PERMETRIX_BIND=0.0.0.0:8000 \
    PERMETRIX_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8000
# tini forwards SIGTERM so that permetrix drains and flushes before exiting.
ENTRYPOINT ["/usr/bin/tini", "--", "permetrix"]
CMD ["serve"]
