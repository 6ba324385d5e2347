#!/usr/bin/env bash
# Issue 9's GPU check in one call of the device tool. A lent H100 gives 10 minutes a command
# and 15 minutes of device time a session, its start and idle time included: one full call and
# perhaps a short second one. The stages run most important first, each under its share of one
# deadline, so a slow stage cannot starve the next. Every kernbench run streams its records to
# $OUT as they finish: a stage cut off by its share loses only the case in flight.
#
#   1  figures, bf16:    gpu.toml's largest-rows softmax/layer_norm/rms_norm, matmul 8192^3 and
#                        attention at 4096, forward, Triton against torch (cuBLAS, SDPA)
#                        -> $OUT/gpu.jsonl (calibrates the GPU first: copy, update, GEMM rates)
#   2  breadth:          gpu_smoke.toml forward, one run per backend with an equal share each:
#                        triton, numba_cuda, cupy, jax_jit, torch_eager (launch, API and
#                        accuracy errors on the image's versions) -> $OUT/gpu_smoke.jsonl
#   3  figures, float32: the same shapes and backends in float32
#   4  figures, others:  the same shapes on torch_compile, jax_jit, cupy, numba_cuda (the issue's
#                        "best softmax" is the best of every backend)
#   5  breadth:          gpu_smoke.toml forward on torch_compile (56 inductor compiles)
#   6  breadth:          gpu_smoke.toml backward and forward_backward, every backend
# then what did not pass and the figures table (benchmarks/gpu_figures.py), last: the device
# tool returns the end of the output.
#
# On the device:  bash benchmarks/gpu_session.sh   (DEADLINE_S=540: give the call timeout_s=600)
# A second call on the still-warm machine resumes by itself: the files are also kept in
# results/device/ there, and each stage resumes its file (--resume skips the cases it holds),
# e.g. DEADLINE_S=200 STAGES="3 4 5" bash benchmarks/gpu_session.sh. On a fresh machine, copy
# the returned files into an ignored folder here, carry it, and set RESUME_FROM to it.
# Rehearse here:  DRY_RUN=1 bash benchmarks/gpu_session.sh  plans every stage (no GPU needed;
# `make test` runs it, so a pattern that matches no case fails there, not on the device).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-results/device}
KEEP=results/device
DEADLINE_S=${DEADLINE_S:-540}
STAGES=${STAGES:-"1 2 3 4 5 6"}
PY=${PYTHON:-python3}
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
t0=$SECONDS

FIGURES=(--mode forward
         --case 'softmax/*/rows=32768,cols=4096'
         --case 'layer_norm/*/rows=16384,hidden=4096,*'
         --case 'rms_norm/*/rows=16384,hidden=4096,*'
         --case 'matmul/*/m=8192,n=8192,k=8192'
         --case 'attention/*/batch=1,heads=16,seq=4096,*')
BREADTH=(triton numba_cuda cupy jax_jit torch_eager)

if [[ -z ${DRY_RUN:-} ]]; then
    mkdir -p "$OUT" "$KEEP"
    for from in "${RESUME_FROM:-}" "$KEEP"; do  # an earlier call's files, if $OUT has none
        [[ -n $from && $from != "$OUT" ]] || continue
        for f in "$from"/gpu.jsonl "$from"/gpu_smoke.jsonl; do
            [[ -s $f && ! -s $OUT/$(basename "$f") ]] && cp "$f" "$OUT/"
        done
    done
fi

# where a run writes: a fresh run, or --resume where the file already holds one
target() { if [[ -s $1 && -z ${DRY_RUN:-} ]]; then echo --resume "$1"; else echo -o "$1"; fi; }
wanted() { [[ " $STAGES " == *" $1 "* ]]; }

# Each stage's weight: a stage gets what is left of the deadline in proportion to its weight
# among the wanted stages from it on, so time a stage does not use passes on, and a second,
# shorter call (STAGES="3 4 5") divides its own deadline the same way.
declare -A WEIGHT=([1]=40 [2]=30 [3]=12 [4]=12 [5]=4 [6]=2)
SUMMARY_S=15  # kept back for the summary at the end
share() {
    local n=$1 total=0 s
    for s in $STAGES; do ((s >= n)) && total=$((total + WEIGHT[$s])); done
    echo $(((DEADLINE_S - (SECONDS - t0) - SUMMARY_S) * WEIGHT[$n] / total))
}

