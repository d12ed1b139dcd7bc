#!/usr/bin/env bash
# Terraform checks for CI: fmt, init (offline, provider mirror, committed lock files) +
# validate of the root module and of every example, checkov over all of it.
# Exits non-zero on any failure. Called by .ci/run; runnable on its own from anywhere.
#
# Environment:
#   FSD_TF_PLUGIN_DIR   provider mirror (a directory holding registry.terraform.io/hashicorp/aws);
#                       default: searched under common roots
#   FSD_CHECKOV_VENV    checkov's own venv (checkov pins libraries that clash with ours);
#                       default: ${XDG_CACHE_HOME:-~/.cache}/fsd-inference/checkov-venv
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tfdir="$repo/terraform"
command -v terraform >/dev/null || { echo "terraform.sh: terraform is not on PATH" >&2; exit 1; }

find_mirror() {
    if [[ -n "${FSD_TF_PLUGIN_DIR:-}" ]]; then
        [[ -d "$FSD_TF_PLUGIN_DIR/registry.terraform.io/hashicorp/aws" ]] || {
            echo "terraform.sh: FSD_TF_PLUGIN_DIR=$FSD_TF_PLUGIN_DIR holds no registry.terraform.io/hashicorp/aws" >&2
            return 1
        }
        echo "$FSD_TF_PLUGIN_DIR"; return 0
    fi
    local root hit
    for root in "$HOME/.terraform.d/plugins" "$HOME/.terraform.d" /usr/local/share/terraform \
                /usr/share/terraform /opt /usr/local/share /usr/local/lib /usr/share; do
        [[ -d "$root" ]] || continue
        hit="$(find "$root" -maxdepth 6 -type d -path '*/registry.terraform.io/hashicorp/aws' \
               -print -quit 2>/dev/null || true)"
        if [[ -n "$hit" ]]; then dirname "$(dirname "$(dirname "$hit")")"; return 0; fi
    done
    echo "terraform.sh: no Terraform provider mirror found (set FSD_TF_PLUGIN_DIR)" >&2
    return 1
}

mirror="$(find_mirror)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat > "$work/terraformrc" <<RC
provider_installation {
  filesystem_mirror {
    path    = "$mirror"
    include = ["registry.terraform.io/hashicorp/*"]
  }
}
RC
export TF_CLI_CONFIG_FILE="$work/terraformrc" TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1
export TF_DATA_DIR="$work/tfdata"  # keep .terraform/ out of the checkout

echo "== terraform fmt -check -recursive (mirror: $mirror)"
terraform -chdir="$tfdir" fmt -check -recursive -diff

# Each root configuration (the module itself, and every example, which calls it as
# ../../) is initialised in a copy against its committed lock file: -lockfile=readonly
# fails if the lock is missing the provider or its hashes do not match the mirror's.
cp -r "$tfdir" "$work/config"
rm -rf "$work/config/.terraform" "$work/config"/examples/*/.terraform
roots=(.)
for example in "$tfdir"/examples/*/; do
    [[ -d "$example" ]] && roots+=("examples/$(basename "$example")")
done
for root in "${roots[@]}"; do
    echo "== terraform init -backend=false -lockfile=readonly + validate: terraform/$root"
    [[ -f "$tfdir/$root/.terraform.lock.hcl" ]] || {
        echo "terraform.sh: terraform/$root has no committed .terraform.lock.hcl" >&2; exit 1; }
    export TF_DATA_DIR="$work/tfdata/$root"
    terraform -chdir="$work/config/$root" init -backend=false -input=false -no-color \
        -lockfile=readonly >"$work/init.log" 2>&1 \
        || { cat "$work/init.log" >&2; echo "terraform.sh: terraform init failed in terraform/$root" >&2; exit 1; }
    terraform -chdir="$work/config/$root" validate -no-color
done

echo "== checkov -d terraform (the modules, the root module and the examples)"
venv="${FSD_CHECKOV_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/fsd-inference/checkov-venv}"
if [[ ! -x "$venv/bin/checkov" ]]; then
    echo "installing checkov into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check checkov >"$work/pip.log" 2>&1 \
        || { tail -20 "$work/pip.log" >&2; echo "terraform.sh: pip install checkov failed" >&2; exit 1; }
fi
# --skip-download: no network for the platform's guideline metadata.
"$venv/bin/checkov" -d "$tfdir" --framework terraform --quiet --compact --skip-download
echo "terraform checks passed"
