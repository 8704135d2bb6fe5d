"""Batches of model inputs from stored crops: plain for validation, augmented for training.

Validation cuts the centre of each face canvas, which is exactly the crop an index run samples.
Training moves, turns, scales and flips it, changes its colours, and often lowers its
resolution (downscale, blur, JPEG), because faces in real photos are small: a 30-pixel face must
get the tag a 200-pixel one gets.
"""

import io
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..vision.regions import mask_boxes


@dataclass(frozen=True)
class Augmentation:
    shift: float = 0.06  # of the side
    scale: float = 0.10
    degrees: float = 10.0
    flip: float = 0.5
    colour: float = 0.25  # brightness, contrast and saturation change up to ±this
    grey: float = 0.15  # share turned grey (some datasets are grey, photos are not)
    low_resolution: float = 0.4  # share of faces seen at a lower resolution
    smallest_face: int = 12  # pixels: the lowest resolution a face is brought down to
    jpeg: float = 0.2  # share JPEG-compressed (quality 25-85)
    erase: float = 0.25  # share with a random rectangle erased


# Named strengths for `phototag train --augment`. "light" keeps the moves, colours and erasing but
# lowers the resolution of one face in ten rather than four, and compresses fewer: for a model of
# its own that serves faces of a fair size (emotion's backbone; age keeps the full set).
AUGMENTATIONS = {
    "full": Augmentation(),
    "light": Augmentation(low_resolution=0.1, jpeg=0.05),
    "none": None,
}


def to_float(pixels):
    """N×H×W×3 uint8 (numpy) → N×3×H×W float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(pixels)).permute(0, 3, 1, 2).float().div_(255.0)


def centre(canvas, size):
    margin = (canvas.shape[-1] - size) // 2
    return canvas[..., margin:margin + size, margin:margin + size]


def plain_batch(faces, contexts, boxes, size, with_context=True):
    """Validation and evaluation: (face, masked context, unmasked context)."""
    face = centre(to_float(faces), size)
    if not with_context:
        return face.contiguous(), None, None
    gate = to_float(contexts)
    return face.contiguous(), mask_boxes(gate, torch.from_numpy(boxes)), gate


def _uniform(generator, n, low, high):
    return torch.rand(n, generator=generator) * (high - low) + low


def _geometry(generator, n, aug, size, canvas):
    """affine_grid matrices: each output crop a moved, turned, scaled and maybe flipped view of
    its canvas's centre."""
    angle = _uniform(generator, n, -aug.degrees, aug.degrees) * math.pi / 180
    zoom = 1.0 + _uniform(generator, n, -aug.scale, aug.scale)
    flip = torch.where(torch.rand(n, generator=generator) < aug.flip, -1.0, 1.0)
    ratio = size / canvas / zoom
    shift = _uniform(generator, 2 * n, -aug.shift, aug.shift).view(n, 2) * 2 * size / canvas
    cos, sin = torch.cos(angle) * ratio, torch.sin(angle) * ratio
    theta = torch.stack([torch.stack([cos * flip, -sin, shift[:, 0]], 1),
                         torch.stack([sin * flip, cos, shift[:, 1]], 1)], 1)
    return theta, flip < 0


def _colour(generator, images, aug):
    """Saturation (or grey), contrast and brightness in one pass: each output channel is a
    per-image linear mix of the input channels plus an offset."""
    n = len(images)
    brightness = 1 + _uniform(generator, n, -aug.colour, aug.colour)
    contrast = 1 + _uniform(generator, n, -aug.colour, aug.colour)
    saturation = 1 + _uniform(generator, n, -aug.colour, aug.colour)
    saturation = torch.where(torch.rand(n, generator=generator) < aug.grey,
                             torch.zeros_like(saturation), saturation)
    luma = images.new_tensor([0.299, 0.587, 0.114])
    # x' = grey + s (x - grey) = s x + (1 - s) luma·x, then contrast about the image mean and
    # brightness: y = b (c (x' - m) + m).
    mix = saturation.view(n, 1, 1) * torch.eye(3) + (1 - saturation).view(n, 1, 1) * luma.view(1, 1, 3)
    mix = mix * (brightness * contrast).view(n, 1, 1)
    mean = (images.mean(dim=(2, 3)) * luma).sum(1)  # the mean's grey level; saturation keeps it
    offset = (brightness * (1 - contrast) * mean).view(n, 1, 1, 1)
    out = torch.einsum("nij,njhw->nihw", mix, images) + offset
    return out.clamp_(0, 1)


