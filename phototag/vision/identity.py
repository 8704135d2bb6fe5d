"""Who a face is: SFace's 128-number embedding of the face aligned by its five landmarks onto
the 112-pixel ArcFace template, through ONNX Runtime.

The published network (OpenCV's model zoo) is int8 block-quantised and declares every weight as
a graph input as well, which ONNX Runtime refuses; ``float_graph`` makes it a plain float32
graph once (weights dequantised, only the photo as input, any batch size) and the ONNX cache
keeps it, as it keeps the other exports. An index run embeds each face once: averaged with its
mirror image's, the embedding groups 2 points more pairs at the same precision but costs twice
as much, which index runs cannot afford (docs/people.md). Embeddings are L2-normalised, so that
a dot product is the cosine similarity.
"""

import numpy as np
import torch

from ..weights import weights_id
from .regions import align_transform, photo_tensor, sample

SIDE = 112  # SFace's input: the ArcFace template's crop
DIMENSIONS = 128
MIRROR = False  # see the module's text
# What SFace makes of a face says whether it is one: the length of its answer before it is
# normalised is short for what is not a face (a lamp, flowers, the back of a head). Below this,
# the detection is dropped: half the false faces of the shared photos go, and 1 real web face in
# 385 (docs/accuracy.md, `python -m bench false_faces`).
FACE_NORM_FLOOR = 4.45


def _dequantised(x, scale, zero_point, axis, block_size):
    """ONNX DequantizeLinear (opset 21, blocked along ``axis``) in numpy."""
    x = x.astype(np.float32)
    if scale.ndim == 0 or scale.size == 1:
        return (x - zero_point.astype(np.float32)) * scale
    axis = axis % x.ndim
    repeat = block_size or (x.shape[axis] // scale.shape[axis])
    scale = np.repeat(scale, repeat, axis=axis).take(range(x.shape[axis]), axis=axis)
    zero = np.repeat(zero_point.astype(np.float32), repeat, axis=axis).take(range(x.shape[axis]),
                                                                           axis=axis)
    return (x - zero) * scale


def float_graph(path):
    """The SFace ONNX file at ``path`` as a float32 graph ONNX Runtime runs: bytes."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    constants = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    kept_nodes, folded = [], {}
    for node in graph.node:
        inputs = [folded.get(name, constants.get(name)) for name in node.input]
        if node.op_type == "DequantizeLinear" and all(v is not None for v in inputs):
            attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            zero = inputs[2] if len(inputs) > 2 else np.zeros_like(inputs[1], dtype=np.int8)
            folded[node.output[0]] = _dequantised(inputs[0], inputs[1], zero,
                                                  attributes.get("axis", 1),
                                                  attributes.get("block_size", 0))
        elif node.op_type == "Reshape" and all(v is not None for v in inputs):
            folded[node.output[0]] = inputs[0].reshape(inputs[1])
        else:
            kept_nodes.append(node)
    used = {name for node in kept_nodes for name in node.input}
    initializers = [numpy_helper.from_array(value.astype(np.float32), name)
                    for name, value in folded.items() if name in used]
    initializers += [i for i in graph.initializer if i.name in used and i.name not in folded]
    photo = next(i for i in graph.input if i.name not in constants and i.name not in folded
                 and i.name in used and not i.name.endswith("_weight") and not i.name.endswith("_bias"))
    photo.type.tensor_type.shape.dim[0].dim_param = "faces"
    for output in graph.output:
        output.type.tensor_type.shape.dim[0].dim_param = "faces"
    del graph.value_info[:]  # shapes of a batch of one, from the published file
    del graph.node[:]
    graph.node.extend(kept_nodes)
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    del graph.input[:]
    graph.input.extend([photo])
    onnx.checker.check_model(model)
    return model.SerializeToString()


def aligned_faces(pixels, landmarks, device="cpu"):
    """K×3×112×112 float RGB in 0-255: each face of one photo (``pixels``, H×W×3 uint8) aligned
    by its landmarks (K×5×2, in that photo's pixels) onto the ArcFace template."""
    landmarks = torch.as_tensor(landmarks, dtype=torch.float32, device=device)
    A, b = align_transform(landmarks, SIDE)
    return sample(photo_tensor(pixels, device), A, b, SIDE).mul_(255.0)


def normalised(vectors):
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class FaceEmbedder:
    """SFace through ONNX Runtime: aligned faces in, L2-normalised embeddings out."""

    def __init__(self, weights_path, cache, threads=None, device="cpu"):
        from .onnx_cpu import exported, session

        data = exported(weights_path, weights_path, cache, name="sface-float32",
                        export=float_graph)
        self.session = session(data, threads, device=device)
        self.input = self.session.get_inputs()[0].name
        self.id = weights_id(weights_path)

    def embed_aligned(self, faces, batch=16, mirror=MIRROR, lengths=False):
        """N×3×112×112 aligned faces (0-255) → N×128 float32; with ``mirror``, each averaged
        with its mirror image's; with ``lengths``, also each answer's length before it was
        normalised (the mean of the two views' with ``mirror``)."""
        faces = np.ascontiguousarray(torch.as_tensor(faces, dtype=torch.float32).cpu().numpy())
        out = np.empty((len(faces), DIMENSIONS), dtype=np.float32)
        norms = np.empty(len(faces), dtype=np.float32)
        for start in range(0, len(faces), batch):
            part = faces[start:start + batch]
            views = np.concatenate([part, part[..., ::-1]]) if mirror else part
            raw = self.session.run(None, {self.input: np.ascontiguousarray(views)})[0]
            length = np.linalg.norm(raw, axis=1)
            vectors = normalised(raw)
            out[start:start + len(part)] = vectors[:len(part)] + (vectors[len(part):] if mirror else 0)
            norms[start:start + len(part)] = (length[:len(part)] + length[len(part):]) / 2 if mirror \
                else length
        return (normalised(out), norms) if lengths else normalised(out)

    def embed(self, photos):
        """``photos``: (pixels, landmarks K×5×2) → per photo, (K×128 float32 embeddings,
        K sharpness values, K booleans: whether each is a face at all, FACE_NORM_FLOOR)."""
        crops = [aligned_faces(pixels, landmarks) for pixels, landmarks in photos if len(landmarks)]
        if not crops:
            return [(np.zeros((0, DIMENSIONS), np.float32), np.zeros(0), np.zeros(0, bool))
                    for _ in photos]
        crops = torch.cat(crops)
        (vectors, lengths), sharp = self.embed_aligned(crops, lengths=True), sharpness(crops)
        results, start = [], 0
        for _, landmarks in photos:
            part = slice(start, start + len(landmarks))
            results.append((vectors[part], sharp[part], lengths[part] >= FACE_NORM_FLOOR))
            start += len(landmarks)
        return results


LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)


def sharpness(faces):
    """Variance of the Laplacian of each aligned face (N×3×112×112, 0-255), grey, inside the
    template's middle: high for a sharp face, low for a blurred one (the usual cheap measure;
    it ranks the frames of one burst, it is no absolute scale)."""
    grey = (faces * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    middle = grey[..., 24:96, 16:96]
    edges = torch.nn.functional.conv2d(middle, LAPLACIAN)
    return edges.flatten(1).var(1).numpy()
