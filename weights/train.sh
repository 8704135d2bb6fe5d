#!/usr/bin/env bash
# Trains the default weights on the data in ../shared and ships them only if they are better:
# the three stages of the gated model with SAM, from FaceMesh's pretrained trunk (`--preset
# cpu`), each stage resumable (rerun the script after a stop and it continues from the last
# checkpoint). Two CPU cores: about two hours with the default epochs (14 of the face stage).
#   weights/train.sh                       # from the pretrained start
#   INIT=weights/phototag-cpu.safetensors weights/train.sh   # continue from the shipped weights
# The result replaces weights/phototag-cpu.safetensors (and its manifest line) only when it
# scores better on the validation data (weights/promote.py says which and why).
set -euo pipefail
cd "$(dirname "$0")/.."
source weights/datasets.sh
OUT=${PHOTOTAG_TRAIN_DIR:-build/train}
FACE_EPOCHS=${FACE_EPOCHS:-14}
CONTEXT_EPOCHS=${CONTEXT_EPOCHS:-1}
GATE_EPOCHS=${GATE_EPOCHS:-1}
mkdir -p "$OUT"
common=(--task both --optimizer sam --seed 0 "${DATASETS[@]}" --resume)
start=(--preset cpu)
if [ -n "${INIT:-}" ]; then start=(--init "$INIT"); fi
phototag train "${common[@]}" "${start[@]}" --stage face --epochs "$FACE_EPOCHS" \
  --out "$OUT/stage1-face.safetensors"
phototag train "${common[@]}" --init "$OUT/stage1-face.safetensors" --stage context \
  --epochs "$CONTEXT_EPOCHS" --out "$OUT/stage2-context.safetensors"
phototag train "${common[@]}" --init "$OUT/stage2-context.safetensors" --stage gate \
  --epochs "$GATE_EPOCHS" --fp16 --out "$OUT/candidate.safetensors"
python weights/promote.py "$OUT/candidate.safetensors" weights/phototag-cpu.safetensors
