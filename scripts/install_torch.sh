#!/usr/bin/env bash
# Install PyTorch into the given Python environment.
#  - With an NVIDIA driver present: the default (CUDA) build from the package index.
#  - Without one: a CPU build, taken from a local wheel when pip's find-links
#    folders hold one for this Python (small and offline), otherwise from the
#    PyTorch CPU index. pyproject.toml keeps a plain `torch>=` range, so GPU
#    users can bring their own build.
set -euo pipefail
PY=${1:?usage: install_torch.sh PYTHON}
if "$PY" -c "import torch" 2>/dev/null; then
    exit 0
fi
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    exec "$PY" -m pip install -q "torch>=2.2"
fi
tag=$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
links=$("$PY" -m pip config get global.find-links 2>/dev/null || true)
for dir in ${PIP_FIND_LINKS:-} $links; do
    dir=${dir#file://}
    [ -d "$dir" ] || continue
    wheel=$(ls "$dir"/torch-*+cpu-"$tag"-*.whl 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$wheel" ]; then
        echo "installing CPU torch from $wheel"
        exec "$PY" -m pip install -q "$wheel"
    fi
done
echo "installing CPU torch from the PyTorch CPU index"
exec "$PY" -m pip install -q "torch>=2.2" --index-url https://download.pytorch.org/whl/cpu
