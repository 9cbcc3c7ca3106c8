#!/usr/bin/env bash
# Soak test: a bounded open-loop load at a fixed rate against the release
# binary, with production logging (info, JSON, one line per review, to a file).
# Passes when there are zero errors, p99 is within target and RSS is flat
# (growth over the measured window, after warm-up).
#
#   scripts/soak.sh [-d SECONDS] [-r REQ_PER_S] [-p small|typical|large] [--p99-ms MS] [--rss-growth-mib MIB]
#
# Defaults: 60 s at 5,000 reviews/s of the `typical` Job pod review (10.8 KB,
# 32 HTTP/1.1 keep-alive connections), p99 <= 2 ms (the latency target), RSS growth <= 8 MiB
# over the measured window. The load generator is
# the shared admission benchmark (../shared/bench, or $FLOE_GUARD_BENCH_DIR),
# which verifies every answer (HTTP 200, AdmissionReview v1, same uid, base64
# JSONPatch). Results go to target/soak/<timestamp>/.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=60 rate=5000 payload=typical p99_ms=2 rss_growth_mib=8 warmup=5
while [ $# -gt 0 ]; do
  case "$1" in
    -d) duration=$2; shift 2 ;;
    -r) rate=$2; shift 2 ;;
    -p) payload=$2; shift 2 ;;
    --p99-ms) p99_ms=$2; shift 2 ;;
    --rss-growth-mib) rss_growth_mib=$2; shift 2 ;;
    *) echo "usage: $0 [-d SECONDS] [-r REQ_PER_S] [-p PAYLOAD] [--p99-ms MS] [--rss-growth-mib MIB]" >&2; exit 2 ;;
  esac
done

bench=${FLOE_GUARD_BENCH_DIR:-../shared/bench}
if [ ! -x "$bench/run.sh" ]; then
  echo "soak: no load generator at $bench (set FLOE_GUARD_BENCH_DIR to the admission benchmark)" >&2
  exit 1
fi

out="target/soak/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
cargo build --release --locked --bin floe-guard

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
FLOE_GUARD_LOG=info target/release/floe-guard --log-format json serve --self-signed \
  --addr "127.0.0.1:$port" --ca-out "$out/ca.crt" 2>"$out/server.log" &
pid=$!
sampler=""
cleanup() {
  if [ -n "$sampler" ]; then kill "$sampler" 2>/dev/null || true; fi
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
trap cleanup EXIT

for _ in $(seq 100); do
  if [ -s "$out/ca.crt" ] && curl -fsS --cacert "$out/ca.crt" "https://localhost:$port/readyz" >/dev/null 2>&1; then
    break
  fi
  sleep 0.1
done
curl -fsS --cacert "$out/ca.crt" "https://localhost:$port/readyz" >/dev/null

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$pid/status"; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$pid/status"; }
rss_idle=$(rss_kb)
# RSS every second (seconds since start, kB), for the report.
(
  t=0
  while kill -0 "$pid" 2>/dev/null; do
    printf '%s\t%s\n' "$t" "$(rss_kb)"
    sleep 1
    t=$((t + 1))
  done
) >"$out/rss.tsv" &
sampler=$!
load_start=$(date +%s)

set +e
"$bench/run.sh" "https://localhost:$port/mutate" "$out/ca.crt" --pid "$pid" \
  -p "$payload" -c 32 -d "$duration" -w "$warmup" --rate "$rate" --check-patch \
  --out "$out/bench" | tee "$out/bench.txt"
bench_rc=${PIPESTATUS[0]}
set -e

rss_end=$(rss_kb)
hwm=$(hwm_kb)
kill "$sampler" 2>/dev/null || true
sampler=""
# RSS at the start of the measured window: the measurement is the last
# $duration seconds before the load generator returned.
rss_warm=$(awk -v d="$duration" '{t[NR]=$1; r[NR]=$2} END {s=t[NR]-d; for (i=1;i<=NR;i++) if (t[i]>=s) {print r[i]; exit}}' "$out/rss.tsv")
elapsed=$(( $(date +%s) - load_start ))
reviews=$(grep -c '"message":"review"' "$out/server.log" || true)
log_errors=$(grep -c '"level":"ERROR"' "$out/server.log" || true)

python3 - "$out/bench/results.json" "$rate" "$p99_ms" "$rss_idle" "$rss_warm" "$rss_end" "$hwm" \
  "$rss_growth_mib" "$reviews" "$log_errors" "$elapsed" "$bench_rc" "$out" <<'EOF'
import json, os, sys
(path, rate, p99_target, idle, warm, end, hwm, growth_max, reviews, log_errors, elapsed, rc, out) = sys.argv[1:]
doc = json.load(open(path))
cell = doc["cells"][0]
lat = cell["latency_us"]
p99 = lat["p99"] / 1000
growth = (int(end) - int(warm)) / 1024
load = os.getloadavg()
lines = [
    "soak: %s, %s" % (doc.get("conditions", ""), doc.get("machine", "")),
    "  target rate %s req/s, achieved %.0f req/s, %d ok, %d errors (loadgen exit %s)" % (
        rate, cell["rps"], cell["requests_ok"], cell["errors"], rc),
    "  latency ms: p50 %.3f  p90 %.3f  p99 %.3f  max %.2f (target p99 <= %s)" % (
        lat["p50"] / 1000, lat["p90"] / 1000, p99, lat["max"] / 1000, p99_target),
    "  server RSS MiB: idle %.1f, start of measurement %.1f, end %.1f (growth %+.1f, limit %s), peak %.1f" % (
        int(idle) / 1024, int(warm) / 1024, int(end) / 1024, growth, growth_max, int(hwm) / 1024),
    "  server CPU %s µs/review; %s review log lines, %s ERROR log lines; %ss wall" % (
        cell["server"].get("cpu_us_per_req", "-"), reviews, log_errors, elapsed),
    "  machine load average (1/5/15 min) at the end: %.2f %.2f %.2f on %d cores" % (load + (os.cpu_count(),)),
]
print("\n".join(lines))
open(os.path.join(out, "soak.txt"), "w").write("\n".join(lines) + "\n")
ok = (int(rc) == 0 and cell["errors"] == 0 and p99 <= float(p99_target)
      and growth <= float(growth_max) and int(log_errors) == 0)
print("soak: %s (%s)" % ("PASS" if ok else "FAIL", out))
sys.exit(0 if ok else 1)
EOF
