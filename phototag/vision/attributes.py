"""The attributes stage of an index run: emotion and age group for every detected face."""

import contextlib
import warnings
from dataclasses import dataclass

import torch

from .regions import face_regions, photo_tensor
from ..weights import weights_id
from .models import WITH_FACE_ENCODER, predict
from .weightsfile import load_weights, read_metadata


@dataclass
class FaceTags:
    """What the model says about one face: the best label, its probability, every class's
    probability, per task; the weight GatingNet gave each branch, per task (gated models)."""

    emotion: str
    emotion_score: float
    emotion_probs: dict
    age_group: str
    age_score: float
    age_probs: dict
    gate_face: dict = None
    gate_context: dict = None


class AttributeTagger:
    """A trained attribute model over batches of faces from many photos."""

    def __init__(self, path, device="cpu", face_batch=None, allow_untrained=False, onnx=True):
        """``allow_untrained`` is for speed benchmarks only, which throw their index away.
        ``onnx``: on the CPU, the face branch's backbone runs through ONNX Runtime."""
        from ..weights import cache_dir

        self.device = torch.device(device)
        config, _ = read_metadata(path)
        onnx = onnx and self.device.type == "cpu" and config.kind in WITH_FACE_ENCODER
        exports = cache_dir().parent / "onnx"
        # An earlier run's export of the face backbone: that network (MobileNetV2 is timm's,
        # seconds to import) is then not built at all.
        cached = _cached_face_encoder(config, path, exports) if onnx else None
        self.model, self.info = load_weights(path, self.device, face_encoder=cached)
        if not self.info.get("epochs") and not allow_untrained:
            raise ValueError(f"{path} records no training: phototag stores no untrained predictions")
        # channels-last: on a GPU with fp16; on the CPU in float32 it runs FaceMesh's depthwise
        # convolutions about twice as fast (bfloat16 autocast there is many times slower).
        self.model = self.model.to(memory_format=torch.channels_last)
        if onnx and cached is None:
            self._face_encoder_on_onnx(path, exports)
        self.config = self.model.config
        self.id = weights_id(path)
        # Faces per forward pass: on the CPU 16 keeps a crowd photo's tagging within a few
        # hundred MB at the same speed (docs/speed.md); a GPU takes more.
        self.face_batch = face_batch or (64 if self.device.type == "cuda" else 16)

    def _face_encoder_on_onnx(self, path, exports):
        """``export_face_encoder``; a backbone that does not export stays in PyTorch."""
        try:
            export_face_encoder(self.model, path, exports)
        except Exception as exc:  # noqa: BLE001 - an exporter's or ONNX Runtime's own errors
            warnings.warn(f"the face branch runs in PyTorch: its export to ONNX failed ({exc})")

    @torch.inference_mode()
    def tag(self, photos):
        """``photos``: (pixels H×W×3 uint8, boxes K×4, landmarks K×5×2) in working-size pixels.
        Returns, per photo, one FaceTags per face."""
        crops, owners = [], []
        for number, (pixels, boxes, landmarks) in enumerate(photos):
            if len(boxes) == 0:
                continue
            regions = face_regions(
                photo_tensor(pixels, self.device), torch.as_tensor(boxes), torch.as_tensor(landmarks),
                self.config.face_size, self.config.context_size, self.config.context_scale,
            )
            crops.append(regions)
            owners += [number] * len(boxes)
        results = [[] for _ in photos]
        if not crops:
            return results
        answers = []
        for face, context, gate, gate_index in _face_batches(crops, self.face_batch):
            with self._autocast():
                out = predict(self.model, face, context, gate, gate_index, flip=self.config.test_flip,
                              emotion_zooms=self.config.emotion_zooms)
            answers += self._describe(out, len(face))
        for owner, answer in zip(owners, answers):
            results[owner].append(answer)
        return results

    def _autocast(self):
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def _describe(self, out, count):
        labels = {"emotion": self.config.emotions, "age": self.config.age_groups}
        probs = {task: torch.softmax(out.logits[task].float(), 1).cpu() for task in labels}
        gates = {task: out.gates[task].float().cpu() for task in labels} if out.gates else None
        answers = []
        for i in range(count):
            best = {}
            for task, names in labels.items():
                p = probs[task][i]
                top = int(p.argmax())
                best[task] = (names[top], round(float(p[top]), 4),
                              {n: round(float(v), 4) for n, v in zip(names, p)})
            answers.append(FaceTags(
                *best["emotion"], *best["age"],
                gate_face={t: round(float(gates[t][i, 0]), 4) for t in labels} if gates else None,
                gate_context={t: round(float(gates[t][i, 1]), 4) for t in labels} if gates else None,
            ))
        return answers


def export_face_encoder(model, path, exports):
    """Put the face branch's backbone, most of the tagging time, on ONNX Runtime (exported
    once into ``exports``): a faster tagging step, the same tags (docs/speed.md). With a
    backbone per task, each is exported
    on its own: age's then runs on the crops alone, not on emotion's zoomed views."""
    from .onnx_cpu import OnnxFaceEncoder

    size, encoder = model.config.face_size, model.face_encoder
    if model.config.face_backbone_per_task:
        for task in list(encoder.encoders):
            encoder.encoders[task] = OnnxFaceEncoder.export(encoder.encoders[task], size, path, exports,
                                                            task=task)
    else:
        model.face_encoder = OnnxFaceEncoder.export(encoder, size, path, exports)


def _cached_face_encoder(config, path, exports):
    """The face encoder from earlier exports, or None (then built, and exported again)."""
    from .models import PerTaskFaceEncoder
    from .onnx_cpu import OnnxFaceEncoder

    try:
        if not config.face_backbone_per_task:
            return OnnxFaceEncoder.cached(config.face_size, path, exports)
        encoders = {task: OnnxFaceEncoder.cached(config.face_size, path, exports, task=task)
                    for task in config.tasks}
        if any(encoder is None for encoder in encoders.values()):
            return None
        return PerTaskFaceEncoder(config.face_backbone, config.face_size, config.tasks, encoders)
    except Exception:  # noqa: BLE001 - a damaged export: made again from the PyTorch network
        return None


def _face_batches(crops, size):
    """Faces of many photos in batches of about ``size``, each with the distinct gate crops its
    faces need (a photo's whole-photo crop goes through GatingNet once, not once per face)."""
    face = torch.cat([r.face for r in crops])
    context = torch.cat([r.context for r in crops])
    offsets, total = [], 0
    for r in crops:
        offsets.append(r.gate_index + total)
        total += len(r.gate)
    gate_all = torch.cat([r.gate for r in crops])
    gate_index_all = torch.cat(offsets)
    for start in range(0, len(face), size):
        part = slice(start, start + size)
        needed, gate_index = torch.unique(gate_index_all[part], return_inverse=True)
        yield face[part], context[part], gate_all[needed], gate_index
