"""Each stage of an index run alone, then the whole run: does the pipeline add little beyond
its slowest stage?

    python -m bench pipeline [--photos 16] [--preset cpu|original|...] [--device auto]
                             [--workers N] [--threads N] [--keep DIR]

Libraries: generated 12-megapixel JPEGs (real faces from ../shared pasted on blurred real
scenes) and ../shared/data/photos. Stages, in photos/s: decode (DataLoader workers, as the
index run uses them), detection alone on pre-decoded photos, the attribute model alone (regions
and forward) on pre-decoded photos and their detections, and the full `index` run with its
SQLite writes, with tagging and with --faces-only. The attribute model is the shipped weights
(what an index run uses), or with --preset an untrained model of that preset (speed does not
depend on training); the index made here is thrown away. Ratios last.
"""

import argparse
import dataclasses
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

import torch
from torch.utils.data import DataLoader

from bench.library import PHOTOS, SHIPPED, WEIGHTS, make_library
from phototag.library import scan
from phototag.devices import default_batch_size, default_workers, resolve_device
from phototag.local_runner import PhotoFiles, keep_list, shared_memory_room
from phototag.pipeline import IndexOptions, run_index
from phototag.stages import detect_records
from phototag.weights import DETECTOR_WEIGHTS
from phototag.store import Writer
from phototag.vision.attributes import AttributeTagger
from phototag.vision.config import PRESETS
from phototag.vision.detect import Detector
from phototag.vision.models import build_model
from phototag.vision.weightsfile import save_weights


def timed(function):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    started = time.perf_counter()
    result = function()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - started, result


def measure(root, model_path, device, batch_size, workers):
    entries = [e for e in scan.walk([root]).files if e.error is None]
    n = len(entries)
    options = IndexOptions(roots=[str(root)], weights_dir=str(WEIGHTS), device=device,
                           batch_size=batch_size, workers=workers, attributes=str(model_path),
                           allow_untrained=True)

    def decode_all():
        shared = shared_memory_room(workers, batch_size, options.max_size)
        loader = DataLoader(PhotoFiles(entries, options.max_size, shared_memory=shared),
                            batch_size=batch_size, num_workers=workers, collate_fn=keep_list)
        return [photo for batch in loader for photo in batch]

    decode_s, photos = timed(decode_all)
    detector = Detector(str(WEIGHTS / DETECTOR_WEIGHTS), device=device)
    tagger = AttributeTagger(model_path, device=device, allow_untrained=True)
    batches = [photos[i:i + batch_size] for i in range(0, n, batch_size)]
    plain = dataclasses.replace(options, attributes=None)
    with torch.inference_mode():
        detect_records(detector, batches[0], plain)  # warm-up
        detect_s, _ = timed(lambda: [detect_records(detector, b, plain) for b in batches])
        found = []
        for batch in batches:
            kept = {}
            for i, photo in enumerate(batch):
                if photo.error is None:
                    kept[i] = detector.detect([photo.pixels], options.min_score)[0]
            found.append([(batch[i].pixels, f.boxes, f.landmarks) for i, f in kept.items()])
        tagger.tag(found[0])  # warm-up
        model_s, _ = timed(lambda: [tagger.tag(group) for group in found])
    n_faces = sum(len(f[1]) for group in found for f in group)
    full = {}
    faces_only = dataclasses.replace(options, attributes=None, faces_only=True)
    for name, run_options in (("tagging", options), ("faces only", faces_only)):
        with tempfile.TemporaryDirectory() as tmp:
            store = Writer(os.path.join(tmp, "index.db"))
            full_s, summary = timed(lambda: run_index(store, run_options))
            store.close()
        assert summary.processed == n
        full[name] = n / full_s
    rates = {"decode": n / decode_s, "detect": n / detect_s, "attributes": n / model_s}
    return n, n_faces, rates, full


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--photos", type=int, default=16, help="generated 12-megapixel photos")
    parser.add_argument("--preset", default=None, help="an untrained attribute model of this "
                        "preset (cpu, original, ...) instead of the shipped weights")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads in the main process [default: torch's own choice]")
    parser.add_argument("--keep", help="folder for the generated photos (reused)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    batch_size = args.batch_size or default_batch_size(device)
    workers = default_workers(device) if args.workers is None else args.workers
    work = Path(args.keep or tempfile.mkdtemp(prefix="phototag-pipeline-"))
    generated = work / "12mp"
    make_library(generated, args.photos, size=(4000, 3000), faces=(1, 6))
    model_path, model = SHIPPED, "the shipped weights"
    if args.preset:
        model_path, model = work / f"untrained-{args.preset}.safetensors", f"untrained '{args.preset}'"
        torch.manual_seed(0)
        save_weights(build_model(PRESETS[args.preset]), model_path, info={"epochs": 0, "benchmark": True})
    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") else "none"
    print(f"device {device} (GPU: {gpu}), {os.cpu_count()} CPU cores, batch {batch_size}, "
          f"{workers} decode workers, {torch.get_num_threads()} torch threads, attribute model: "
          f"{model}")
    ratios = []
    for name, root in (("generated 12 MP JPEGs", generated), ("../shared/data/photos", PHOTOS)):
        n, n_faces, rates, full = measure(root, model_path, device, batch_size, workers)
        slowest = min(rates, key=rates.get)
        print(f"{name}: {n} photos, {n_faces} faces")
        for stage, rate in rates.items():
            print(f"  {stage:<11} alone {rate:8.2f} photos/s")
        serial = 1 / sum(1 / rate for rate in rates.values())
        print(f"  full index run  {full['tagging']:8.2f} photos/s (the stages one after another: "
              f"{serial:.2f})")
        print(f"  --faces-only    {full['faces only']:8.2f} photos/s")
        ratios.append((name, slowest, full, rates, serial))
    for name, slowest, full, rates, serial in ratios:
        print(f"{name}: full run / slowest stage ({slowest}) {full['tagging'] / rates[slowest]:.2f}; "
              f"full run / stages in series {full['tagging'] / serial:.2f}; "
              f"full run / decode {full['tagging'] / rates['decode']:.2f}; "
              f"--faces-only / decode {full['faces only'] / rates['decode']:.2f}")


if __name__ == "__main__":
    main()
