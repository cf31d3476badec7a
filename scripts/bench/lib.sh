# Shared by the benchmark scripts: `source "$(dirname "$0")/lib.sh"`.
#
# Sets RELEASE (the release build's directory: `$CARGO_TARGET_DIR/release`, by default the
# fat-LTO target directory BENCHMARKS.md builds into) and DATA_PARENT (where data
# directories go, by default the system's temporary directory: put it on the disk whose
# floor you mean to measure), moves to the repository root, and stops with a pointer to
# the build command when a release binary is missing.
RELEASE=${CARGO_TARGET_DIR:-$HOME/.cache/tollgate/target-lto}/release
DATA_PARENT=${DATA_PARENT:-${TMPDIR:-/tmp}}
cd "$(dirname "$0")/../.."
for binary in tollgate tollgate-loadgen; do
  if [ ! -x "$RELEASE/$binary" ]; then
    echo "no $RELEASE/$binary: build the release binaries first (see the top of $0)" >&2
    exit 1
  fi
done
