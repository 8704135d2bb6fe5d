"""What a training step of the face branch costs per face on this CPU, by numeric mode and
memory layout, in one run: float32 or bfloat16 autocast, contiguous or channels-last.

    python -m bench train_speed [--presets cpu:mobilenetv2,cpu,scratch-cpu] [--batch 64]

The `cpu` preset's face branch is FaceMesh's trunk (depthwise convolutions), `cpu:mobilenetv2`
the same preset with MobileNetV2 as the face backbone (the shipped weights), `scratch-cpu`'s a
ResNet-18. Each row is the best of three AdamW steps on random crops after a warm-up step.
"""

import argparse
import dataclasses
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

import torch

from phototag.vision.config import PRESETS
from phototag.vision.models import build_model


def step_ms(preset, batch, bfloat16, channels_last, inference=False):
    name, _, face_backbone = preset.partition(":")
    config = PRESETS[name]
    if face_backbone:
        config = dataclasses.replace(config, face_backbone=face_backbone)
    model = build_model(config)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    params = list(model.face_encoder.parameters()) + list(model.face_heads.parameters())
    optimizer = torch.optim.AdamW(params)
    face = torch.rand(batch, 3, config.face_size, config.face_size)
    target = torch.randint(0, 6, (batch,))

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
            if inference:
                with torch.no_grad():
                    model.face_branch(face)
                return
            logits = model.face_branch(face)
            loss = sum(torch.nn.functional.cross_entropy(v.float(), target) for v in logits.values())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    model.train(not inference)
    step()
    times = []
    for _ in range(3):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return min(times) / batch * 1000


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--presets", default="cpu:mobilenetv2,cpu,scratch-cpu")
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args(argv)
    print(f"{os.cpu_count()} CPU cores, torch {torch.__version__}, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, batch {args.batch}; ms per face")
    for preset in args.presets.split(","):
        for inference in (False, True):
            results = {}
            for bfloat16 in (False, True):
                for channels_last in (False, True):
                    ms = step_ms(preset, args.batch, bfloat16, channels_last, inference)
                    results[(bfloat16, channels_last)] = ms
                    print(f"{preset:<12} {'forward  ' if inference else 'train step'} "
                          f"{'bfloat16' if bfloat16 else 'float32 '} "
                          f"{'channels-last' if channels_last else 'contiguous   '}: {ms:7.2f} ms",
                          flush=True)
            base = results[(False, False)]
            best = min(results, key=results.get)
            print(f"ratio {preset} {'forward' if inference else 'train step'}: bfloat16 / float32 "
                  f"{results[(True, False)] / base:.2f}, channels-last / contiguous "
                  f"{results[(False, True)] / base:.2f}; fastest: "
                  f"{'bfloat16' if best[0] else 'float32'}{' channels-last' if best[1] else ''}")


if __name__ == "__main__":
    main()
