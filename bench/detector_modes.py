"""RetinaFace on this CPU in each numeric mode and memory layout: milliseconds per photo and
parity with the reference detections, in one run.

    python -m bench detector_modes [--skip-bfloat16] [--int8]

Speed: best of five forward passes (with post-processing) on one 1600 x 1115 photo, two
threads. Parity: every photo in ../shared/data/photos against reference_detections.json, the
criteria of tests/test_detector_parity.py (IoU >= 0.95, score within 0.01, landmarks within
1.5 px, no extra face). Modes: the PyTorch network in float32 or bfloat16 autocast, contiguous
or channels-last, and the same network exported to ONNX and run by ONNX Runtime (float32): the
detector's own CPU path. --int8 adds that export quantised to 8 bits by ONNX Runtime (static,
per channel, calibrated on the first twelve reference photos).
"""

import json
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

import numpy as np
import torch

from bench.library import PHOTOS, WEIGHTS
from phototag.library.decode import decode_bytes
from phototag.weights import DETECTOR_WEIGHTS
from phototag.boxes import box_iou
from phototag.vision.detect import Detector
from phototag.vision.retinaface import OnPixels


def detector_in(mode):
    detector = Detector(str(WEIGHTS / DETECTOR_WEIGHTS))
    detector.network = OnPixels(detector.model)  # PyTorch instead of the ONNX Runtime session
    layout = torch.channels_last if "channels-last" in mode else torch.contiguous_format
    detector.model = detector.model.to(memory_format=layout)
    forward = detector.model.forward

    def run(batch):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled="bfloat16" in mode):
            outputs = forward(batch.contiguous(memory_format=layout))
        return tuple(t.float() for t in outputs)

    detector.model.forward = run
    return detector


def int8_detector(reference, folder):
    """The detector with its ONNX network quantised to 8 bits, calibrated on reference photos."""
    import onnxruntime
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, quant_pre_process,
                                          quantize_static)

    from phototag.vision.onnx_cpu import INPUT, retinaface_onnx

    detector = Detector(str(WEIGHTS / DETECTOR_WEIGHTS))
    batches, float_network = [], detector.network
    detector.network = lambda batch: batches.append(batch.contiguous().numpy().copy()) or float_network(batch)
    for item in reference["images"][:12]:
        pixels = decode_bytes((PHOTOS / item["file"]).read_bytes(), None, item["file"][-5:]).pixels
        detector.detect([pixels], second_look=False)

    class Calibration(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(batches)

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {INPUT: batch}

    (folder / "float32.onnx").write_bytes(retinaface_onnx(OnPixels(detector.model)))
    quant_pre_process(str(folder / "float32.onnx"), str(folder / "prepared.onnx"), skip_symbolic_shape=True)
    quantize_static(str(folder / "prepared.onnx"), str(folder / "int8.onnx"), Calibration(),
                    quant_format=QuantFormat.QDQ, per_channel=True)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(str(folder / "int8.onnx"), options,
                                           providers=["CPUExecutionProvider"])
    detector.network = lambda batch: tuple(torch.from_numpy(o) for o in session.run(
        None, {INPUT: batch.contiguous().numpy()}))
    return detector


def parity(detector, reference):
    worst_iou, worst_score, worst_landmark, problems = 1.0, 0.0, 0.0, 0
    for item in reference["images"]:
        data = (PHOTOS / item["file"]).read_bytes()
        pixels = decode_bytes(data, None, item["file"][-5:]).pixels
        faces = detector.detect([pixels], min_score=reference["min_score_kept"], second_look=False)[0]
        used = set()
        for ref in item["faces"]:
            overlaps = [box_iou(ref["box"], box) for box in faces.boxes]
            j = int(np.argmax(overlaps)) if overlaps else None
            if j is None or j in used or overlaps[j] < 0.95:
                problems += 1
                continue
            used.add(j)
            worst_iou = min(worst_iou, overlaps[j])
            worst_score = max(worst_score, abs(faces.scores[j] - ref["score"]))
            worst_landmark = max(worst_landmark, np.abs(faces.landmarks[j] - np.array(ref["landmarks"])).max())
        problems += len(faces) - len(used)
    ok = problems == 0 and worst_score <= 0.01 and worst_landmark <= 1.5
    return ok, f"worst IoU {worst_iou:.3f}, score {worst_score:.4f}, landmarks {worst_landmark:.2f} px, " \
               f"{problems} faces unmatched or extra"


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-bfloat16", action="store_true",
                        help="leave out the bfloat16 rows (minutes each where it is emulated)")
    parser.add_argument("--int8", action="store_true", help="add ONNX Runtime with 8-bit weights")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()} "
          "(bfloat16 is fast only with AVX512_BF16 or AMX)")
    reference = json.loads((PHOTOS / "reference_detections.json").read_text())
    photo = decode_bytes((PHOTOS / "people" / "ultralight__10.jpg").read_bytes(), 1600).pixels
    photo = np.ascontiguousarray(np.kron(photo, np.ones((2, 2, 1), np.uint8))[:1115, :1600])
    results = {}
    modes = ["float32", "float32 channels-last"]
    if not args.skip_bfloat16:
        modes += ["bfloat16", "bfloat16 channels-last"]
    modes.append("onnxruntime float32 (in use)")
    if args.int8:
        modes.append("onnxruntime int8")
    scratch = tempfile.TemporaryDirectory()
    for mode in modes:
        if mode == "onnxruntime int8":
            detector = int8_detector(reference, Path(scratch.name))
        elif mode.startswith("onnx"):
            detector = Detector(str(WEIGHTS / DETECTOR_WEIGHTS))
        else:
            detector = detector_in(mode)
        detector.detect([photo])
        times = []
        for _ in range(5):
            started = time.perf_counter()
            detector.detect([photo], second_look=False)
            times.append(time.perf_counter() - started)
        ok, detail = parity(detector, reference)
        results[mode] = min(times) * 1000
        print(f"{mode:<30} {results[mode]:6.1f} ms per {photo.shape[1]}x{photo.shape[0]} photo; "
              f"parity {'kept' if ok else 'BROKEN'}: {detail}", flush=True)
    base = results["float32"]
    print("ratio to float32: " + ", ".join(f"{mode} {ms / base:.2f}" for mode, ms in results.items()))
    pytorch = results["float32 channels-last"]
    print(f"ratio onnxruntime / PyTorch float32 channels-last: "
          f"{results['onnxruntime float32 (in use)'] / pytorch:.2f}")


if __name__ == "__main__":
    main()
