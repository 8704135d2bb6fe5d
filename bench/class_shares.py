"""A copy of a weights file whose answers add no class shares, to measure what the shares do
end to end (`phototag eval --no-class-shares` does the same for the validation sets).

    python -m bench class_shares WEIGHTS OUT.safetensors
"""

import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from bench.library import SHIPPED


def without_class_shares(weights, out):
    from phototag.vision.weightsfile import load_weights, save_weights

    model, info = load_weights(weights or SHIPPED)
    model.config = dataclasses.replace(model.config, class_shares=())
    save_weights(model, out, info=info, half=True)
    return str(out)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        sys.exit(__doc__)
    print(without_class_shares(*argv))


if __name__ == "__main__":
    main()
