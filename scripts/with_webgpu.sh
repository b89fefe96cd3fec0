#!/usr/bin/env bash
# Runs a command with WebGPU ready: a Vulkan driver present (scripts/ensure_webgpu.sh) and a private
# XDG_RUNTIME_DIR (Mesa warns when it is unset or not a 0700 directory of ours).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/ensure_webgpu.sh"
if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -O "$XDG_RUNTIME_DIR" ]; then
  export XDG_RUNTIME_DIR="${TMPDIR:-/tmp}/internvl-edge-runtime-$(id -u)"
  mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
fi
# Tasks pass the Deno that runs them as DENO_BIN: `npx deno task …` works without deno on PATH.
if [ "${1:-}" = deno ] && [ -n "${DENO_BIN:-}" ]; then
  shift
  exec "$DENO_BIN" "$@"
fi
exec "$@"
