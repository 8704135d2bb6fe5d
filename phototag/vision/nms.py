"""Non-maximum suppression from torchvision's compiled operators, without importing the
torchvision package: `import torchvision` brings in its models, transforms and torch._dynamo,
seconds of start-up for a nightly run that needs one operator."""

import functools
import glob
import importlib.util
import os

import torch


@functools.cache
def _operator():
    """torchvision's compiled NMS, loaded once; the package's own function where the compiled
    library cannot be found or loaded (an unusual install)."""
    spec = importlib.util.find_spec("torchvision")
    folder = spec.submodule_search_locations[0] if spec and spec.submodule_search_locations else None
    libraries = glob.glob(os.path.join(folder, "_C*.so")) + glob.glob(os.path.join(folder, "_C*.pyd")) \
        if folder else []
    try:
        if not libraries:
            raise ImportError("torchvision's compiled operators are not installed")
        torch.ops.load_library(libraries[0])
        return torch.ops.torchvision.nms
    except (ImportError, OSError, RuntimeError):
        from torchvision.ops import nms as package_nms

        return package_nms


def nms(boxes, scores, iou_threshold):
    """Indices of the boxes kept, best score first (``torchvision.ops.nms``)."""
    return _operator()(boxes, scores, iou_threshold)
