#!/usr/bin/env bash
# Trains the default weights, weights/phototag-cpu.safetensors, on the data in ../shared:
# the three stages of the gated model with SAM, each resumable (rerun the script after a stop
# and every stage continues from its last checkpoint). Two CPU cores: about an hour.
set -euo pipefail
cd "$(dirname "$0")/.."
source weights/datasets.sh
OUT=${PHOTOTAG_TRAIN_DIR:-build/train}
FACE_EPOCHS=${FACE_EPOCHS:-4}
CONTEXT_EPOCHS=${CONTEXT_EPOCHS:-1}
GATE_EPOCHS=${GATE_EPOCHS:-1}
mkdir -p "$OUT"
common=(
  --task both --optimizer sam --seed 0
  "${DATASETS[@]}"
  --resume
)
phototag train "${common[@]}" --preset cpu --stage face --epochs "$FACE_EPOCHS" \
  --out "$OUT/stage1-face.safetensors"
phototag train "${common[@]}" --init "$OUT/stage1-face.safetensors" --stage context \
  --epochs "$CONTEXT_EPOCHS" --out "$OUT/stage2-context.safetensors"
phototag train "${common[@]}" --init "$OUT/stage2-context.safetensors" --stage gate \
  --epochs "$GATE_EPOCHS" --fp16 --out "${1:-weights/phototag-cpu.safetensors}"
