#!/usr/bin/env bash
# Create benchmarks/.venv-argn, an isolated venv for MOSTLY AI's open engine
# (mostlyai-engine 2.7.x, model "TabularARGN").
#
# mostlyai-engine pins its own stack (transformers, accelerate, opacus, ...), so it
# lives in its own venv like REaLTabFormer and the benchmark runner calls it
# through the venv's python in a subprocess (benchmarks/peers.py --method tabularargn).
#
# torch is installed FIRST and pinned to exactly 2.13.0: pip then finds the
# CPU build (2.13.0+cpu) in the local wheel directory.  An unpinned torch would
# pull the CUDA build (GBs).  A constraints file keeps later installs from
# replacing it.  The torchvision/torchaudio that the engine requires do not
# match that torch and are uninstalled (see below).
#
# Usage:  bash benchmarks/setup_tabularargn.sh          (idempotent)
#         PYTHON=python3.11 bash benchmarks/setup_tabularargn.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${ARGN_VENV:-$HERE/.venv-argn}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
ENGINE_SPEC="${ARGN_ENGINE_SPEC:-mostlyai-engine>=2.7,<2.8}"

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "[argn-setup] creating venv $VENV with $("$PYTHON" --version)"
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
"$PY" -m pip install --quiet --upgrade "pip" "setuptools<81" wheel

echo "[argn-setup] installing torch==2.13.0 (CPU build) first"
"$PY" -m pip install "torch==2.13.0"
TORCH_VERSION="$("$PY" -c 'import torch; print(torch.__version__)')"
echo "[argn-setup] torch $TORCH_VERSION"
case "$TORCH_VERSION" in
    *+cpu) ;;
    *) echo "[argn-setup] WARNING: torch is not a +cpu build ($TORCH_VERSION)" >&2 ;;
esac

CONSTRAINTS="$VENV/constraints.txt"
echo "torch==$TORCH_VERSION" > "$CONSTRAINTS"

# Rerun: skip the engine install when the venv already imports a matching engine
# (pip would otherwise put back the torchvision/torchaudio dropped below).
if "$PY" - "$ENGINE_SPEC" >/dev/null 2>&1 <<'EOF'
import importlib.metadata as md, sys
from packaging.requirements import Requirement
req = Requirement(sys.argv[1])
assert md.version(req.name) in req.specifier
import mostlyai.engine  # noqa: F401
EOF
then
    echo "[argn-setup] $ENGINE_SPEC already installed and importable ($(
        "$PY" -c 'import importlib.metadata as m; print(m.version("mostlyai-engine"))'))"
else
    echo "[argn-setup] installing $ENGINE_SPEC with pandas<3, pyarrow, psutil"
    "$PY" -m pip install -c "$CONSTRAINTS" "$ENGINE_SPEC" "pandas<3" "pyarrow" "psutil<6"
fi

# mostlyai-engine 2.7.x requires torchvision 0.28.x and torchaudio 2.11.x but never
# imports them.  The index has only their CUDA builds, which do not load against
# torch 2.13.0+cpu ("operator torchvision::nms does not exist", "Could not load
# .../_torchaudio.so"), and transformers imports torchvision whenever it is
# installed, so `import mostlyai.engine` fails.  Drop whichever of the two does
# not match torch's version or does not import (pip check then names them as
# missing requirements of mostlyai-engine: harmless).
for pkg in torchvision torchaudio; do
    "$PY" -m pip show "$pkg" >/dev/null 2>&1 || continue
    if ! "$PY" - "$pkg" >/dev/null 2>&1 <<'EOF'
import importlib, importlib.metadata as md, sys
pkg = sys.argv[1]
t = [int(x) for x in md.version("torch").split("+")[0].split(".")[:2]]
v = [int(x) for x in md.version(pkg).split("+")[0].split(".")[:2]]
want = [0, t[1] + 15] if pkg == "torchvision" else t  # torch 2.13 <-> torchvision 0.28 / torchaudio 2.13
if v != want:
    raise SystemExit(f"{pkg} {v} does not match torch {t}")
importlib.import_module(pkg)
EOF
    then
        echo "[argn-setup] $pkg $("$PY" -c "import importlib.metadata as m; print(m.version('$pkg'))") does not match/load with torch $TORCH_VERSION: uninstalling it"
        "$PY" -m pip uninstall -y "$pkg"
    fi
done

"$PY" - <<'EOF'
import importlib.metadata as md
import numpy, pandas, pyarrow, torch
from mostlyai import engine  # noqa: F401
print("[argn-setup] OK:",
      "mostlyai-engine", md.version("mostlyai-engine"),
      "| torch", torch.__version__,
      "| pandas", pandas.__version__,
      "| numpy", numpy.__version__,
      "| pyarrow", pyarrow.__version__,
      "| TabularARGN class:", hasattr(engine, "TabularARGN"))
EOF
