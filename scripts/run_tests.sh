#!/usr/bin/env bash
# `deno task test`: makes sure WebGPU has an adapter, then runs the whole suite (extra args go to deno test).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -z "${INTERNVL_WEBGPU_READY:-}" ]; then INTERNVL_WEBGPU_READY=1 exec bash scripts/with_webgpu.sh "$0" "$@"; fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# --parallel: test files run side by side (one more than cores, below; DENO_JOBS overrides). Much of a file's
# time is single-threaded JS (type-checked modules, recording, host-side references), so on 2 cores the suite
# took 3m14s instead of 5m17s.
# Files start in the order given, then the rest of tests/ alphabetically (each file once). The slowest go
# first (longest-first scheduling): started in alphabetical order, tests/server/real_engine_test.ts (~40 s)
# began near the end and ran on one core while the other had nothing left. Slowest first as measured in the
# suite on the 2-core llvmpipe host (seconds, two files at a time, 2026-11-28, with the CPU adapters' kernel
# forms of PERF.md v59); a file missing here still runs, in the alphabetical part.
slowest=(
  tests/engine/webgpu_engine_test.ts      # 110
  tests/model/language_test.ts            # 83
  tests/kernels/matvec_i8_test.ts         # 64
  tests/bench/bench_smoke_test.ts         # 58
  tests/model/vision_scratch_pool_test.ts # 50
  tests/engine/worker_engine_test.ts      # 41 (no warm-up)
  tests/kernels/linear_test.ts            # 38
  tests/kernels/attention_decode_test.ts  # 31
  tests/kernels/attention_prefill_test.ts # 27
  tests/model/llm_int8_test.ts            # 23
  tests/model/vision_test.ts              # 23
  tests/server/real_engine_test.ts        # 21 (no warm-up)
  tests/server/serve_process_test.ts      # 20
  tests/model/row_groups_test.ts          # 17
  tests/kernels/gate_up_silu_test.ts      # 10
)
# Mesa's llvmpipe runs each process's compute on a pool of one thread per core; with one test file per core
# beside it, the pools oversubscribed the two cores (suite 4m26s–5m09s, CPU 8m03s–9m17s over four runs; with
# one llvmpipe thread a process: 4m31s and 4m33s, CPU 8m06s and 8m11s). No effect on a GPU's driver.
export LP_NUM_THREADS="${LP_NUM_THREADS:-1}"
# One test file more than cores: the two files a 2-core host ran kept 1.77 cores busy (user time 8m50s in a
# 5m01s suite, 2026-11-28); three at a time took 4m36s (8m21s user), every test passing. DENO_JOBS overrides.
export DENO_JOBS="${DENO_JOBS:-$(($(nproc) + 1))}"
slow_first=()
for f in "${slowest[@]}"; do [ -f "$f" ] && slow_first+=("$f"); done
"${DENO_BIN:-deno}" test --parallel --allow-read --allow-write --allow-env --allow-ffi --allow-net --allow-run --unstable-kv \
  --unstable-no-legacy-abort "$@" "${slow_first[@]}" tests/ \
  2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
# Mesa's software Vulkan driver sometimes aborts while the process tears down its device, AFTER deno test
# has printed its summary. Only then, and only when that summary says nothing failed, is the run a pass.
if [ "$rc" -ne 0 ] && sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -qE '^ok \| [0-9]+ passed.*\| 0 failed'; then
  echo "note: every test passed; the process then aborted (exit $rc) in the Vulkan driver's teardown" >&2
  rc=0
fi
exit "$rc"
