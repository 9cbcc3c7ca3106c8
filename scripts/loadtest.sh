#!/usr/bin/env bash
# Load benchmark: builds the release binary and the load generator, starts
# `floe-guard serve --self-signed` and drives /mutate over verified TLS.
# Options go to the load generator: -c CONNECTIONS -d SECONDS -w SECONDS --h2 --containers N.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bin floe-guard --example loadtest
exec target/release/examples/loadtest --binary target/release/floe-guard "$@"
