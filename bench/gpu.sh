#!/usr/bin/env bash
# The prepared script for a lent GPU machine (its minutes are few: at most about 8 here): what
# the GPU is, the tests that need CUDA, then an index run on 64 generated 12-MP photos on the
# CPU and on the GPU in the same run (photos/s, and the same faces and tags).
#
#   bench/gpu.sh              on the GPU machine, from the repository root, after pip install
#   bench/gpu.sh --dry-run    here, on the CPU: the same steps, tiny, to know the script starts
set -euo pipefail
cd "$(dirname "$0")/.."
dry=0
[[ "${1:-}" == "--dry-run" ]] && dry=1
echo "== device"
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "no nvidia-smi"
python - <<'PY'
import torch
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, available: {torch.cuda.is_available()}")
for i in range(torch.cuda.device_count()):
    print(f"  cuda:{i} {torch.cuda.get_device_name(i)}")
PY
echo "== tests that need CUDA"
if (( dry )); then
    python -m pytest -q -rs tests/test_gpu.py || true  # they skip here, saying why
else
    timeout 240 python -m pytest -q -rs tests/test_gpu.py
fi
echo "== index, CPU against GPU"
if (( dry )); then
    timeout 300 python -m bench gpu_index --photos 4 --cpu-only
else
    timeout 360 python -m bench gpu_index --photos 64
fi
