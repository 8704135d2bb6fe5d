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
  --data "age:$DATA/age/images_of_groups/labels.csv"
  --val "emotion:$DATA/emotion/fer2013/val"
  --holdout 0.1 --holdout-all
)
# RetinaFace locates the faces of the training images.
export PHOTOTAG_WEIGHTS=${PHOTOTAG_WEIGHTS:-$DATA/weights}
