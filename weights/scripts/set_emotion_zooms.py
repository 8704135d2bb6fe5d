"""Record test-time zooms for emotion in a weights file, its tensors unchanged: emotion's answer
becomes the mean over each face and its centre enlarged by these factors
(`ModelConfig.emotion_zooms`; measure first with `phototag eval --emotion-zooms`).

    python weights/scripts/set_emotion_zooms.py IN.safetensors OUT.safetensors --zooms 1.2
    python weights/scripts/set_emotion_zooms.py IN.safetensors OUT.safetensors --zooms none

The training record stays as it was; the change is added to it under "configured". Written over
a file in weights/, its line in weights/manifest gets the new sha256 and size.
"""

import argparse
import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from safetensors import safe_open  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from phototag.files import atomic_path  # noqa: E402
from phototag.vision.config import parse_zooms  # noqa: E402
from phototag.vision.weightsfile import read_metadata  # noqa: E402
from phototag.weights import record_in_manifest  # noqa: E402

MANIFEST = Path(__file__).resolve().parent / "manifest"


def set_emotion_zooms(source, out, zooms, command):
    config, info = read_metadata(source)
    config = dataclasses.replace(config, emotion_zooms=tuple(zooms))  # checks the factors
    with safe_open(str(source), framework="pt") as f:
        metadata = dict(f.metadata())
        tensors = {name: f.get_tensor(name) for name in f.keys()}
    info = {**info, "configured": info.get("configured", []) + [
        {"command": command, "emotion_zooms": list(zooms)}]}
    metadata.update(config=config.to_json(), info=json.dumps(info))
    out = Path(out)
    with atomic_path(out) as partial:
        save_file(tensors, str(partial), metadata=metadata)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="the weights file")
    parser.add_argument("out", help="where to write it with the zooms recorded (may be the same file)")
    parser.add_argument("--zooms", required=True, help="factors above 1, comma-separated (e.g. 1.2), or none")
    args = parser.parse_args()
    try:
        zooms = parse_zooms(args.zooms)
        out = set_emotion_zooms(args.source, args.out, zooms,
                                "python weights/scripts/set_emotion_zooms.py " + " ".join(sys.argv[1:]))
    except ValueError as exc:
        sys.exit(f"set_emotion_zooms: {exc}")
    print(f"{out}; {MANIFEST} updated" if record_in_manifest(out, MANIFEST) else out)


if __name__ == "__main__":
    main()
