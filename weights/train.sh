#!/usr/bin/env bash
# Trains the default weights on the data in ../shared and ships them only if they are better:
# the `cpu` preset with MobileNetV2 (ImageNet, pretrained) as the face branch and FaceMesh's
# pretrained trunk as the context branch and GatingNet, AdamW, the three stages of the original
# design, as the shipped file was made: four one-cycle schedules of the face stage (6 epochs at a
# peak learning rate of 5e-4, 7 at 3e-4, then a context and a gate epoch; then 10 at 2e-4 and 8
# at 1.5e-4, then a context and a gate epoch again). Then emotion gets a face backbone of its
# own: the face stage trained on emotion labels alone (3 epochs at 1e-4, 4 more, then cycles of 6
# epochs at peaks of 2e-4, 1.5e-4, 2e-4 and 1.5e-4, then two at 1.5e-4 with --augment light:
# fewer faces brought to a lower resolution, which only age's small faces needed), joined
# with the age face branch, context branch and gates of the file before
# (weights/scripts/join_face_branches.py), and a gate epoch on top; last, emotion's answer is set to
# the mean over each face and its centre enlarged 1.2 times (weights/scripts/set_emotion_zooms.py,
# the tensors unchanged). Each step is resumable (rerun the
# script after a stop and it continues from the last checkpoint). Two CPU cores: about seven hours.
#   weights/train.sh                                        # from the pretrained starts
#   INIT=FILE weights/train.sh   # only the last part, on top of a trained file with one face
#                                # backbone (e.g. git show 4b0484b:weights/phototag-cpu.safetensors)
# The result replaces weights/phototag-cpu.safetensors (and its manifest line) only when it
# scores better on the validation data (weights/scripts/promote.py says which and why).
set -euo pipefail
cd "$(dirname "$0")/.."
source weights/datasets.sh
OUT=${PHOTOTAG_TRAIN_DIR:-build/train}
mkdir -p "$OUT"
common=(--task both --optimizer adamw "${DATASETS[@]}" --resume)

context_and_gate() {  # context_and_gate SEED FACE_FILE NAME: a context epoch, a gate epoch
  phototag train "${common[@]}" --seed "$1" --init "$2" --stage context --epochs 1 \
    --out "$OUT/$3-context.safetensors"
  phototag train "${common[@]}" --seed "$1" --init "$OUT/$3-context.safetensors" --stage gate \
    --epochs 1 --fp16 --out "$OUT/$3.safetensors"
}

if [ -n "${INIT:-}" ]; then
  face=$INIT
  single=$INIT
else
  phototag train "${common[@]}" --seed 0 --preset cpu --face-backbone mobilenetv2 --lr 5e-4 \
    --stage face --epochs 6 --out "$OUT/stage1-face.safetensors"
  phototag train "${common[@]}" --seed 1 --init "$OUT/stage1-face.safetensors" --lr 3e-4 \
    --stage face --epochs 7 --out "$OUT/stage1b-face.safetensors"
  context_and_gate 1 "$OUT/stage1b-face.safetensors" first  # the file shipped on 2026-11-29
  phototag train "${common[@]}" --seed 2 --init "$OUT/first.safetensors" --lr 2e-4 --stage face \
    --epochs 10 --out "$OUT/stage1c-face.safetensors"
  phototag train "${common[@]}" --seed 3 --init "$OUT/stage1c-face.safetensors" --lr 1.5e-4 \
    --stage face --epochs 8 --out "$OUT/stage1d-face.safetensors"
  context_and_gate 3 "$OUT/stage1d-face.safetensors" single  # the file shipped on 2026-11-30
  face=$OUT/stage1d-face.safetensors
  single=$OUT/single.safetensors
fi
# Emotion's own face backbone: the age labels no longer pull the features their way.
emotion_only=(--task emotion --optimizer adamw "${DATASETS[@]}" --resume --stage face)
emotion=$face
for cycle in "e 11 1e-4 3 full" "f 12 1e-4 4 full" "g 14 2e-4 6 full" "h 16 1.5e-4 6 full" \
             "i 17 2e-4 6 full" "j 19 1.5e-4 6 full" "k 21 1.5e-4 6 light" "l 23 1.5e-4 6 light"; do
  read -r name seed lr epochs augment <<< "$cycle"  # each one-cycle schedule starts where the last ended
  phototag train "${emotion_only[@]}" --seed "$seed" --init "$emotion" --lr "$lr" --epochs "$epochs" \
    --augment "$augment" --out "$OUT/stage1$name-emotion.safetensors"
  emotion=$OUT/stage1$name-emotion.safetensors
done
python weights/scripts/join_face_branches.py --emotion "$emotion" --age "$single" \
  "$OUT/joined.safetensors"
phototag train "${common[@]}" --seed 24 --init "$OUT/joined.safetensors" --stage gate --epochs 1 \
  --fp16 --out "$OUT/candidate.safetensors"
python weights/scripts/set_emotion_zooms.py "$OUT/candidate.safetensors" "$OUT/candidate.safetensors" --zooms 1.2
python weights/scripts/promote.py "$OUT/candidate.safetensors" weights/phototag-cpu.safetensors
