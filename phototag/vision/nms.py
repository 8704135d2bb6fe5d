"""Non-maximum suppression from torchvision's compiled operators, without importing the
torchvision package: `import torchvision` brings in its models, transforms and torch._dynamo,
seconds of start-up for a nightly run that needs one operator."""

import glob
import importlib.util
import os

import torch

_loaded = False


def _load():
    global _loaded
    spec = importlib.util.find_spec("torchvision")
    folder = spec.submodule_search_locations[0] if spec and spec.submodule_search_locations else None
    libraries = glob.glob(os.path.join(folder, "_C*.so")) + glob.glob(os.path.join(folder, "_C*.pyd")) \
        if folder else []
    if not libraries:
        raise ImportError("torchvision's compiled operators are not installed")
    torch.ops.load_library(libraries[0])
    _loaded = True


def nms(boxes, scores, iou_threshold):
    """Indices of the boxes kept, best score first (``torchvision.ops.nms``)."""
    if not _loaded:
        try:
            _load()
        except (ImportError, OSError, RuntimeError):  # an unusual install: the package's way
            from torchvision.ops import nms as package_nms

            return package_nms(boxes, scores, iou_threshold)
    return torch.ops.torchvision.nms(boxes, scores, iou_threshold)
