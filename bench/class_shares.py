"""A copy of a weights file whose answers add no class shares, to measure what the shares do
end to end (`phototag eval --no-class-shares` does the same for the validation sets).

    python bench/class_shares.py WEIGHTS OUT.safetensors
"""

import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.library import SHIPPED  # noqa: E402


def without_class_shares(weights, out):
    from phototag.vision.weightsfile import load_weights, save_weights

    model, info = load_weights(weights or SHIPPED)
    model.config = dataclasses.replace(model.config, class_shares=())
    save_weights(model, out, info=info, half=True)
    return str(out)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print(without_class_shares(*sys.argv[1:]))
