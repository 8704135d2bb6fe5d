"""How fast the emotion/age model tags faces on this machine: faces per second of the whole
tagging step (crops sampled from decoded photos, then the gated model), per configuration and
numeric mode, in one run.

    python -m bench tagger [--presets cpu,scratch-cpu,original] [--face-size PX] [--faces 256]
    python -m bench tagger --presets cpu,cpu:mobilenetv2 --float32-only
    python -m bench tagger --presets cpu:mobilenetv2,cpu --float32-only --onnx-face
    python -m bench tagger --presets cpu:mobilenetv2,cpu:mobilenetv2:per-task --float32-only
    python -m bench tagger --presets cpu:mobilenetv2:per-task,cpu:mobilenetv2:per-task+zoom1.2 --float32-only

Faces: every face RetinaFace finds in ../shared/data/photos/people (crowds included), tagged in
the index run's batches. Rows: the `cpu` preset (FaceMesh trunks;
`cpu:mobilenetv2:per-task` is what ships), the earlier `scratch-cpu` preset (ResNet-18s at
64 px) and `original` (EfficientNet-B0 + ResNeSt-50 at 224 px), each in float32 and with
bfloat16 autocast, with and without the mirror test-time pass.
--face-size overrides each preset's face crop size; PRESET:BACKBONE swaps the face branch's
backbone, PRESET:BACKBONE:per-task gives each task a face backbone of its own, and +zoomZ
(e.g. per-task+zoom1.2, or :zoom1.2 alone) adds a test-time zoom for emotion (`ModelConfig.emotion_zooms`,
what the shipped weights record). Weights are
random (speed does not depend on training). On the CPU the face branch's backbone runs through
ONNX Runtime, as in an index run; --onnx-face also times it in PyTorch.
"""

import argparse
import contextlib
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

import dataclasses

import torch

from bench.library import PHOTOS, WEIGHTS
from phototag.library.decode import decode_bytes
from phototag.weights import DETECTOR_WEIGHTS
from phototag.vision.attributes import AttributeTagger
from phototag.vision.config import PRESETS, parse_zooms
from phototag.vision.detect import Detector
from phototag.vision.models import build_model
from phototag.vision.weightsfile import save_weights


def photos_with_faces(limit):
    detector = Detector(str(WEIGHTS / DETECTOR_WEIGHTS))
    photos, faces = [], 0
    for path in sorted((PHOTOS / "people").iterdir()):
        pixels = decode_bytes(path.read_bytes(), 1600, path.suffix).pixels
        found = detector.detect([pixels], 0.6)[0]
        if len(found):
            photos.append((pixels, found.boxes, found.landmarks))
            faces += len(found)
        if faces >= limit:
            break
    return photos, faces


def rate(tagger, photos, faces, autocast, runs=5):
    context = (torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext())
    with context:
        tagger.tag(photos[:1])  # warm-up
        best = float("inf")
        for _ in range(runs):
            started = time.perf_counter()
            tagger.tag(photos)
            best = min(best, time.perf_counter() - started)
    return faces / best


def parse_preset(text):
    """PRESET[:BACKBONE[:VARIANT]] as (preset, backbone or "", per_task, zooms), where VARIANT
    joins with + any of per-task and zoomZ (e.g. per-task+zoom1.2)."""
    name, _, rest = text.partition(":")
    face_backbone, _, variant = rest.partition(":")
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r} in {text!r}: one of {', '.join(PRESETS)}")
    per_task, zooms = False, ()
    for part in filter(None, variant.split("+")):
        if part == "per-task":
            per_task = True
        elif part.startswith("zoom"):
            zooms += parse_zooms(part[4:])  # its ValueError says what is wrong with the factor
        else:
            raise ValueError(f"unknown variant {part!r} in {text!r}: per-task or zoomZ (e.g. zoom1.2)")
    return name, face_backbone, per_task, zooms


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--faces", type=int, default=256, help="about this many faces")
    parser.add_argument("--presets", default="cpu,scratch-cpu,original")
    parser.add_argument("--face-size", type=int, help="face crop size instead of each preset's")
    parser.add_argument("--float32-only", action="store_true",
                        help="leave out the bfloat16 rows (slow where bfloat16 is emulated)")
    parser.add_argument("--onnx-face", action="store_true",
                        help="also the face branch's backbone in PyTorch, against ONNX Runtime "
                             "(what an index run uses on the CPU), mirror pass on, float32")
    args = parser.parse_args(argv)
    names = args.presets.split(",")
    try:
        presets = [parse_preset(preset) for preset in names]
    except ValueError as exc:
        parser.error(str(exc))
    torch.set_num_threads(os.cpu_count())
    photos, faces = photos_with_faces(args.faces)
    print(f"{faces} faces in {len(photos)} photos, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()} (bfloat16 is fast only with AVX512_BF16 or AMX)")
    results = {}
    with tempfile_dir() as tmp:
        for number, (preset, (name, face_backbone, per_task, zooms)) in enumerate(zip(names, presets)):
            for flip in (False, True):
                config = dataclasses.replace(PRESETS[name], test_flip=flip, emotion_zooms=zooms,
                                             face_backbone_per_task=per_task)
                if face_backbone:
                    config = dataclasses.replace(config, face_backbone=face_backbone)
                if args.face_size:
                    config = dataclasses.replace(config, face_size=args.face_size)
                path = Path(tmp) / f"{number}-{flip}.safetensors"
                save_weights(build_model(config), path, info={"epochs": 0, "benchmark": True})
                tagger = AttributeTagger(path, allow_untrained=True)
                for autocast in (False,) if args.float32_only else (False, True):
                    if preset == "original" and autocast is False and flip:
                        continue
                    value = rate(tagger, photos, faces, autocast)
                    results[(preset, flip, autocast)] = value
                    print(f"{preset:<16} mirror pass {'on ' if flip else 'off'} "
                          f"{'bfloat16' if autocast else 'float32 '}: {value:7.1f} faces/s", flush=True)
                if args.onnx_face and flip:
                    # Alternated with the ONNX Runtime tagger, best of each, in one run.
                    pytorch = AttributeTagger(path, allow_untrained=True, onnx=False)
                    ours = max(value, rate(tagger, photos, faces, False))
                    theirs = max(rate(pytorch, photos, faces, False) for _ in range(2))
                    print(f"{preset:<16} mirror pass on, face backbone in PyTorch: {theirs:7.1f} faces/s; "
                          f"ONNX Runtime: {ours:7.1f} (ratio {ours / theirs:.2f})", flush=True)
    first, *others = names
    for preset in others:
        mine, base = results.get((preset, True, False)), results.get((first, True, False))
        if mine and base:
            print(f"ratio {preset} / {first}, float32, mirror pass on: {mine / base:.2f}")
    for preset in names:
        for flip in (False, True):
            plain, bf16 = results.get((preset, flip, False)), results.get((preset, flip, True))
            if plain and bf16:
                print(f"ratio bfloat16 / float32, {preset}, mirror pass {'on' if flip else 'off'}: "
                      f"{bf16 / plain:.2f}")


@contextlib.contextmanager
def tempfile_dir():
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        yield tmp


if __name__ == "__main__":
    main()