# run LABEL SECONDS ARGS...: one kernbench run, stopped after SECONDS
run() {
    local label=$1 budget=$2
    shift 2
    if [[ -n ${DRY_RUN:-} ]]; then
        local said rc
        said=$("$PY" -m kernbench run "$@" --dry-run 2>&1 >/dev/null)
        rc=$?
        echo "== $label: ${said##*$'\n'}"
        ((rc == 0)) || exit 2
        return 0
    fi
    if ((budget < 20)); then
        echo "== $label: skipped, ${budget}s left of its share"
        return 0
    fi
    echo "== $label: up to ${budget}s ($((SECONDS - t0))s gone)"
    timeout -k 10 "$budget" "$PY" -m kernbench run "$@" --no-progress
    echo "== $label: exit $? at $((SECONDS - t0))s"
    cp "$OUT"/*.jsonl "$KEEP"/ 2>/dev/null
}

# figures N ARGS...: gpu.toml's figure shapes into gpu.jsonl
figures() {
    wanted "$1" || return 0
    local n=$1
    shift
    run "stage $n, figures $*" "$(share "$n")" suites/gpu.toml "${FIGURES[@]}" "$@" \
        $(target "$OUT/gpu.jsonl")
}

# breadth N "B1 B2 ..." ARGS...: gpu_smoke.toml into gpu_smoke.jsonl, one run per backend,
# each an equal part of what is left of the stage's share
breadth() {
    wanted "$1" || return 0
    local n=$1 backends=($2) i=0 b
    shift 2
    local ends=$((SECONDS + $(share "$n")))
    for b in "${backends[@]}"; do
        run "stage $n, breadth $b $*" $(((ends - SECONDS) / (${#backends[@]} - i))) \
            suites/gpu_smoke.toml --backend "$b" "$@" $(target "$OUT/gpu_smoke.jsonl")
        i=$((i + 1))
    done
}

if [[ -z ${DRY_RUN:-} ]]; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,power.limit \
        --format=csv 2>&1 | tee "$OUT/nvidia-smi.csv"
    "$PY" - <<'EOF'
import importlib
for name in ("torch", "triton", "jax", "numba", "numba_cuda", "cupy", "numpy"):
    try:
        print(f"{name} {importlib.import_module(name).__version__}")
    except Exception as exc:  # a missing package is a finding, not a reason to stop
        print(f"{name}: {type(exc).__name__}: {exc}")
EOF
fi

figures 1 --dtype bfloat16 --backend triton --backend torch_eager
breadth 2 "${BREADTH[*]}" --mode forward
figures 3 --dtype float32 --backend triton --backend torch_eager
figures 4 --backend torch_compile --backend jax_jit --backend cupy --backend numba_cuda
breadth 5 torch_compile --mode forward
breadth 6 "${BREADTH[*]} torch_compile" --mode backward --mode forward_backward

[[ -n ${DRY_RUN:-} ]] && exit 0
for f in "$OUT"/gpu_smoke.jsonl "$OUT"/gpu.jsonl; do
    [[ -s $f ]] || continue
    echo "== not ok in $f"
    "$PY" - "$f" <<'EOF'
import collections, sys
from kernbench.results import read_run  # drops the line a stopped run was writing
cases = read_run(sys.argv[1]).cases
print(dict(collections.Counter(c.get("status") for c in cases)))
skipped = collections.Counter(str(c.get("reason")) for c in cases if c.get("status") == "skipped")
for reason, n in skipped.items():  # a framework missing on the image: one line per reason
    print(f"{n} skipped: {reason[:200]}")
for c in cases:
    if c.get("status") not in ("ok", "unsupported", "skipped"):
        print(f"{c['id']}: {c.get('status')}: {str(c.get('reason'))[:200]}")
EOF
done
[[ -s $OUT/gpu.jsonl ]] && "$PY" benchmarks/gpu_figures.py "$OUT/gpu.jsonl"
echo "== done at $((SECONDS - t0))s"
