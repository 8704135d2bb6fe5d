"""Weights out of a quantised TFLite file: every convolution's filter and bias, dequantised, in
the order the graph runs them. Reads the flatbuffer with the ``tflite`` package (its schema in
Python); nothing is executed."""

import numpy as np

CONVOLUTIONS = ("CONV_2D", "DEPTHWISE_CONV_2D")


def _tflite():
    try:
        import tflite
    except ImportError:
        raise ValueError("reading the MobileNetV2 start needs the tflite package: "
                         "pip install 'phototag[train]'") from None
    return tflite


def _dequantised(graph, model, tensor_index):
    tflite = _tflite()

    tensor = graph.Tensors(tensor_index)
    raw = model.Buffers(tensor.Buffer()).DataAsNumpy()
    dtype = {tflite.TensorType.UINT8: np.uint8, tflite.TensorType.INT8: np.int8,
             tflite.TensorType.INT32: np.int32, tflite.TensorType.FLOAT32: np.float32}[tensor.Type()]
    values = np.frombuffer(raw.tobytes(), dtype=dtype).reshape(tensor.ShapeAsNumpy())
    if dtype == np.float32:
        return values.astype(np.float32)
    q = tensor.Quantization()
    scale, zero = q.ScaleAsNumpy(), q.ZeroPointAsNumpy()
    axis = q.QuantizedDimension()
    if np.size(scale) > 1:  # per-channel: broadcast along the quantised dimension
        shape = [1] * values.ndim
        shape[axis] = -1
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return ((values.astype(np.float64) - zero) * scale).astype(np.float32)


def convolutions(path):
    """[(filter, bias)] in graph order; filters in PyTorch's layout (out, in/groups, h, w)."""
    tflite = _tflite()

    model = tflite.Model.GetRootAsModel(open(path, "rb").read(), 0)
    graph = model.Subgraphs(0)
    codes = {value: name for name, value in vars(tflite.BuiltinOperator).items() if name.isupper()}
    found = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        kind = codes[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        if kind not in CONVOLUTIONS:
            continue
        filters = _dequantised(graph, model, op.Inputs(1))
        bias = _dequantised(graph, model, op.Inputs(2))
        # CONV_2D stores (out, h, w, in); DEPTHWISE_CONV_2D (1, h, w, channels).
        order = (0, 3, 1, 2) if kind == "CONV_2D" else (3, 0, 1, 2)
        found.append((np.ascontiguousarray(filters.transpose(order)), bias))
    return found
