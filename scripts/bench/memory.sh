#!/bin/bash
# What a partition keeps in memory and in its snapshots under sustained Reserve + Commit load.
#
#   scripts/bench/memory.sh [TOLLGATE_BIN] [WINDOW] [SECONDS]
#
# Starts `tollgate serve` (TOLLGATE_BIN, default the fat-LTO release build) pinned to core 0
# on a fresh data directory with `--idempotency-window WINDOW` (default 1m), drives it with
# `tollgate-loadgen --rpc reserve-commit --concurrency 64` pinned to core 1 for SECONDS
# (default 240), and prints every 15 s the server's resident size and the retained figures
# of /metrics (`journal_entries` in memory, `answer_slots`), then the load generator's line,
# the server's snapshot lines (size, entries archived, the pause for its image, the encoding
# time, off the partition's path) and the data directory's size. With TRACE_DIR set, the
# load generator writes every call there (`scripts/bench/tail.py`). With DYNAMODB_ENDPOINT set
# (DynamoDB Local: `source scripts/lib.sh && ensure_dynamodb_local`, then start it as the
# README says), the server keeps its ledger there instead (`--store dynamodb`, one partition,
# tables of its own), and the checkpoint and archive lines are printed. Build first:
#   CARGO_TARGET_DIR=$HOME/.cache/tollgate/target-lto cargo build --release --locked -p tollgate-runtime -p tollgate-e2e
set -euo pipefail
RELEASE=${CARGO_TARGET_DIR:-$HOME/.cache/tollgate/target-lto}/release
BIN=${1:-$RELEASE/tollgate}
WINDOW=${2:-1m}
SECONDS_=${3:-240}
PORT=${PORT:-50071}
DIR=$(mktemp -d)
# The server writes a last snapshot when stopped: wait for it before removing its directory.
trap 'kill $SP 2>/dev/null || true; wait $SP 2>/dev/null || true; rm -rf "$DIR"' EXIT
cd "$(dirname "$0")/../.."
STORE_ARGS=()
if [ -n "${DYNAMODB_ENDPOINT:-}" ]; then
  export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench
  STORE_ARGS=(--store dynamodb --dynamodb-endpoint "$DYNAMODB_ENDPOINT" --dynamodb-auto-create
    --table-prefix "memory-$$-" --partitions 1)
fi
taskset -c 0 "$BIN" serve --data-dir "$DIR/data" --grpc-addr 127.0.0.1:$PORT \
  --http-addr 127.0.0.1:$((PORT + 1)) --idempotency-window "$WINDOW" ${STORE_ARGS[@]+"${STORE_ARGS[@]}"} \
  > "$DIR/server.log" 2>&1 &
SP=$!
for _ in $(seq 300); do curl -sf 127.0.0.1:$((PORT + 1))/readyz > /dev/null && break; sleep 0.1; done
taskset -c 1 "$RELEASE/tollgate-loadgen" --addr 127.0.0.1:$PORT --rpc reserve-commit \
  --concurrency 64 --duration-s "$SECONDS_" --warmup-s 1 ${TRACE_DIR:+--trace-dir "$TRACE_DIR"} \
  > "$DIR/loadgen.out" 2>&1 &
LP=$!
for t in $(seq 15 15 "$SECONDS_"); do
  sleep 15
  rss=$(awk '/VmRSS/{print $2}' /proc/$SP/status)
  kept=$(curl -s 127.0.0.1:$((PORT + 1))/metrics \
    | grep -E '^tollgate_engine_(journal_entries|answer_slots)' | sed 's/{[^}]*}//' \
    | awk '{sub("tollgate_engine_", "", $1); printf "%s=%s ", $1, $2}')
  echo "t=${t}s rss_mb=$((rss / 1024)) $kept"
done
wait $LP
grep -E '^rpc=' "$DIR/loadgen.out"
grep -E 'snapshot (taken|written)|checkpoint published|journal entries archived' "$DIR/server.log" \
  | sed -E 's/.*INFO [a-z_:]*: //; s/ \([^)]*\)//' | cut -c1-220 || true
[ -n "${DYNAMODB_ENDPOINT:-}" ] ||
  echo "data directory: $(du -sh "$DIR/data" | cut -f1), journal archive files: $(ls "$DIR"/data/partition-*/journal-*.jnl 2> /dev/null | wc -l)"
