"""The three crops the attribute models read, per face, sampled from one decoded photo.

- face: aligned by its 5 landmarks (similarity transform onto the standard 5-point template);
- context: the whole photo (letterboxed square, as CAER does) or ``k ×`` the face box, with that
  face blacked out;
- gate: the same context crop, unmasked, for GatingNet.

All crops of one photo come from a single ``grid_sample`` call on the device. Training and
inference both call ``face_regions``, so the model sees the same crops in both.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

# The standard 5-point face template (ArcFace's, for 112 × 112 crops), as fractions of the side:
# left eye, right eye, nose tip, left and right mouth corner.
TEMPLATE = torch.tensor(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655],
     [70.7299, 92.2041]]
) / 112.0


@dataclass
class Regions:
    face: torch.Tensor  # K×3×face_size×face_size, float RGB in [0, 1]
    context: torch.Tensor  # K×3×context_size×context_size, the face masked
    gate: torch.Tensor  # G×3×context_size×context_size: the distinct unmasked crops
    gate_index: torch.Tensor  # K: which gate crop belongs to each face

    def gates_per_face(self):
        return self.gate[self.gate_index]


def photo_tensor(pixels, device="cpu"):
    """H×W×3 uint8 (numpy or tensor) → 3×H×W float in [0, 1] on ``device``."""
    tensor = torch.as_tensor(pixels).to(device, non_blocking=True)
    return tensor.permute(2, 0, 1).float().div_(255.0)


def similarity_from(template, points):
    """Least-squares similarity (scale, rotation, shift; no reflection) taking ``template``
    (5×2 or K×5×2) onto ``points`` (K×5×2). Returns A (K×2×2) and b (K×2): point = A·t + b."""
    template = template.expand_as(points)
    t = torch.complex(template[..., 0], template[..., 1])
    p = torch.complex(points[..., 0], points[..., 1])
    t_centre, p_centre = t.mean(dim=1, keepdim=True), p.mean(dim=1, keepdim=True)
    tc, pc = t - t_centre, p - p_centre
    a = (tc.conj() * pc).sum(dim=1) / (tc.abs() ** 2).sum(dim=1).clamp_min(1e-12)
    shift = p_centre.squeeze(1) - a * t_centre.squeeze(1)
    A = torch.stack([torch.stack([a.real, -a.imag], -1), torch.stack([a.imag, a.real], -1)], -2)
    return A, torch.stack([shift.real, shift.imag], -1)


def _grid(A, b, size, height, width):
    """Sampling grid (normalised, align_corners=False) for output pixel centres mapped by A, b."""
    steps = torch.arange(size, device=A.device, dtype=A.dtype) + 0.5
    ys, xs = torch.meshgrid(steps, steps, indexing="ij")
    out = torch.stack([xs, ys], -1).view(1, size * size, 2)
    src = out @ A.transpose(1, 2) + b[:, None, :]
    scale = torch.tensor([2.0 / width, 2.0 / height], device=A.device, dtype=A.dtype)
    return (src * scale - 1.0).view(len(A), size, size, 2)


def sample(photo, A, b, size):
    """K crops of ``size`` × ``size`` from one 3×H×W photo; source = A·(output pixel) + b.

    Crops that shrink the photo by more than 1.5× are sampled from an antialiased, downscaled
    copy, so a whole 1600-pixel photo does not alias into a 224-pixel context crop.
    """
    if len(A) == 0:
        return photo.new_zeros((0, 3, size, size))
    height, width = photo.shape[1:]
    crops = photo.new_empty((len(A), 3, size, size))
    factors = torch.linalg.det(A).abs().sqrt().clamp_min(1.0).floor()
    factors = torch.where(factors < 1.5, torch.ones_like(factors), factors)
    for factor in factors.unique().tolist():
        chosen = (factors == factor).nonzero().squeeze(1)
        source = photo
        if factor > 1:
            shape = (max(1, round(height / factor)), max(1, round(width / factor)))
            source = F.interpolate(photo[None], size=shape, mode="bilinear", antialias=True,
                                   align_corners=False)[0]
        grid = _grid(A[chosen], b[chosen], size, height, width)
        grid = grid.reshape(1, len(chosen) * size, size, 2)
        out = F.grid_sample(source[None], grid, mode="bilinear", padding_mode="zeros",
                            align_corners=False)
        crops[chosen] = out.view(3, len(chosen), size, size).permute(1, 0, 2, 3)
    return crops


def context_square(boxes, height, width, scale):
    """Centre and side of each face's context square: the whole photo (scale 0) or k × its box."""
    if scale and scale > 0:
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        sides = (boxes[:, 2:] - boxes[:, :2]).max(dim=1).values * scale
    else:
        centres = boxes.new_tensor([width / 2, height / 2]).expand(len(boxes), 2)
        sides = boxes.new_full((len(boxes),), float(max(width, height)))
    return centres, sides


