#!/usr/bin/env bash
# Runs every test of Tollgate and installs what they need by itself.
# Each part lives in scripts/test.d/ and runs in name order; the first failure stops the run.
set -euo pipefail
cd "$(dirname "$0")/.."
# Build output is cached outside the clone when possible; a cold cache only costs time.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tollgate/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
start=$(date +%s)
for part in scripts/test.d/*.sh; do
  printf '\n##### %s\n' "$part"
  part_start=$(date +%s)
  bash "$part"
  printf '##### %s: ok in %ss\n' "$part" "$(( $(date +%s) - part_start ))"
done
printf '\nall test parts passed in %ss\n' "$(( $(date +%s) - start ))"
