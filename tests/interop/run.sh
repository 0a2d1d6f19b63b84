#!/usr/bin/env bash
# Cross-language conformance checks: drives a real `sts-broker serve` from Python (grpcio, botocore's
# SigV4 signer, grpcio-status, pyotp, PyJWT), as a new user of the broker would. Runs
# check_foundation.py, check_mfa.py, check_sessions.py and check_credential_process.py (botocore's
# credential_process provider running the CLI; shared helpers in broker_harness.py),
# each against its own fresh broker; exits non-zero if any fails; the last line is the combined
# `N passed, M failed`.
#
#   bash tests/interop/run.sh
#
# Environment:
#   PYTHON            interpreter to build the venv from (default: python3; 3.9 or newer)
#   INTEROP_VENV      venv directory (default: $CARGO_TARGET_DIR or target, + /interop-venv; reused)
#   STS_BROKER_BIN    use this binary instead of `cargo build --bin sts-broker`
#   CARGO_TARGET_DIR  respected by the build and when locating the binary
#   INTEROP_KEEP=1    keep the broker's temp data dir and logs
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in /*) ;; *) target_dir="$root/$target_dir" ;; esac
venv="${INTEROP_VENV:-$target_dir/interop-venv}"
python="${PYTHON:-python3}"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/sts-interop-run.XXXXXX")"
pidfile="$tmp/broker.pid"
checker_pid=""

cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    # The checker stops its broker itself; make sure of both even if it was interrupted.
    if [[ -n "$checker_pid" ]] && kill -0 "$checker_pid" 2>/dev/null; then
        kill -TERM "$checker_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$checker_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$checker_pid" 2>/dev/null || true
    fi
    if [[ -s "$pidfile" ]]; then
        local bpid
        bpid="$(cat "$pidfile")"
        if kill -0 "$bpid" 2>/dev/null; then
            kill -TERM "$bpid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$bpid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$bpid" 2>/dev/null || true
        fi
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# ---- Python environment (reused while requirements.txt is unchanged)
req="$here/requirements.txt"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ ! -x "$venv/bin/python" ]]; then
    echo "interop: creating venv $venv" >&2
    "$python" -m venv "$venv"
fi
if [[ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]]; then
    echo "interop: installing $req" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$req"
    echo "$want" >"$stamp"
fi
py="$venv/bin/python"

# ---- stubs from the protos
stubs="$tmp/stubs"
mkdir -p "$stubs"
(cd "$root/proto" && find . -name '*.proto' -printf '%P\n' | sort) >"$tmp/protos"
mapfile -t protos <"$tmp/protos"
"$py" -m grpc_tools.protoc -I"$root/proto" --python_out="$stubs" --grpc_python_out="$stubs" "${protos[@]}"

# ---- the broker binary
if [[ -n "${STS_BROKER_BIN:-}" ]]; then
    bin="$STS_BROKER_BIN"
else
    echo "interop: cargo build --bin sts-broker" >&2
    cargo build --quiet --bin sts-broker
    bin="$target_dir/debug/sts-broker"
fi
[[ -x "$bin" ]] || { echo "interop: no broker binary at $bin" >&2; exit 1; }

# ---- the checks, one script after the other, each with its own broker (in the background so that a
# signal to us reaches the trap at once). Each prints its own `N passed, M failed`; the last line
# is the sum over all scripts.
keep=()
[[ "${INTEROP_KEEP:-}" == 1 ]] && keep=(--keep)
rc=0
total_passed=0
total_failed=0
for script in check_foundation.py check_mfa.py check_sessions.py check_credential_process.py; do
    summary="$tmp/summary.${script%.py}"
    script_rc=0
    echo "== $script"
    "$py" -u "$here/$script" --broker "$bin" --stubs "$stubs" --pidfile "$pidfile" \
        --summary "$summary" ${keep[@]+"${keep[@]}"} </dev/null &
    checker_pid=$!
    wait "$checker_pid" || script_rc=$?
    checker_pid=""
    : >"$pidfile"
    if read -r p f <"$summary" 2>/dev/null && [[ "$p" =~ ^[0-9]+$ && "$f" =~ ^[0-9]+$ ]]; then
        total_passed=$((total_passed + p))
        total_failed=$((total_failed + f))
        # A script that reports no failures but exits non-zero still fails the run.
        if ((script_rc != 0 && f == 0)); then total_failed=$((total_failed + 1)); fi
    else
        echo "interop: $script ended (exit $script_rc) without a summary" >&2
        total_failed=$((total_failed + 1))
        ((script_rc != 0)) || script_rc=1
    fi
    ((script_rc == 0)) || rc=1
done
echo "$total_passed passed, $total_failed failed"
exit "$rc"
