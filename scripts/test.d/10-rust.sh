#!/usr/bin/env bash
# Rust: formatting, lints, and every unit, property, component and integration test.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
command -v cc >/dev/null 2>&1 || ensure_apt build-essential
log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
ensure_dynamodb_local
log "cargo test"
cargo test --workspace --locked
