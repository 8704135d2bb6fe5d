"""The runner for one machine: decode worker processes feed the detector and tagger in this
process; a background thread writes. A decode worker that crashes on a photo costs that photo
only (recorded as an error); a worker never outlives the run."""

import functools
import os
import re

from . import weights
from .devices import default_batch_size, default_workers, on_gpu, resolve_device
from .stages import (DETECTOR_WEIGHTS, BatchWriter, Models, handle_batch, known_copies,
                     load_embedder, load_tagger)


class PhotoFiles:
    """A map-style dataset: DataLoader workers read and decode photos in parallel. Each worker
    notes in shared memory which photo it is decoding, so that when a decoder takes its
    process down (a codec's segfault, the OOM killer) the run knows which photo did it.

    ``shared_memory``: the pixels come back as tensors, which a worker hands over in shared
    memory; else as numpy arrays, pickled through a pipe and copied again by the main process
    (which runs the detector: every copy there is time the detector waits)."""

    def __init__(self, entries, max_size, in_hand=None, shared_memory=False):
        self.entries = entries
        self.max_size = max_size
        self.shared_memory = shared_memory
        self.in_hand = in_hand  # per worker: (pid, position being decoded or -1)

    def __len__(self):
        return len(self.entries)

    def __getitem__(self, i):
        from .library.decode import load  # Pillow and numpy only when there is a photo to read

        slot = None
        if self.in_hand is not None:
            from torch.utils.data import get_worker_info

            info = get_worker_info()
            if info is not None:
                slot = info.id
                self.in_hand[2 * slot], self.in_hand[2 * slot + 1] = os.getpid(), i
        photo = load(self.entries[i], self.max_size)
        if slot is not None:
            self.in_hand[2 * slot + 1] = -1
        if self.shared_memory and photo.pixels is not None:
            import torch

            photo.pixels = torch.from_numpy(photo.pixels)
        return photo


def shared_memory_room(workers, batch_size, max_size, folder="/dev/shm"):
    """Whether decode workers should hand photos over in shared memory: there are workers, and
    ``folder`` has room for the decoded photos in flight (each worker's two batches ahead and two
    batches in the main process, at the largest working size). Docker gives a container 64 MB
    there by default; a worker writing past it dies of SIGBUS, which would read as the photo in
    hand crashing its decoder."""
    if not workers:
        return False  # decoded in the main process: nothing to hand over
    try:
        free = os.statvfs(folder)
    except OSError:
        return False
    in_flight = (2 * workers + 2) * batch_size * max_size * max_size * 3
    return free.f_bavail * free.f_frsize >= in_flight


class _Batch(list):
    """A batch of decoded photos; the DataLoader pins their pixels for fast copies to a GPU."""

    def pin_memory(self):
        import torch

        for photo in self:
            if photo.pixels is not None:
                photo.pixels = torch.as_tensor(photo.pixels).pin_memory()
        return self


def _start_worker(parent, _worker_id):
    """A decode worker ignores Ctrl-C (the main process finishes the batch in hand, then stops)
    and dies with the run: killed with SIGKILL, the run leaves no worker behind."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent)


def _die_with_parent(parent):
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: Linux only
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the run died before the line above took effect
        os._exit(1)


def _dead_workers(error):
    """The pids a DataLoader names in the error it raises when a worker process dies, or None
    for any other error."""
    found = re.search(r"DataLoader worker \(pid(?:\(s\))? ([\d, ]+)\)", str(error))
    return {int(n) for n in re.findall(r"\d+", found.group(1))} if found else None


def _crashed_record(entry, error):
    from .library.decode import DecodedPhoto

    signal = re.search(r"killed by signal: ([^.]+)", str(error))
    how = f"killed by signal: {signal.group(1)}" if signal else "exited unexpectedly"
    return DecodedPhoto(path=entry.path, size=entry.size, mtime_ns=entry.mtime_ns,
                        error=f"decoder crashed (its process was {how})")


def keep_list(batch):
    """A DataLoader's collate_fn: the decoded photos differ in size, so a batch stays a list."""
    return _Batch(batch)


