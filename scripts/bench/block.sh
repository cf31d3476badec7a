#!/bin/bash
# The Reserve + Commit latency block of BENCHMARKS.md, with the baselines each round needs.
#
#   scripts/bench/block.sh [ROUNDS]
#
# Each round (default 3) measures, in this order and on the same machine minutes:
#   1. the idle machine's stalls (`stalls.py`: a spinning process per core losing the CPU);
#   2. the disk's durable-write floor (`fsync.py`: 2,000 `pwrite` of 6,000 bytes, about a
#      batch's record, each followed by `fdatasync`, into preallocated space in DATA_PARENT,
#      default the system's temporary directory: put it on the disk the data directory is on);
#   3. a fresh `tollgate serve` pinned to core 0 (embedded store in a new directory under
#      DATA_PARENT), driven by `tollgate-loadgen --rpc reserve-commit --concurrency 64
#      --compare` pinned to core 1: the empty pair (two health checks) first, then Reserve +
#      Commit, 8 s each after 1 s of warm-up;
#   4. where each run's slow calls came from (`tail.py` on the traces of every call).
# The pair's throughput and p99 follow the disk (a pair waits for two durable writes) as much
# as the CPU (the empty pair): read them against both floors of the same round.
#
# Build first (BENCHMARKS.md): CARGO_TARGET_DIR=$HOME/.cache/tollgate/target-lto cargo build
# --release --locked -p tollgate-runtime -p tollgate-e2e
set -euo pipefail
ROUNDS=${1:-3}
source "$(dirname "$0")/lib.sh"
SERVER=
WORK=
trap '[ -n "$SERVER" ] && kill $SERVER 2>/dev/null; wait 2>/dev/null; [ -n "$WORK" ] && rm -rf "$WORK"' EXIT
for round in $(seq 1 "$ROUNDS"); do
  echo "=== round $round of $ROUNDS, $(date -u +%FT%TZ)"
  python3 scripts/bench/stalls.py --seconds 5
  taskset -c 1 python3 scripts/bench/fsync.py --count 2000 --dir "$DATA_PARENT"
  WORK=$(mktemp -d -p "$DATA_PARENT")
  mkdir "$WORK/data" "$WORK/traces"
  taskset -c 0 "$RELEASE/tollgate" serve --data-dir "$WORK/data" > "$WORK/server.log" 2>&1 &
  SERVER=$!
  sleep 2
  taskset -c 1 "$RELEASE/tollgate-loadgen" --rpc reserve-commit --concurrency 64 \
    --duration-s 8 --warmup-s 1 --compare --trace-dir "$WORK/traces"
  kill $SERVER
  wait $SERVER || true
  SERVER=
  python3 scripts/bench/tail.py "$WORK/traces/empty-pair.trace" "$WORK/traces/reserve-commit.trace"
  rm -rf "$WORK"
  WORK=
done
