# docker-stats-exporter: a static binary on an empty (`scratch`) image that
# holds only the binary and the user entries for uid 65532.
#
#   docker build -t docker-stats-exporter .
#
# Builds for the platform the image is for: linux/amd64 or linux/arm64 (Apple
# Silicon), from BuildKit's TARGETPLATFORM, else the builder's own host target
# (scripts/rust-target.sh). The builder base can be swapped, e.g. for a locally
# made image on a machine without registry access (scripts/make-base-images.sh):
#
#   docker build --build-arg RUST_IMAGE=dse-local/rust:bookworm -t docker-stats-exporter .
#
# Offline builds: when the build context holds target/docker-vendor (made on the
# host with `cargo vendor --locked target/docker-vendor`), crates are taken
# from there and cargo runs with --offline. Without it, cargo fetches from
# crates.io as usual. Both paths use --locked.
#
# The image runs as uid/gid 65532. To read the Docker socket the container
# needs the socket's group: `--group-add "$(stat -c %g /var/run/docker.sock)"`
# (compose: group_add). See docs/deployment.md; sizes: docs/image-size.md.

ARG RUST_IMAGE=rust:1-bookworm

FROM ${RUST_IMAGE} AS builder
ARG TARGETPLATFORM
ARG TARGETARCH
# glibc, linked statically: the binary needs nothing from the runtime image.
# Packed relative relocations (DT_RELR) keep it position-independent at a
# fraction of the relocation table's size.
ENV RUSTFLAGS="-C target-feature=+crt-static -C link-arg=-Wl,-z,pack-relative-relocs" \
    CARGO_TERM_COLOR=never
WORKDIR /build

COPY scripts/rust-target.sh /usr/local/bin/rust-target
RUN set -eu; \
    target=$(sh /usr/local/bin/rust-target); \
    [ -d "$(rustc --print sysroot)/lib/rustlib/$target/lib" ] || { \
        echo "error: this Rust toolchain has no standard library for $target" >&2; exit 1; }; \
    echo "building for $target"; \
    echo "$target" > /rust-target

# 1. Dependencies only (cached until Cargo.toml, Cargo.lock or the vendored
#    crates change). `target*` is the optional target/docker-vendor: a wildcard
#    that matches nothing is not an error when listed with other sources, and a
#    directory's contents land in the destination, so it arrives as
#    /build/docker-vendor.
COPY Cargo.toml Cargo.lock target* ./
# The tests' shared crate, a workspace member: cargo reads its manifest to
# resolve the lock file, and builds none of it here.
COPY tests/common/Cargo.toml tests/common/
RUN set -eu; \
    target=$(cat /rust-target); \
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
    cargo build --release --locked --target "$target" || { \
        [ ! -d docker-vendor ] || echo "hint: target/docker-vendor may be older than Cargo.lock;" \
            "run: cargo vendor --locked --versioned-dirs target/docker-vendor" >&2; \
        exit 1; }; \
    rm -rf src \
        target/"$target"/release/.fingerprint/docker-stats-exporter-* \
        target/"$target"/release/deps/docker_stats_exporter-* \
        target/"$target"/release/deps/libdocker_stats_exporter-* \
        target/"$target"/release/docker-stats-exporter*

# 2. The exporter itself, and the runtime image's few files under /rootfs.
#    DSE_COMMIT names the commit `--version` prints (the context has no .git;
#    scripts/release.sh passes it).
ARG DSE_COMMIT=
COPY build.rs ./
COPY src ./src
RUN set -eu; \
    target=$(cat /rust-target); \
    find src -name "*.rs" -exec touch {} +; \
    cargo build --release --locked --target "$target"; \
    bin=target/"$target"/release/docker-stats-exporter; \
    if readelf -lW "$bin" | grep -q 'program interpreter' || readelf -dW "$bin" | grep -q '(NEEDED)'; then \
        echo "error: $bin is not statically linked" >&2; readelf -dW "$bin" >&2; exit 1; \
    fi; \
    mkdir -p /rootfs/etc /rootfs/tmp; \
    chmod 1777 /rootfs/tmp; \
    cp "$bin" /rootfs/docker-stats-exporter; \
    printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
        'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
        'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' > /rootfs/etc/passwd; \
    printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'nonroot:x:65532:' > /rootfs/etc/group; \
    printf 'hosts: files dns\n' > /rootfs/etc/nsswitch.conf; \
    mkdir -p /home-nonroot/nonroot; \
    chmod 700 /home-nonroot/nonroot; \
    /rootfs/docker-stats-exporter --version

# No CA bundle: the exporter trusts only the ca.pem given for a remote engine
# (DOCKER_CERT_PATH) and the client CA of --web.config.file.
FROM scratch
LABEL org.opencontainers.image.title="docker-stats-exporter" \
      org.opencontainers.image.description="Prometheus exporter for Docker container stats, collected fresh at every scrape" \
      org.opencontainers.image.licenses="MIT"
COPY --from=builder /rootfs/ /
COPY --from=builder --chown=65532:65532 /home-nonroot/ /home/
USER 65532:65532
WORKDIR /home/nonroot
EXPOSE 8091
# Exec form without a shell: the binary checks GET /healthz on 127.0.0.1.
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --retries=3 \
    CMD ["/docker-stats-exporter", "--healthcheck"]
ENTRYPOINT ["/docker-stats-exporter"]
