# syntax=docker/dockerfile:1
# floe-guard image: a multi-stage build; the final image is distroless,
# non-root (65532), and works with a read-only root filesystem (floe-guard
# writes nothing to disk: certificates and config are mounted read-only).
#
#   docker build -t floe-guard:dev .
#
# Expected size: about 35 MB uncompressed (distroless cc base ~23 MB + the
# stripped, thin-LTO release binary ~10 MB). Not measured: containers cannot be
# built on the machines this was written on.

# Build stage. Pinned to the project's toolchain (Rust 1.95) on Debian 12, so
# the glibc the binary links against is the one of the runtime stage.
FROM docker.io/library/rust:1.95-slim-bookworm AS build
WORKDIR /src
# Reproducibility: the exact dependency versions of Cargo.lock (--locked), no
# absolute build paths in the binary, and a fixed timestamp for anything that
# embeds one.
ENV CARGO_TERM_COLOR=never \
    SOURCE_DATE_EPOCH=0 \
    RUSTFLAGS="--remap-path-prefix=/src=. --remap-path-prefix=/usr/local/cargo=cargo"
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    cargo build --release --locked --bin floe-guard \
 && install -D -m 0755 target/release/floe-guard /out/floe-guard

# Runtime stage: glibc + libgcc only, no shell, no package manager; the
# `nonroot` variant runs as 65532:65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/floe-guard /usr/local/bin/floe-guard
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["/usr/local/bin/floe-guard"]
CMD ["--help"]
