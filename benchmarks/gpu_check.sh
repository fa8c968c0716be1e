#!/usr/bin/env bash
# The GPU check of hypersiren, run as-is on a GPU machine from the repository root (about 3 minutes
# on one H200, well under 10):
#
#     bash benchmarks/gpu_check.sh
#
# 1. the machine: nvidia-smi, the torch and CUDA versions;
# 2. the CUDA tests: `pytest -m cuda tests/` (each `device`-parametrised test's "cuda" case);
# 3. bench_functional.py and bench_derivatives.py on the GPU at their standard sizes, each table
#    written as markdown to $OUT/ when OUT is set, else to benchmarks/gpu_results/;
# 4. bench_prior.py's training step times and the one-command demo (train/demo.py) on the GPU;
# 5. bench_precision.py: `tiny`'s step time in float32, bf16 and fp16 (with its gradient scaler), and
#    the inpainting table of each after 200 steps.
#
# Without a CUDA device it stops before step 1 with "no CUDA device". A failing test does not stop
# the benchmarks (the GPU time is spent either way); the script then exits non-zero at the end.
# PYTHON chooses the interpreter (default python3); hypersiren is imported from this checkout.

set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
results=${OUT:-benchmarks/gpu_results}

if ! command -v nvidia-smi >/dev/null 2>&1; then
    echo "gpu_check: no CUDA device: nvidia-smi is not on PATH; run this on a GPU machine" >&2
    exit 1
fi
if ! "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "gpu_check: no CUDA device: torch.cuda.is_available() is False for $PYTHON" \
        "(CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-unset})" >&2
    exit 1
fi
mkdir -p "$results"

step() {  # step NAME COMMAND...: run COMMAND, then print how long it took
    local name=$1 start=$SECONDS
    shift
    echo
    echo "== $name"
    "$@"
    echo "== $name: $((SECONDS - start)) s"
}

versions() {
    "$PYTHON" -c 'import torch; print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, "
                                      f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}")'
}

cuda_tests() {  # a failure is kept in tests_status, and the benchmarks still run
    "$PYTHON" -m pytest -q -m cuda tests/ -p no:cacheprovider || tests_status=$?
}

bench() {  # bench NAME: benchmarks/NAME.py on the GPU, its markdown table kept in $results/NAME.md
    "$PYTHON" "benchmarks/$1.py" --device cuda --markdown | tee "$results/$1.md"
}

prior_bench() {  # training step time of the image priors on the GPU (packaged faces: no data download)
    "$PYTHON" benchmarks/bench_prior.py --device cuda --data faces --holdout 20 --batch-size 100 --timed-steps 5 \
        --presets celeba32_paper celeba32_low_rank cnp | tee "$results/bench_prior.md"
}

precision_bench() {  # mixed precision on the GPU: step times and the evaluation table per precision
    "$PYTHON" benchmarks/bench_precision.py --device cuda --preset tiny --data faces --holdout 20 \
        --precisions float32 bf16 fp16 --timed-steps 20 --train-steps 200 | tee "$results/bench_precision.md"
}

demo() {  # the README's one-command demo on the GPU: prior, CNP baseline (60 s), tables and figure
    "$PYTHON" train/demo.py --device cuda --cnp-budget 60 --overwrite --out "$results/demo" | tee "$results/demo.md"
}

total_start=$SECONDS
step "machine" nvidia-smi
step "versions" versions
tests_status=0
step "CUDA tests" cuda_tests
step "bench_functional (cuda)" bench bench_functional
step "bench_derivatives (cuda)" bench bench_derivatives
step "bench_prior (cuda)" prior_bench
step "demo (cuda)" demo
step "bench_precision (cuda)" precision_bench
echo
echo "gpu_check: tables in $results/; total $((SECONDS - total_start)) s"
if ((tests_status != 0)); then
    echo "gpu_check: the CUDA tests failed (pytest exit status $tests_status); see above" >&2
    exit "$tests_status"
fi
