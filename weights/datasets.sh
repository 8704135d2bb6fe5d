# The datasets the default weights learn from, as `phototag train` options. Sourced by
# weights/train.sh and bench/accuracy.sh, so that every row of the results table sees the same
# data and the same validation split.
DATA=${PHOTOTAG_DATA:-../shared/data}
DATASETS=(
  --data "emotion:$DATA/emotion/fer2013/train"
  --data "emotion:$DATA/emotion/ckplus48"
  --data "emotion:$DATA/emotion/muxspace/train"
  --data "emotion:$DATA/emotion/sfew/train"
  --data "age:$DATA/age/utkface_200/labels.csv"
  --val "emotion:$DATA/emotion/fer2013/val"
  --holdout 0.1 --holdout-all
)
# Images of Groups is left out of training: its labels here hold no adult (0-2, 3-7, 8-12, 13-19
# and 66+ only), and trained on, it taught the model that a face in a group photo is never 20-65.
# Its held-out tenth still scores age on group-photo faces (bench/accuracy.sh, promote.py).
# RetinaFace locates the faces of the training images.
export PHOTOTAG_WEIGHTS=${PHOTOTAG_WEIGHTS:-$DATA/weights}
