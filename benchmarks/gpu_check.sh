#!/usr/bin/env bash
# GPU check for scale-out (issue 5), for one CUDA GPU; about 6 minutes on one H200, 8 at most.
#
#   1. `pixelgen train` on cuda with bf16 + torch.compile (quick_pixelcnn, shipped MNIST),
#      then with fp16 (GradScaler): the run finishes and its checkpoint is fp32 and loads
#      on the CPU.
#   2. Training-step images/s of each CIFAR-10 paper model (32x32x3, 256 levels, batch 16):
#      fp32 and bf16 eager, and bf16 compiled (each compiled model gets 60 s, compilation
#      included), as a table and as JSON.
#
# Usage: benchmarks/gpu_check.sh [OUT_DIR]   (default: $OUT, else gpu_check_out)
# Needs a CUDA build of torch plus pixelgen's dependencies; PYTHON picks the interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${1:-${OUT:-gpu_check_out}}"
mkdir -p "$OUT_DIR"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"

PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for candidate in .venv/bin/python python3 python; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c "import sys, torch; sys.exit(not torch.cuda.is_available())" 2>/dev/null; then
      PY="$candidate"; break
    fi
  done
fi
if [ -z "$PY" ]; then echo "gpu_check: no python with a CUDA build of torch (set PYTHON)" >&2; exit 1; fi
"$PY" -c "import torch; print('torch', torch.__version__, 'on', torch.cuda.get_device_name())"

status=0
run_train() {  # NAME, SECONDS, then --set items
  local name="$1" limit="$2"; shift 2
  local sets=(train.device=cuda train.max_steps=40 train.log_every=10 train.eval_every=40
              train.checkpoint_every=40 train.eval_max_images=256 sample.n=4 "$@")
  local args=(); for s in "${sets[@]}"; do args+=(--set "$s"); done
  echo "== pixelgen train quick_pixelcnn ${sets[*]}"
  rm -rf "$OUT_DIR/$name"
  if ! timeout "$limit" "$PY" -m pixelgen train quick_pixelcnn --no-progress --out "$OUT_DIR/$name" \
      "${args[@]}" > "$OUT_DIR/$name.log" 2>&1; then
    echo "FAILED (see $OUT_DIR/$name.log):"; tail -5 "$OUT_DIR/$name.log"; status=1; return
  fi
  tail -1 "$OUT_DIR/$name.log"
  "$PY" - "$OUT_DIR/$name" <<'EOF' || status=1
import json, sys
from pathlib import Path
import torch
from pixelgen import checkpoint as ck
run = Path(sys.argv[1])
c = ck.load_checkpoint(run / "checkpoints" / "last.pt")
assert c.step == 40, c.step
assert all(v.dtype == torch.float32 and v.device.type == "cpu" for v in c.weights.values())
model = c.build_model("cpu")
out = model(torch.zeros(1, 1, 28, 28, dtype=torch.long))
assert torch.isfinite(out).all()
rows = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
train = [r for r in rows if r["split"] == "train"]
print(f"ok: step {c.step}, fp32 checkpoint loads on the CPU; images/s by window:",
      ", ".join(f"{r['images_per_s']:.0f}" for r in train),
      f"valid {rows[-1]['bits_per_dim']:.4f} bits/dim")
EOF
}

run_train e2e_bf16_compile 110 train.precision=bf16 train.compile=true
run_train e2e_fp16 70 train.precision=fp16

echo "== training-step throughput, CIFAR-10 paper models"
timeout 300 "$PY" benchmarks/bench_distributed.py --gpu --compile-timeout 60 --json "$OUT_DIR/gpu_check.json" || status=1
exit $status
