"""Grouping at the size of a large library, on two cores: 10,000 new faces placed among
1,000,000 already grouped ones (a night's run after a large import), and a full regroup of
100,000 faces, each with its time and the peak memory of the process that did it, in one run:

    python -m bench people_scale [--indexed 1000000] [--new 10000] [--regroup 100000]

The faces are made up (random unit vectors for people, each face near its person's), written
into a scratch index as an index run would leave them; the grouping is phototag's own
(`phototag.people.update`, as after an index run, and `regroup`). Each measurement runs in a
fresh process. Prints a markdown table; docs/people.md keeps it.
"""

import argparse
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.machine import describe

FACES_PER_PERSON = 25
SPREAD = 0.025  # per dimension: a face's cosine distance to its person's centre about 0.04-0.1


def faces_of(people, count, rng):
    """``count`` faces of ``people`` (unit vectors), each near one of them, and whose."""
    whose = rng.integers(0, len(people), count)
    vectors = people[whose] + rng.normal(scale=SPREAD, size=(count, people.shape[1]))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32), whose


def unit(rng, count):
    vectors = rng.normal(size=(count, 128))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def write_faces(writer, vectors, start, persons=None):
    """One photo per face (as many photos as faces), in one transaction."""
    from phototag.store.records import embedding_bytes

    with writer.transaction():
        conn = writer.conn
        for chunk in range(0, len(vectors), 50_000):
            part = range(chunk, min(chunk + 50_000, len(vectors)))
            conn.executemany("INSERT INTO photos (id, path, status, n_faces, hash) "
                             "VALUES (?, ?, 'done', 1, ?)",
                             [(start + i, f"/photos/{start + i:08d}.jpg", str(start + i)) for i in part])
            conn.executemany(
                "INSERT INTO faces (id, photo_id, idx, x1, y1, x2, y2, det_score, embedding, "
                "person_id, person_by) VALUES (?, ?, 0, 0, 0, 100, 100, 1, ?, ?, ?)",
                [(start + i, start + i, embedding_bytes(vectors[i]),
                  None if persons is None else int(persons[i]) + 1,
                  None if persons is None else "machine") for i in part])


def build(path, indexed, new, seed=0):
    """A scratch index: ``indexed`` faces already grouped, then ``new`` faces not yet placed
    (most of known people, a fifth of people never seen)."""
    from phototag.people import MARK
    from phototag.store import Writer

    rng = np.random.default_rng(seed)
    people = unit(rng, max(1, (indexed + new) // FACES_PER_PERSON))
    writer = Writer(path)
    if indexed:
        vectors, whose = faces_of(people, indexed, rng)
        with writer.transaction():
            writer.conn.executemany("INSERT INTO people (id, created_at) VALUES (?, 'bench')",
                                    [(int(p) + 1,) for p in np.unique(whose)])
        write_faces(writer, vectors, 1, whose)
        del vectors
        with writer.transaction():
            writer.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                                (MARK, str(indexed)))
    known, _ = faces_of(people, new - new // 5, rng)
    strangers, _ = faces_of(unit(rng, max(1, new // 5 // 5)), new // 5, rng)
    write_faces(writer, np.concatenate([known, strangers]), indexed + 1)
    writer.close()


def measure(path, regroup, answer):
    from phototag import people
    from phototag.store import Writer

    writer = Writer(path)
    started = time.perf_counter()
    done = people.regroup(writer) if regroup else people.update(writer)
    elapsed = time.perf_counter() - started
    writer.close()
    answer.put((elapsed, peak_memory_mib(), done))


def peak_memory_mib():
    """This process's peak resident memory. Not getrusage's ru_maxrss: Linux carries that over
    from the parent through fork and exec, so a fresh process would report its parent's peak."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def in_fresh_process(target, *args):
    context = multiprocessing.get_context("spawn")
    answer = context.Queue()
    process = context.Process(target=target, args=(*args, answer))
    process.start()
    result = answer.get()
    process.join()
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--indexed", type=int, default=1_000_000)
    parser.add_argument("--new", type=int, default=10_000)
    parser.add_argument("--regroup", type=int, default=100_000)
    args = parser.parse_args(argv)
    print(describe())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        placing = Path(tmp) / "placing.db"
        started = time.perf_counter()
        build(placing, args.indexed, args.new)
        print(f"built {args.indexed:,} + {args.new:,} faces in {time.perf_counter() - started:.0f} s",
              flush=True)
        elapsed, peak, done = in_fresh_process(measure, placing, False)
        rows.append((f"{args.new:,} new faces placed among {args.indexed:,}", elapsed, peak, done))
        placing.unlink()
        regrouping = Path(tmp) / "regroup.db"
        build(regrouping, 0, args.regroup, seed=1)
        elapsed, peak, done = in_fresh_process(measure, regrouping, True)
        rows.append((f"{args.regroup:,} faces regrouped", elapsed, peak, done))
    print("\n| work | seconds | peak memory | faces joined a person | faces in new people |")
    print("|---|---|---|---|---|")
    for what, elapsed, peak, done in rows:
        print(f"| {what} | {elapsed:.1f} | {peak:,.0f} MiB | {done['assigned']:,} | "
              f"{done['grouped']:,} in {done['new_people']:,} |")


if __name__ == "__main__":
    main()
