"""The models of an index run on a Ray cluster (`phototag index --ray`).

The driver keeps what it does in a plain run: the walk, the plan and the one SQLite writer. Only
the photos to process travel: a Ray Dataset decodes them in CPU tasks (the same decode code),
finds faces in a pool of detector actors and tags them in a pool of tagger actors (a GPU each
where the cluster has GPUs); records come back to the driver as batches finish. Nothing here is
imported unless --ray is given.
"""

import errno
import logging
import math
import os
import pickle
import random
import re
import tempfile
from pathlib import Path

from . import weights
from .devices import SetupError, default_batch_size
from .stages import (DETECTOR_WEIGHTS, BatchWriter, Models, describe_faces, detect_records,
                     known_copies, load_embedder, load_tagger, record_batch)

LOCAL = "local"  # no address: a Ray started for the run, stopped after it
ADDRESS = re.compile(r"^(auto|local|ray://\S+|[\w.-]+:\d+)$")
READ_SAMPLE = 16  # photos every node must be able to read before the run starts
INSTALL_HINT = "pip install 'phototag[ray]' (in a source checkout: pip install '.[ray]')"


def is_address(text):
    """Whether ``text`` names a Ray cluster (auto, local, ray://host:port, host:port) rather
    than a photo folder."""
    return bool(ADDRESS.match(text))


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise SetupError(f"--ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def process(index, todo, options, summary, reporter, stop):
    """Decode, detect and tag ``todo`` on the cluster ``options.ray``; records are written here."""
    ray = import_ray()
    if options.attributes:
        # Weights the tagger would refuse stop the run here, in one line, as on one machine
        # (on the cluster every actor would fail to start, again and again).
        load_tagger(options)
    load_embedder(options)  # the same for the identity network (and its conversion, once)
    _connect(ray, options.ray)
    try:
        check_readable(ray, todo)
        _run(ray, index, todo, options, summary, reporter, stop)
    finally:
        ray.shutdown()  # a Ray this run started stops with it; a cluster is only left


def _connect(ray, address):
    # Ray's C++ core warns that a restarted actor could miss its constructor arguments: Ray Data
    # keeps them for the run, so that line only alarms. RAY_BACKEND_LOG_LEVEL=info shows it all.
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    logging.getLogger("ray").setLevel(logging.WARNING)
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # its notes on deprecations, progress bars
    try:
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING,
                 log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise SetupError(f"cannot reach the Ray cluster at {address}: {exc}") from None


def _unreadable(paths):
    """The paths this node cannot open: (path, reason, whether the file is missing here)."""
    failed = []
    for path in paths:
        try:
            with open(path, "rb") as f:
                f.read(1)
        except OSError as exc:
            missing = exc.errno in (errno.ENOENT, errno.ENOTDIR)
            failed.append((path, exc.strerror or str(exc), missing))
    return failed


def check_readable(ray, entries):
    """Every node opens a sample of the photos: the workers must see the files by the driver's
    paths (a shared filesystem, the same mount everywhere), or the run does not start. A photo
    that is there but unreadable everywhere is only that photo's error, as in a plain run."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    readable = [entry.path for entry in entries if not entry.error]
    sample = random.Random(0).sample(readable, min(READ_SAMPLE, len(readable)))
    if not sample:
        return
    check = ray.remote(num_cpus=0)(_unreadable)
    nodes = [node["NodeID"] for node in ray.nodes() if node["Alive"]]
    answers = ray.get([
        check.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False))
        .remote(sample) for node in nodes])
    for node, failed in zip(nodes, answers):
        missing = [f for f in failed if f[2]]
        if missing or len(failed) == len(sample):
            path, reason, _ = (missing or failed)[0]
            raise SetupError(
                f"the Ray workers cannot read the photos: {len(failed)} of {len(sample)} sampled "
                f"failed on node {node[:12]} (e.g. {path}: {reason}); every node must see the "
                f"library at the same path (a shared filesystem)")


def _resources(ray, options):
    """(actors per model, remote arguments of a detector, of a tagger, of a decode task)."""
    cluster = ray.cluster_resources()
    gpus = int(cluster.get("GPU", 0)) if options.device != "cpu" else 0
    cpus = max(1, int(cluster.get("CPU", 1)))
    actors = options.ray_actors or (gpus if gpus else max(1, cpus // 4))
    # Ray Data restarts a killed actor and retries its batches by default.
    if gpus:  # a detector and a tagger share each GPU
        return actors, dict(num_gpus=0.5, num_cpus=1), dict(num_gpus=0.5, num_cpus=1), 1
    return actors, dict(num_cpus=1), dict(num_cpus=0.5), 0.5


def _threads():
    """Torch threads for an actor: the CPUs Ray gave it."""
    import ray

    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
    return max(1, math.ceil(cpus))


def _weights_file(data, suffix):
    """The weights the driver sent, as a file in this worker (its own filesystem may lack them)."""
    handle = tempfile.NamedTemporaryFile(prefix="phototag-", suffix=suffix, delete=False)
    with handle:
        handle.write(data)
    return handle.name


def _device():
    import ray

    return "cuda" if ray.get_gpu_ids() else "cpu"


def decode_photos(batch, max_size):
    from .library.decode import load

    photos = [load(pickle.loads(entry), max_size) for entry in batch["entry"]]
    return {"key": batch["key"], "work": _column([(photo, None, None) for photo in photos])}


class DetectFaces:
    """A detector actor: decoded photos in, records (and, when tagging follows, the photos and
    the faces found) out."""

    def __init__(self, shared, options, tagging):
        import ray
        import torch

        from .vision.detect import Detector

        torch.set_num_threads(_threads())
        detector_weights, known = ray.get(shared["detector"]), ray.get(shared["known"])
        path = _weights_file(detector_weights, ".pth")
        try:
            self.detector = Detector(path, device=_device())
        finally:
            os.unlink(path)
        self.options, self.known, self.tagging = options, known, tagging

    def __call__(self, batch):
        import torch

        photos = [pickle.loads(work)[0] for work in batch["work"]]
        with torch.inference_mode():
            records, found = detect_records(self.detector, photos, self.options, self.known,
                                            remember=False)
        if self.tagging:
            work = [(photo, found.get(i), record)
                    for i, (photo, record) in enumerate(zip(photos, records))]
        else:
            work = [(None, None, record) for record in records]
        return {"key": batch["key"], "work": _column(work)}


class DescribeFaces:
    """A tagging actor: photos with their faces in, records with their emotion, age and
    identity out (pixels stay here)."""

    def __init__(self, shared, options):
        import dataclasses

        import ray
        import torch

        torch.set_num_threads(_threads())
        files = []
        try:
            tagger = embedder = None
            if options.attributes:
                files.append(_weights_file(ray.get(shared["tagger"]), ".safetensors"))
                tagger = load_tagger(dataclasses.replace(options, attributes=files[-1]), _device())
            if options.people:
                folder = tempfile.mkdtemp(prefix="phototag-")
                path = Path(folder) / weights.IDENTITY_WEIGHTS
                path.write_bytes(ray.get(shared["identity"]))
                files.append(str(path))
                embedder = load_embedder(dataclasses.replace(options, weights_dir=folder), _device())
        finally:
            for path in files:
                os.unlink(path)
        self.models, self.options = Models(None, tagger, embedder), options

    def __call__(self, batch):
        import torch

        photos, found, records = [], {}, []
        for i, work in enumerate(batch["work"]):
            photo, faces, record = pickle.loads(work)
            photos.append(photo)
            records.append(record)
            if faces is not None:
                found[i] = faces
        with torch.inference_mode():
            describe_faces(self.models, photos, found, records, self.options)
        return {"key": batch["key"], "work": _column([(None, None, r) for r in records])}


def _column(values):
    import numpy as np

    column = np.empty(len(values), dtype=object)
    column[:] = [pickle.dumps(v, protocol=5) for v in values]
    return column


def _run(ray, index, todo, options, summary, reporter, stop):
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    context.max_errored_blocks = -1  # a batch that fails every retry is recorded, the run goes on
    batch = options.batch_size or default_batch_size("cpu")
    actors, detect_args, tag_args, decode_cpus = _resources(ray, options)
    # model_id reads the weights file: computed here, it travels with the options (a cached
    # property), and no worker looks for the file by the driver's path.
    known = known_copies(index, todo, options)
    # Sent through the object store inside a dict: the actors fetch them (a restarted actor
    # too, while the driver holds them), and the nodes need no copy of the files.
    shared = {"detector": ray.put(Path(weights.locate(DETECTOR_WEIGHTS, options.weights_dir)).read_bytes()),
              "known": ray.put(known)}
    if options.attributes:
        shared["tagger"] = ray.put(Path(options.attributes).read_bytes())
    if options.people:
        shared["identity"] = ray.put(
            Path(weights.locate(weights.IDENTITY_WEIGHTS, options.weights_dir)).read_bytes())
    describing = bool(options.attributes or options.people)
    pool = ray.data.ActorPoolStrategy(size=actors)

    rows = [{"key": i, "entry": pickle.dumps(entry)} for i, entry in enumerate(todo)]
    dataset = ray.data.from_items(rows, override_num_blocks=max(1, min(math.ceil(len(rows) / batch), 20_000)))
    dataset = dataset.map_batches(decode_photos, fn_kwargs=dict(max_size=options.max_size),
                                  batch_size=batch, num_cpus=decode_cpus)
    dataset = dataset.map_batches(
        DetectFaces, batch_size=batch, compute=pool,
        fn_constructor_kwargs=dict(shared=shared, options=options, tagging=describing),
        **detect_args)
    if describing:
        dataset = dataset.map_batches(
            DescribeFaces, batch_size=batch, compute=pool,
            fn_constructor_kwargs=dict(shared=shared, options=options), **tag_args)

    reporter.start(len(todo))
    writer = BatchWriter(index)
    writer.start()
    done = set()
    copies = dict(known)  # what this run indexed joins it: a later identical photo copies faces
    try:
        for answer in dataset.iter_batches(batch_size=batch, batch_format="numpy"):
            records = []
            for key, work in zip(answer["key"], answer["work"]):
                if int(key) in done:  # a retried batch that had come back already
                    continue
                done.add(int(key))
                records.append(_as_copy(pickle.loads(work)[2], copies))
            if records:
                record_batch(records, writer, summary, reporter)
            if stop.is_set():
                summary.interrupted = True  # the run's end (ray.shutdown) stops the rest
                return
        lost = [entry for i, entry in enumerate(todo) if i not in done]
        if lost:
            record_batch([_lost_record(entry) for entry in lost], writer, summary, reporter)
    finally:
        writer.close()


def _as_copy(record, copies):
    """A photo whose bytes another photo of this run (or of the index) already had takes its
    faces, as in a run on one machine."""
    if record.status != "done":
        return record
    if record.faces_from is None and record.hash in copies and copies[record.hash][0] != record.path:
        record.faces_from, record.copied_faces = copies[record.hash]
        record.faces = []
    elif record.hash not in copies:
        copies[record.hash] = (record.path, len(record.faces))
    return record


def _lost_record(entry):
    from .store import PhotoRecord

    return PhotoRecord(path=entry.path, size=entry.size, mtime_ns=entry.mtime_ns, status="error",
                       error="its batch failed on the Ray cluster after every retry (a worker "
                             "crashed on it); retried when the file changes or with --retry-errors")