def process(index, todo, options, summary, reporter, stop):
    """Decode, detect and tag ``todo`` on this machine; records are written as batches finish."""
    import torch
    from torch.utils.data import DataLoader

    from .vision.detect import Detector

    device = resolve_device(options.device)
    detector = Detector(weights.locate(DETECTOR_WEIGHTS, options.weights_dir), device=device)
    models = Models(detector, load_tagger(options, device) if options.attributes else None,
                    load_embedder(options, device))
    workers = default_workers(device) if options.workers is None else options.workers
    batch_size = options.batch_size or default_batch_size(device)
    # Shared memory where it has room: through a pipe every photo costs the detector's process
    # a copy more (docs/speed.md).
    shared_memory = shared_memory_room(workers, batch_size, options.max_size)
    in_hand = None
    if workers:
        import multiprocessing

        in_hand = multiprocessing.Array("q", [0, -1] * workers, lock=False)
    reporter.start(len(todo))
    writer = BatchWriter(index)
    writer.start()
    remaining = list(todo)
    copies = known_copies(index, todo, options)
    try:
        with torch.inference_mode():
            while remaining:
                loader = DataLoader(
                    PhotoFiles(remaining, options.max_size, in_hand=in_hand,
                               shared_memory=shared_memory),
                    batch_size=batch_size,
                    num_workers=workers,
                    collate_fn=keep_list,
                    pin_memory=on_gpu(device),
                    worker_init_fn=functools.partial(_start_worker, os.getpid()) if workers else None,
                )
                done = 0
                try:
                    for batch in loader:
                        handle_batch(batch, models, options, writer, summary, reporter, copies)
                        done += len(batch)
                        if stop.is_set():
                            summary.interrupted = True
                            return
                    return
                except RuntimeError as error:
                    dead = _dead_workers(error)
                    if not dead or in_hand is None:
                        raise
                    culprits = sorted({in_hand[2 * w + 1] for w in range(workers)
                                       if in_hand[2 * w] in dead and in_hand[2 * w + 1] >= 0})
                    if not culprits:
                        raise
                    # The photo a dead worker had in hand is recorded as an error (retried
                    # when it changes); the others go round again.
                    crashed = [_crashed_record(remaining[i], error) for i in culprits]
                    handle_batch(_Batch(crashed), models, options, writer, summary, reporter)
                    for i in range(workers):
                        in_hand[2 * i], in_hand[2 * i + 1] = 0, -1
                    remaining = [e for i, e in enumerate(remaining) if i >= done and i not in culprits]
                    del loader
    finally:
        writer.close()




def embed_indexed(index, photos, options, summary, reporter, stop):
    """Embed the faces of photos indexed before people (``Writer.photos_to_embed``): each photo
    decoded again, its faces taken as the index holds them (no detection, no tagging). A photo
    that changed meanwhile is left to the next run, which redoes it whole."""
    import numpy as np
    import torch
    from torch.utils.data import DataLoader

    from .library.scan import FileEntry
    from .store.records import embedding_bytes

    device = resolve_device(options.device)
    embedder = load_embedder(options, device)
    entries = [FileEntry(row.path, row.size, row.mtime_ns) for row, _ in photos]
    workers = default_workers(device) if options.workers is None else options.workers
    loader = DataLoader(PhotoFiles(entries, options.max_size), batch_size=1, num_workers=workers,
                        collate_fn=keep_list,
                        worker_init_fn=functools.partial(_start_worker, os.getpid()) if workers else None)
    reporter.start(len(photos))
    with torch.inference_mode():
        for (row, faces), (photo,) in zip(photos, loader):
            if stop.is_set():
                return
            reporter.advance(1, 0)
            if photo.error is not None or photo.hash != row.hash:
                continue
            sx, sy = photo.scale
            chosen = [(face_id, landmarks) for face_id, landmarks, side in faces
                      if side >= options.min_person_face]
            written = []
            if chosen:
                landmarks = np.array([lm for _, lm in chosen], dtype=np.float32) / [sx, sy]
                (vectors, sharpness, _), = embedder.embed([(photo.pixels, landmarks)])
                written = [(face_id, embedding_bytes(v), round(float(s), 2))
                           for (face_id, _), v, s in zip(chosen, vectors, sharpness)]
            index.write_embeddings(row.id, embedder.id, written)
            summary.embedded += 1
