# docker-stats-exporter: a static binary on a minimal, non-root runtime image.
#
#   docker build -t docker-stats-exporter .
#
# The builder and runtime bases can be swapped, e.g. for locally made images on
# a machine without registry access (see scripts/make-base-images.sh):
#
#   docker build --build-arg RUST_IMAGE=dse-local/rust:bookworm \
#                --build-arg RUNTIME_IMAGE=dse-local/static:nonroot -t docker-stats-exporter .
#
# Offline builds: when the build context holds target/docker-vendor (made on the
# host with `cargo vendor --locked target/docker-vendor`), crates are taken
# from there and cargo runs with --offline. Without it, cargo fetches from
# crates.io as usual. Both paths use --locked.
#
# The image runs as uid/gid 65532. To read the Docker socket the container
# needs the socket's group: `--group-add "$(stat -c %g /var/run/docker.sock)"`
# (compose: group_add). See docs/deployment.md.

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM ${RUST_IMAGE} AS builder
ARG TARGET=x86_64-unknown-linux-gnu
# glibc, linked statically: the binary needs nothing from the runtime image.
ENV RUSTFLAGS="-C target-feature=+crt-static" \
    CARGO_TERM_COLOR=never
WORKDIR /build

# 1. Dependencies only (cached until Cargo.toml, Cargo.lock or the vendored
#    crates change). `target*` is the optional target/docker-vendor: a wildcard
#    that matches nothing is not an error when listed with other sources, and a
#    directory's contents land in the destination, so it arrives as
#    /build/docker-vendor.
COPY Cargo.toml Cargo.lock target* ./
RUN set -eu; \
    if [ -d docker-vendor ]; then \
        echo "using vendored crates (offline build)"; \
        mkdir -p .cargo; \
        printf '%s\n' '[source.crates-io]' 'replace-with = "vendored-sources"' \
            '[source.vendored-sources]' 'directory = "docker-vendor"' \
            '[net]' 'offline = true' > .cargo/config.toml; \
    fi; \
    mkdir -p src; \
    echo 'fn main() {}' > src/main.rs; \
    touch src/lib.rs; \
    cargo build --release --locked --target "$TARGET" || { \
        [ ! -d docker-vendor ] || echo "hint: target/docker-vendor may be older than Cargo.lock;" \
            "run: cargo vendor --locked --versioned-dirs target/docker-vendor" >&2; \
        exit 1; }; \
    rm -rf src \
        target/"$TARGET"/release/.fingerprint/docker-stats-exporter-* \
        target/"$TARGET"/release/deps/docker_stats_exporter-* \
        target/"$TARGET"/release/deps/libdocker_stats_exporter-* \
        target/"$TARGET"/release/docker-stats-exporter*

# 2. The exporter itself.
COPY src ./src
RUN set -eu; \
    find src -name "*.rs" -exec touch {} +; \
    cargo build --release --locked --target "$TARGET"; \
    bin=target/"$TARGET"/release/docker-stats-exporter; \
    if readelf -lW "$bin" | grep -q 'program interpreter' || readelf -dW "$bin" | grep -q '(NEEDED)'; then \
        echo "error: $bin is not statically linked" >&2; readelf -dW "$bin" >&2; exit 1; \
    fi; \
    cp "$bin" /docker-stats-exporter; \
    /docker-stats-exporter --version

FROM ${RUNTIME_IMAGE}
LABEL org.opencontainers.image.title="docker-stats-exporter" \
      org.opencontainers.image.description="Prometheus exporter for Docker container stats, collected fresh at every scrape" \
      org.opencontainers.image.licenses="MIT"
COPY --from=builder /docker-stats-exporter /docker-stats-exporter
USER 65532:65532
EXPOSE 8091
# Exec form without a shell: the binary checks GET /healthz on 127.0.0.1.
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
    CMD ["/docker-stats-exporter", "--healthcheck"]
ENTRYPOINT ["/docker-stats-exporter"]
