#!/usr/bin/env bash
# Replays issue 12's hostile-client recipes from outside against the release binary and prints
# figures (see recipes.py). Not part of CI: it measures, it does not assert timings.
#
#   bash tests/outside/run.sh [r1 r1s r2 r3 r5] [-- --seconds 10 --connections 8 --requests 50000]
#
# Environment: STS_BROKER_BIN (skip the release build), INTEROP_VENV (as tests/interop/run.sh).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
venv="${INTEROP_VENV:-$target_dir/interop-venv}"
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    -r "$root/tests/interop/requirements.txt" h2
stubs="$(mktemp -d)"
trap 'rm -rf "$stubs"' EXIT
(cd "$root/proto" && find . -name '*.proto' -printf '%P\n' | sort | xargs \
    "$venv/bin/python" -m grpc_tools.protoc -I. --python_out="$stubs" --grpc_python_out="$stubs")
bin="${STS_BROKER_BIN:-}"
if [[ -z "$bin" ]]; then
    cargo build --quiet --release --locked --bin sts-broker
    bin="$target_dir/release/sts-broker"
fi
recipes=()
while [[ $# -gt 0 && "$1" != "--" ]]; do recipes+=("$1"); shift; done
[[ "${1:-}" == "--" ]] && shift
"$venv/bin/python" -u "$here/recipes.py" --broker "$bin" --stubs "$stubs" "$@" ${recipes[@]+"${recipes[@]}"}
