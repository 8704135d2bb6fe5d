"""Where the models run: device names, checking that a device is there, and the defaults that
depend on it (decode workers, batch size). Used by index runs and by ``phototag train``/``eval``;
no torch is imported until a device is resolved."""

import os
import re


class SetupError(Exception):
    """The run cannot start: a device that is not there, weights that cannot be used."""


DEVICE_NAMES = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def check_device_name(name):
    """The device names phototag takes: auto, cpu, cuda, cuda:N (no torch needed to check)."""
    if not DEVICE_NAMES.match(name or ""):
        raise ValueError(f"unknown device {name!r}: auto, cpu, cuda or cuda:N")
    return name


def resolve_device(name):
    """``name`` (auto, cpu, cuda, cuda:N) → the device to use; SetupError if it is not there."""
    import torch

    try:
        check_device_name(name)
    except ValueError as exc:
        raise SetupError(str(exc)) from None
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SetupError(f"--device {name} was asked for, but PyTorch sees no CUDA device")
        number = int(name.partition(":")[2] or 0)
        if number >= torch.cuda.device_count():
            raise SetupError(f"--device {name} was asked for, but PyTorch sees "
                             f"{torch.cuda.device_count()} CUDA device(s)")
    return name


def on_gpu(device):
    return str(device).startswith("cuda")


def default_workers(device="cpu"):
    """Decode processes: with a GPU cores - 1, at most 8; on the CPU cores - 1, at least 2 where
    there are two cores (decoding then keeps up with the detector, docs/speed.md), at most 4."""
    cores = os.cpu_count() or 1
    if on_gpu(device):
        return max(1, min(8, cores - 1))
    return min(4, max(cores - 1, min(cores, 2)))


def default_batch_size(device="cpu"):
    return 32 if on_gpu(device) else 8