def _low_resolution(generator, images, aug):
    size = images.shape[-1]
    chosen = (torch.rand(len(images), generator=generator) < aug.low_resolution).nonzero().flatten()
    for i in chosen.tolist():
        # Log-uniform between the smallest face and the crop's own size.
        side = int(math.exp(_uniform(generator, 1, math.log(aug.smallest_face), math.log(size)).item()))
        small = F.interpolate(images[i:i + 1], size=(side, side), mode="bilinear", antialias=True,
                              align_corners=False)
        images[i] = F.interpolate(small, size=(size, size), mode="bilinear", align_corners=False)[0]
    return images.clamp_(0, 1)


def _jpeg(generator, images, aug):
    from PIL import Image

    chosen = (torch.rand(len(images), generator=generator) < aug.jpeg).nonzero().flatten()
    for i in chosen.tolist():
        quality = int(_uniform(generator, 1, 25, 85).item())
        pixels = (images[i] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
        encoded = io.BytesIO()
        Image.fromarray(pixels).save(encoded, format="JPEG", quality=quality)
        decoded = np.asarray(Image.open(encoded).convert("RGB"))
        images[i] = torch.from_numpy(decoded.copy()).permute(2, 0, 1).float() / 255.0
    return images


def _erase(generator, images, aug):
    n, _, h, w = images.shape
    chosen = (torch.rand(n, generator=generator) < aug.erase).nonzero().flatten()
    for i in chosen.tolist():
        eh = int(h * _uniform(generator, 1, 0.15, 0.4).item())
        ew = int(w * _uniform(generator, 1, 0.15, 0.4).item())
        y = int(torch.randint(0, h - eh + 1, (1,), generator=generator))
        x = int(torch.randint(0, w - ew + 1, (1,), generator=generator))
        images[i, :, y:y + eh, x:x + ew] = torch.rand(3, 1, 1, generator=generator)
    return images


def training_batch(faces, contexts, boxes, size, generator, aug=Augmentation(), with_context=True):
    """Augmented (face, masked context, unmasked context). The context is flipped with its
    face, and its box with it; without ``with_context`` (the face stage) it is left out."""
    canvas = to_float(faces)
    n = len(canvas)
    theta, flipped = _geometry(generator, n, aug, size, canvas.shape[-1])
    grid = F.affine_grid(theta, (n, 3, size, size), align_corners=False)
    face = F.grid_sample(canvas, grid, mode="bilinear", padding_mode="border", align_corners=False)
    face = _colour(generator, face, aug)
    face = _low_resolution(generator, face, aug)
    if aug.jpeg:
        face = _jpeg(generator, face, aug)
    face = _erase(generator, face, aug)
    if not with_context:
        return face.contiguous(), None, None
    gate = to_float(contexts)
    boxes = torch.from_numpy(np.array(boxes, dtype=np.float32))
    if flipped.any():
        side = gate.shape[-1]
        gate[flipped] = gate[flipped].flip(-1)
        x1 = boxes[flipped, 0].clone()
        boxes[flipped, 0] = side - boxes[flipped, 2]
        boxes[flipped, 2] = side - x1
    gate = _colour(generator, gate, Augmentation(colour=aug.colour, grey=aug.grey))
    return face.contiguous(), mask_boxes(gate, boxes), gate
