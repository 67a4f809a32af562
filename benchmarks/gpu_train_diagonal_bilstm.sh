#!/usr/bin/env bash
# Train the paper's MNIST Diagonal BiLSTM (mnist_diagonal_bilstm: 7 layers, h = 16) on one
# CUDA GPU within 10 minutes of GPU time, then score it on the full binarized MNIST test set.
#
#   benchmarks/gpu_train_diagonal_bilstm.sh [OUT_DIR]   (default: $OUT, else gpu_train_out)
#
# The run trains for TRAIN_SECONDS (default 420) and is then stopped with SIGINT, which saves
# last.pt at a step boundary; a fixed number of steps would be a guess, since this model's
# speed on a GPU is bound by its 55 sequential diagonal steps per layer, not by FLOPs. The
# schedule is a cosine over MAX_STEPS (default 30000 steps of batch 64, about 38 epochs of
# the 50,000 training images), so a run stopped early still had a decaying rate; set
# MAX_STEPS to what the first run reached for a run whose schedule ends at its stop. bf16
# autocast, Adam at 2e-3 (batch 64, 4x the paper's 16). Writes OUT_DIR/run (checkpoints,
# metrics.jsonl, curve.png, samples), OUT_DIR/eval.json and OUT_DIR/train.log. The run
# continues on any machine: pixelgen train mnist_diagonal_bilstm --resume --out OUT_DIR/run
# (with the same --set items).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${1:-${OUT:-gpu_train_out}}"
TRAIN_SECONDS="${TRAIN_SECONDS:-420}"
MAX_STEPS="${MAX_STEPS:-30000}"
DEVICE="${DEVICE:-cuda}"  # DEVICE=cpu tries the script out without a GPU
mkdir -p "$OUT_DIR"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY="${PYTHON:-python3}"
if [ "$DEVICE" != cpu ]; then
  "$PY" -c "import torch, sys; ok = torch.cuda.is_available(); \
print('torch', torch.__version__, torch.cuda.get_device_name() if ok else 'no CUDA'); sys.exit(not ok)"
fi

SETS=("train.device=$DEVICE" train.precision=bf16 train.batch_size=64 train.optimizer=adam
      train.lr=2e-3 train.schedule=cosine train.warmup_steps=300 "train.max_steps=$MAX_STEPS"
      "train.log_every=${LOG_EVERY:-100}" "train.eval_every=${EVAL_EVERY:-1000}"
      "train.checkpoint_every=${EVAL_EVERY:-1000}"
      train.eval_max_images=2000 eval.batch_size=500)
ARGS=(); for s in "${SETS[@]}"; do ARGS+=(--set "$s"); done
RESUME=(); [ -f "$OUT_DIR/run/checkpoints/last.pt" ] && RESUME=(--resume)

echo "== pixelgen train mnist_diagonal_bilstm ${SETS[*]} (stopped after ${TRAIN_SECONDS}s)"
status=0
timeout -s INT "$TRAIN_SECONDS" "$PY" -m pixelgen train mnist_diagonal_bilstm --no-progress \
  --out "$OUT_DIR/run" "${RESUME[@]}" "${ARGS[@]}" > "$OUT_DIR/train.log" 2>&1 || status=$?
tail -3 "$OUT_DIR/train.log"
# 124: stopped by the timeout (SIGINT saved last.pt); 130: interrupted; both are expected.
if [ "$status" -ne 0 ] && [ "$status" -ne 124 ] && [ "$status" -ne 130 ]; then exit "$status"; fi

echo "== pixelgen eval (full test set, best validation checkpoint)"
"$PY" -m pixelgen eval "$OUT_DIR/run" --device "$DEVICE" --batch-size 500 --no-progress \
  --json "$OUT_DIR/eval.json"
"$PY" - "$OUT_DIR/run" <<'PYEOF'
import sys
from pathlib import Path
from pixelgen.train import read_metrics
rows = read_metrics(Path(sys.argv[1]))
train = [r for r in rows if r["split"] == "train"]
valid = [r for r in rows if r["split"] == "valid"]
if train:
    print(f"steps {train[-1]['step']}, {train[-1]['step'] * 64:,} images, last window "
          f"{train[-1]['images_per_s']:.0f} images/s")
for r in valid:
    print(f"valid step {r['step']}: {r['nll_nats']:.2f} nats")
PYEOF
