"""Face detection: RetinaFace over batches of photos → boxes, scores and 5 landmarks in pixels.

Post-processing follows the reference ``detect.py`` of biubug6/Pytorch_Retinaface: keep anchors
scoring at least 0.02, the 5,000 best, non-maximum suppression at IoU 0.4 with its ``+1`` pixel
area convention, the 750 best survivors. Photos of different sizes share a batch by padding at
the right and bottom with the channel means (zeros once the network subtracts them), and
anchors whose centre falls in the padding are dropped.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch

from .nms import nms
from .retinaface import OnPixels, load_retinaface

# The long side, in pixels, of the second look at a photo where nothing was found: a face that
# fills a small photo is found there, and no false face more on faceless photos (docs/speed.md,
# `python -m bench tight_crops`).
SECOND_LOOK_SIDE = 224


@dataclass
class Faces:
    """Faces found in one photo, best score first; coordinates in pixels of the input."""

    boxes: np.ndarray  # N×4 x1, y1, x2, y2
    scores: np.ndarray  # N
    landmarks: np.ndarray  # N×5×2: left eye, right eye, nose, left and right mouth corner

    def __len__(self):
        return len(self.scores)

    def select(self, keep):
        return Faces(self.boxes[keep], self.scores[keep], self.landmarks[keep])


def anchors(height, width, config, device):
    """Anchor centres and sizes in pixels (cx, cy, s, s) for an input of height × width."""
    rows = []
    for step, sizes in zip(config["steps"], config["min_sizes"]):
        fh, fw = math.ceil(height / step), math.ceil(width / step)
        cy, cx = torch.meshgrid(
            (torch.arange(fh, device=device, dtype=torch.float32) + 0.5) * step,
            (torch.arange(fw, device=device, dtype=torch.float32) + 0.5) * step,
            indexing="ij",
        )
        centres = torch.stack([cx, cy], dim=-1).reshape(-1, 1, 2).expand(-1, len(sizes), 2)
        scales = torch.tensor(sizes, device=device, dtype=torch.float32).view(1, -1, 1)
        scales = scales.expand(centres.shape[0], -1, 2)
        rows.append(torch.cat([centres, scales], dim=-1).reshape(-1, 4))
    return torch.cat(rows)


def decode_boxes(offsets, priors, variance):
    centres = priors[:, :2] + offsets[:, :2] * variance[0] * priors[:, 2:]
    sizes = priors[:, 2:] * torch.exp(offsets[:, 2:] * variance[1])
    top_left = centres - sizes / 2
    return torch.cat([top_left, top_left + sizes], dim=1)


def decode_landmarks(offsets, priors, variance):
    points = offsets.view(-1, 5, 2) * variance[0] * priors[:, None, 2:]
    return priors[:, None, :2] + points


def pixel_batch(images, device):
    """List of H×W×3 RGB uint8 arrays → one N×H×W×3 uint8 batch for ``OnPixels``. Photos of
    one size are stacked as they are (one photo: no copy at all); smaller ones are padded."""
    tensors = [torch.as_tensor(image) for image in images]
    if all(tensor.shape == tensors[0].shape for tensor in tensors):
        batch = tensors[0][None] if len(tensors) == 1 else torch.stack(tensors)
    else:
        height = max(tensor.shape[0] for tensor in tensors)
        width = max(tensor.shape[1] for tensor in tensors)
        padding = torch.tensor(OnPixels.PADDING, dtype=torch.uint8)
        batch = padding.expand(len(tensors), height, width, 3).clone()
        for i, tensor in enumerate(tensors):
            batch[i, : tensor.shape[0], : tensor.shape[1]] = tensor
    return batch.to(device, non_blocking=True)


def _resize_long_side(image, side):
    height, width = image.shape[:2]
    scale = side / max(height, width)
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    pixels = torch.as_tensor(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()
    resized = torch.nn.functional.interpolate(pixels, size=size, mode="bilinear",
                                              antialias=scale < 1, align_corners=False)
    return resized[0].round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


class Detector:
    """RetinaFace with the reference post-processing, over batches of photos."""

    def __init__(self, weights_path, device="cpu", confidence=0.02, nms_iou=0.4, top_k=5000,
                 keep_top_k=750):
        self.device = torch.device(device)
        self.model = load_retinaface(weights_path, self.device)
        self.model = self.model.to(memory_format=torch.channels_last)
        # The CPU runs the network through ONNX Runtime, in float32: the reference's answers in
        # less time than PyTorch's, where bfloat16 breaks parity (docs/speed.md). A GPU runs the
        # PyTorch network in fp16, channels-last.
        self.network = OnPixels(self.model).to(self.device)
        if self.device.type == "cpu":
            from ..weights import cache_dir
            from .onnx_cpu import OnnxNetwork

            self.network = OnnxNetwork(self.network, weights_path, cache_dir().parent / "onnx")
        self._anchors = {}  # (height, width) → anchors, for the last few input sizes
        self.config = self.model.config
        self.confidence = confidence
        self.nms_iou = nms_iou
        self.top_k = top_k
        self.keep_top_k = keep_top_k

    @property
    def name(self):
        return f"retinaface-{self.model.backbone_name}"

    @torch.inference_mode()
    def detect(self, images, min_score=0.5, second_look=True):
        """Faces in each of ``images`` (H×W×3 RGB uint8 arrays), scoring at least ``min_score``.

        ``second_look``: a photo where nothing is found is looked at once more with its long
        side at ``SECOND_LOOK_SIDE`` pixels. RetinaFace misses a face that fills the whole frame
        (a passport photo, an avatar, a tight crop: half of FER2013's 48-pixel faces); at that
        size it finds them, while a photo with faces never pays for the second pass.
        """
        results = self._detect(images, min_score)
        if second_look:
            missed = [i for i, image in enumerate(images)
                      if len(results[i]) == 0 and max(image.shape[:2]) != SECOND_LOOK_SIDE]
            by_shape = {}
            for i in missed:
                resized = _resize_long_side(images[i], SECOND_LOOK_SIDE)
                by_shape.setdefault(resized.shape, []).append((i, resized))
            for group in by_shape.values():
                found = self._detect([resized for _, resized in group], min_score)
                for (i, resized), faces in zip(group, found):
                    height, width = images[i].shape[:2]
                    sx, sy = width / resized.shape[1], height / resized.shape[0]
                    results[i] = Faces(faces.boxes * [sx, sy, sx, sy], faces.scores,
                                       faces.landmarks * [sx, sy])
        return results

    def _priors(self, height, width):
        """Anchors for an input of height × width (5 ms at 1600 × 1200). A camera's photos come
        in a few sizes and are kept; screenshots and crops come in any, so only the last few."""
        key = (height, width)
        if key not in self._anchors:
            if len(self._anchors) >= 8:
                del self._anchors[next(iter(self._anchors))]
            self._anchors[key] = anchors(height, width, self.config, self.device)
        return self._anchors[key]

    def _detect(self, images, min_score):
        if not images:
            return []
        batch = pixel_batch(images, self.device)
        if self.device.type == "cuda":
            with torch.autocast("cuda", dtype=torch.float16):
                outputs = self.network(batch)
            offsets, scores, landmark_offsets = (t.float() for t in outputs)
        else:
            offsets, scores, landmark_offsets = self.network(batch)
        priors = self._priors(*batch.shape[1:3])
        variance = self.config["variance"]
        results = []
        for i, image in enumerate(images):
            height, width = image.shape[:2]
            inside = (priors[:, 0] < width) & (priors[:, 1] < height)
            # Filtering at min_score before NMS gives the reference's answer: a box scoring
            # at least min_score can only be suppressed by a higher-scoring one, which passes
            # the filter too. It spares NMS the thousands of low-score anchors.
            keep = (scores[i] > self.confidence) & (scores[i] >= min_score) & inside
            score = scores[i][keep]
            order = score.argsort(descending=True)[: self.top_k]
            prior = priors[keep][order]
            score = score[order]
            boxes = decode_boxes(offsets[i][keep][order], prior, variance)
            points = decode_landmarks(landmark_offsets[i][keep][order], prior, variance)
            # The reference NMS counts box sides as (x2 - x1 + 1): shifting x2, y2 by one matches it.
            survivors = nms(boxes + boxes.new_tensor([0, 0, 1, 1]), score, self.nms_iou)
            survivors = survivors[: self.keep_top_k]
            results.append(
                Faces(
                    boxes[survivors].cpu().numpy().astype(np.float64),
                    score[survivors].cpu().numpy().astype(np.float64),
                    points[survivors].cpu().numpy().astype(np.float64),
                )
            )
        return results