def align_transform(landmarks, face_size, margin=0):
    """A, b taking a face crop's pixels onto the photo: the 5-point template, scaled to
    ``face_size``, onto each face's landmarks (K×5×2). With ``margin`` the crop grows by that
    many pixels on every side at the same scale, so its centre is the plain crop exactly."""
    template = TEMPLATE.to(landmarks.device) * face_size
    A, b = similarity_from(template[None].expand(len(landmarks), 5, 2), landmarks)
    if margin:
        b = b - (A @ landmarks.new_full((2, 1), float(margin))).squeeze(-1)
    return A, b


def context_transform(boxes, height, width, scale, context_size):
    """A, b of each face's context crop, and its face box (K×4) in that crop's pixels."""
    centres, sides = context_square(boxes, height, width, scale)
    step = sides / context_size
    A = torch.diag_embed(torch.stack([step, step], -1))
    b = centres - sides[:, None] / 2
    box_in_crop = (boxes.view(-1, 2, 2) - b[:, None, :]) / step[:, None, None]
    return A, b, box_in_crop.view(-1, 4)


def mask_boxes(crops, boxes):
    """``crops`` (K×3×S×S) with each crop's box (K×4, in its pixels) blacked out."""
    size = crops.shape[-1]
    steps = torch.arange(size, device=crops.device, dtype=torch.float32) + 0.5
    boxes = boxes.to(crops.device, torch.float32)
    inside_x = (steps[None] >= boxes[:, 0:1]) & (steps[None] <= boxes[:, 2:3])
    inside_y = (steps[None] >= boxes[:, 1:2]) & (steps[None] <= boxes[:, 3:4])
    mask = inside_y[:, :, None] & inside_x[:, None, :]
    return crops.masked_fill(mask[:, None], 0.0)


def face_regions(photo, boxes, landmarks, face_size, context_size, context_scale=0.0):
    """The three crops for each face of one photo.

    photo: 3×H×W float in [0, 1]; boxes: K×4 and landmarks: K×5×2 in that photo's pixels.
    """
    boxes = boxes.to(photo.device, torch.float32)
    landmarks = landmarks.to(photo.device, torch.float32)
    height, width = photo.shape[1:]
    A, b = align_transform(landmarks, face_size)
    face = sample(photo, A, b, face_size)
    cA, cb, box_in_crop = context_transform(boxes, height, width, context_scale, context_size)
    whole_photo = not (context_scale and context_scale > 0)
    if whole_photo:
        # Every face of the photo shares one unmasked crop: cut it (and gate it) once.
        gate = sample(photo, cA[:1], cb[:1], context_size)
        gate_index = torch.zeros(len(boxes), dtype=torch.long, device=photo.device)
        unmasked = gate.expand(len(boxes), -1, -1, -1)
    else:
        gate = sample(photo, cA, cb, context_size)
        gate_index = torch.arange(len(boxes), device=photo.device)
        unmasked = gate
    context = mask_boxes(unmasked, box_in_crop)
    if len(boxes) == 0:
        gate = gate[:0]
    return Regions(face, context, gate, gate_index)
