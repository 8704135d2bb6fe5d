"""Networks on the CPU through ONNX Runtime: RetinaFace, and the face branch's backbone.

On the CPU RetinaFace gives PyTorch's answers (to 1e-4) in less time, and the tagger with its
face backbone there tags more faces per second (docs/speed.md). Each network is exported from the PyTorch model once per weights file and PyTorch version
and kept in the user cache, until no run has read it for a month; where the cache cannot be
written, the export stays in memory for the run.
"""

import io
import os
import re
import time
import warnings
from pathlib import Path

import torch

from ..files import file_sha256, write_atomically

OPSET = 17
INPUT = "image"
# An export no run has read for this long belongs to a weights file (or a PyTorch) no longer in
# use: each is 2-18 MB, and every upgrade of the weights would otherwise leave one more behind.
STALE_AFTER_S = 30 * 24 * 3600
PART_AFTER_S = 24 * 3600  # a part file this old was left by a run killed while writing it


def _export(model, example, inputs, outputs, dynamic_axes):
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter, deprecated but in the pinned PyTorch: the torch.export one
        # needs one more package (onnxscript).
        warnings.simplefilter("ignore", DeprecationWarning)
        # FaceMesh's padding slices cannot be folded into constants: harmless, said at length.
        warnings.filterwarnings("ignore", message="Constant folding", category=UserWarning)
        torch.onnx.export(model, (example,), buffer, dynamo=False, input_names=inputs,
                          output_names=outputs, dynamic_axes=dynamic_axes, opset_version=OPSET)
    return buffer.getvalue()


def retinaface_onnx(model):
    """RetinaFace's ONNX bytes (``model``: ``OnPixels``, RGB uint8 photos in): any batch size and
    photo size."""
    return _export(model, torch.zeros(1, 480, 640, 3, dtype=torch.uint8), [INPUT],
                   ["offsets", "scores", "landmarks"], {INPUT: {0: "photos", 1: "height", 2: "width"}})


def export_path(name, weights_path, cache):
    """Where the export of network ``name`` built from ``weights_path`` is kept."""
    version = torch.__version__.replace("+", "-")
    return Path(cache) / f"{name}-{file_sha256(weights_path)[:16]}-torch{version}-opset{OPSET}.onnx"


def read_export(path):
    """The export's bytes; its modification time is set to now, marking it as still in use."""
    data = Path(path).read_bytes()
    try:
        os.utime(path)
    except OSError:  # a read-only cache: nothing is pruned from it either
        pass
    return data


EXPORT_NAME = re.compile(r".+-[0-9a-f]{16}-torch.+-opset\d+\.onnx")


def prune_stale_exports(kept):
    """Remove the exports beside ``kept`` that no run has read for STALE_AFTER_S (built from
    weights files, or by a PyTorch, no longer in use: re-made in seconds if wanted again), and
    part files left by runs killed while writing."""
    now = time.time()
    kept = Path(kept)
    for path in kept.parent.iterdir():
        try:
            age = now - path.stat().st_mtime
            if path != kept and ((EXPORT_NAME.fullmatch(path.name) and age > STALE_AFTER_S) or
                                 (path.name.endswith(".part") and age > PART_AFTER_S)):
                path.unlink()
        except OSError:  # gone already (another run pruned it), or not ours to remove
            pass


def exported(model, weights_path, cache, name="retinaface-pixels", export=retinaface_onnx):
    """The ONNX bytes for ``model`` (built from ``weights_path``), from ``cache`` if there."""
    path = export_path(name, weights_path, cache)
    try:
        return read_export(path)
    except OSError:
        pass
    data = export(model)
    try:
        write_atomically(path, data)  # a run killed mid-write or a concurrent one: no half file
    except OSError:
        return data
    prune_stale_exports(path)
    return data


def session(data, threads=None, device="cpu", arena=False):
    """An ONNX Runtime session for the graph ``data``; on a CUDA device where this ONNX
    Runtime has CUDA (the onnxruntime-gpu package), there. ``arena``: ONNX Runtime keeps the
    memory of its largest input for the next one; without it, a crowd photo does not leave
    hundreds of MB held for the rest of the run, for a slightly slower detector (docs/speed.md)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.enable_cpu_mem_arena = arena
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    # Threads that wait by spinning take the cores from the decode workers running beside the
    # detector (docs/speed.md).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers = ["CPUExecutionProvider"]
    if str(device).startswith("cuda") and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        index = str(device).partition(":")[2] or "0"
        providers.insert(0, ("CUDAExecutionProvider", {"device_id": int(index)}))
    return onnxruntime.InferenceSession(data, options, providers=providers)


class OnnxNetwork:
    """Called like the PyTorch network (``OnPixels``): a uint8 batch of photos in, (offsets, scores,
    landmarks) out."""

    def __init__(self, model, weights_path, cache, threads=None):
        self.session = session(exported(model, weights_path, cache), threads)

    def __call__(self, batch):
        outputs = self.session.run(None, {INPUT: batch.contiguous().numpy()})
        return tuple(torch.from_numpy(output) for output in outputs)


class OnnxFaceEncoder(torch.nn.Module):
    """Stands in for a model's face encoder at inference: N×3×S×S faces in, N×F features out."""

    def __init__(self, data, threads=None):
        super().__init__()
        self.session = session(data, threads)
        self.features = self.session.get_outputs()[0].shape[1]

    @classmethod
    def export(cls, encoder, size, weights_path, cache, threads=None, task=None):
        """From the PyTorch encoder, exported once into ``cache``; ``task``: the encoder is that
        task's own face backbone."""
        def export(module):
            return _export(module.float().eval(), torch.zeros(2, 3, size, size), ["face"], ["features"],
                           {"face": {0: "faces"}})

        return cls(exported(encoder, weights_path, cache, _face_name(size, task), export), threads)

    @classmethod
    def cached(cls, size, weights_path, cache, threads=None, task=None):
        """From an earlier run's export, or None: then the PyTorch network need not be built."""
        try:
            data = read_export(export_path(_face_name(size, task), weights_path, cache))
        except OSError:
            return None
        return cls(data, threads)

    def forward(self, face):
        return torch.from_numpy(self.session.run(None, {"face": face.float().contiguous().numpy()})[0])


def _face_name(size, task):
    return f"face{size}" if task is None else f"face{size}-{task}"
