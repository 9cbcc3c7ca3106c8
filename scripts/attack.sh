#!/usr/bin/env bash
# Hostile-load benchmark (docs/hostile-input.md): builds the release server
# and the attack client, then runs examples/attack on loopback. Options go to
# the attack client (`--help`: --slow-bodies, --idle-tls, --h2-connections,
# --duration, --rate, --memory-limit, -- SERVE-ARGS...). Needs about 3,200
# file descriptors per process at the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" -lt 8192 ]; then
  echo "attack: ulimit -n is $(ulimit -n); the defaults need about 3,200 descriptors per process" >&2
fi
cargo build --release --locked --bin floe-guard
# The attack client needs speed, not fat LTO: the profiling profile.
cargo build --profile profiling --locked --example attack
exec target/profiling/examples/attack --binary target/release/floe-guard "$@"
