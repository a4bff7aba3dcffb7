#!/usr/bin/env bash
# Create benchmarks/.venv-rtf, an isolated venv for REaLTabFormer 0.2.4.
#
# REaLTabFormer 0.2.4 needs transformers<5 and datasets<5, which conflict with
# tabline's own environment (transformers 5.x), so it lives in its own venv and
# the benchmark runner calls it through the venv's python in a subprocess.
#
# torch is installed FIRST and pinned to exactly 2.13.0: pip then finds the
# CPU build (2.13.0+cpu) in the local wheel directory.  An unpinned torch would
# pull the CUDA build (GBs).  A constraints file keeps later installs from
# replacing it.
#
# Usage:  bash benchmarks/setup_realtabformer.sh          (idempotent)
#         PYTHON=python3.11 bash benchmarks/setup_realtabformer.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${RTF_VENV:-$HERE/.venv-rtf}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "[rtf-setup] creating venv $VENV with $("$PYTHON" --version)"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
"$PY" -m pip install --quiet --upgrade "pip" "setuptools<81" wheel

echo "[rtf-setup] installing torch==2.13.0 (CPU build) first"
"$PY" -m pip install "torch==2.13.0"
TORCH_VERSION="$("$PY" -c 'import torch; print(torch.__version__)')"
echo "[rtf-setup] torch $TORCH_VERSION"
case "$TORCH_VERSION" in
    *+cpu) ;;
    *) echo "[rtf-setup] WARNING: torch is not a +cpu build ($TORCH_VERSION)" >&2 ;;
esac

CONSTRAINTS="$VENV/constraints.txt"
echo "torch==$TORCH_VERSION" > "$CONSTRAINTS"

echo "[rtf-setup] installing realtabformer==0.2.4 with transformers<5, datasets<5"
"$PY" -m pip install -c "$CONSTRAINTS" \
    "realtabformer==0.2.4" "transformers>=4.40,<5" "datasets<5" "accelerate" \
    "pandas<3" "psutil"

"$PY" - <<'EOF'
import importlib.metadata as md
import torch, transformers, datasets, pandas
import realtabformer  # noqa: F401
print("[rtf-setup] OK:",
      "realtabformer", md.version("realtabformer"),
      "| torch", torch.__version__,
      "| transformers", transformers.__version__,
      "| datasets", datasets.__version__,
      "| pandas", pandas.__version__)
EOF
