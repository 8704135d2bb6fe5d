import functools
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
PHOTOS = SHARED / "data" / "photos"
WEIGHTS = SHARED / "data" / "weights"
RETINAFACE = WEIGHTS / "retinaface_mobilenet0.25_Final.pth"

def needs_tool(found, reason):
    """Skip a test whose tool is missing, saying why; in CI (CI=true), where .ci/run installs
    the tools, a missing one fails the test instead of hiding it."""
    if found:
        return lambda test: test
    if os.environ.get("CI") == "true":
        def failing(test):
            @functools.wraps(test)
            def fail(*args, **kwargs):
                pytest.fail(f"CI: {reason}, and CI must run this test")
            return fail
        return failing
    return pytest.mark.skip(reason=reason)


# Two tiers. `python -m pytest -m "not slow"` runs what needs neither torch, the models nor
# ../shared (scan, decode, store, search, people, export, CLI parsing) in seconds; the whole
# suite (CI) runs everything. Modules that run a model are slow as a whole, and so is every
# test that needs ../shared.
SLOW_MODULES = {
    "test_allocator", "test_augment", "test_bad_files", "test_crash", "test_datasets", "test_gpu",
    "test_default_weights", "test_detector_parity", "test_distil", "test_emotion_zooms",
    "test_incremental", "test_lock", "test_losses", "test_model", "test_onnx_cpu",
    "test_people_photos", "test_photos", "test_pretrained", "test_promote", "test_ray",
    "test_report", "test_training_real",
}
try:
    import torch  # noqa: F401
except ImportError:  # a contributor's fast tier without torch: those modules cannot even load
    collect_ignore = [f"{name}.py" for name in SLOW_MODULES]


def pytest_collection_modifyitems(items):
    for item in items:
        needs_shared_data = any("../shared" in str(mark.kwargs.get("reason", ""))
                                for mark in item.iter_markers("skipif"))
        if item.module.__name__ in SLOW_MODULES or needs_shared_data:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def own_home(tmp_path_factory, monkeypatch, request):
    """Every test has a HOME and XDG folders of its own: nothing lands in the user's cache. A
    test of a module that runs models finds the session's ONNX exports there."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    for name in ("XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(name, str(home / name.lower()))
    for name in ("PHOTOTAG_DB", "PHOTOTAG_MODEL", "PHOTOTAG_WEIGHTS", "PHOTOTAG_PRETRAINED"):
        monkeypatch.delenv(name, raising=False)
    if request.module.__name__ in SLOW_MODULES:
        seed_cache(home / "xdg_cache_home")
    if not HAVE_SHARED:  # in this process too, the stand-in detector is accepted
        import stand_ins
        from phototag import weights

        monkeypatch.setattr(weights, "verify", stand_ins.accepting(WEIGHTS, weights.verify))
    return home



# PHOTOTAG_TEST_WITHOUT_SHARED=1 runs the suite as a clone without ../shared would.
HAVE_SHARED = (RETINAFACE.is_file() and PHOTOS.is_dir()
               and os.environ.get("PHOTOTAG_TEST_WITHOUT_SHARED") != "1")
needs_shared = pytest.mark.skipif(
    not HAVE_SHARED,
    reason="needs ../shared/data (real photos and the RetinaFace checkpoint); a plain clone has none",
)
# Without ../shared the robustness tests run on stand-ins (tests/stand_ins.py): generated
# photos and a RetinaFace with random weights.
STAND_INS = Path(tempfile.gettempdir()) / f"phototag-stand-ins-{os.getuid()}"
if not HAVE_SHARED:
    WEIGHTS = STAND_INS / "weights"  # made (with torch) by the first test that needs it


def stand_in_weights():
    """The stand-in detector's folder, made once (it needs torch)."""
    import stand_ins

    return stand_ins.detector_folder(WEIGHTS)


def photo_source(name):
    """A photo of ../shared/data/photos by name, or its generated stand-in."""
    if HAVE_SHARED:
        return PHOTOS / name
    import stand_ins

    target = STAND_INS / "photos" / name
    return target if target.is_file() else stand_ins.photo(target, name)


@functools.cache
def _onnx_exports():
    """RetinaFace, SFace and the shipped model's face backbone exported for the CPU once per
    test session: a run exports them into its user cache the first time, and every test has a
    cache of its own (`seed_cache`). Removed at the end of the session."""
    import atexit

    from phototag.vision.attributes import export_face_encoder
    from phototag.vision.identity import float_graph
    from phototag.vision.onnx_cpu import exported
    from phototag.vision.retinaface import OnPixels, load_retinaface
    from phototag.vision.weightsfile import load_weights
    from phototag.weights import IDENTITY_WEIGHTS

    folder = Path(tempfile.mkdtemp(prefix="phototag-onnx-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    weights = WEIGHTS / RETINAFACE.name
    exported(OnPixels(load_retinaface(weights)), weights, folder)
    sface = SHARED / "data" / "weights" / IDENTITY_WEIGHTS
    if sface.is_file():
        exported(sface, sface, folder, name="sface-float32", export=float_graph)
    shipped = ROOT / "weights" / "phototag-cpu.safetensors"
    model, _ = load_weights(shipped)
    export_face_encoder(model, shipped, folder)
    return list(folder.glob("*.onnx"))


def seed_cache(cache_home):
    """Put the session's ONNX exports in a test's cache, as an earlier run would have left them."""
    if not HAVE_SHARED:
        stand_in_weights()
    if not (WEIGHTS / RETINAFACE.name).is_file():
        return
    target = Path(cache_home) / "phototag" / "onnx"
    target.mkdir(parents=True, exist_ok=True)
    for onnx in _onnx_exports():
        if not (target / onnx.name).exists():
            shutil.copyfile(onnx, target / onnx.name)


MODEL_COMMANDS = {"index", "train", "eval"}


def phototag_env(tmp_path, models=True, **extra):
    """The environment of a phototag process of the test; ``models``: it will run a model, so
    its cache is seeded with the session's exports."""
    env = dict(os.environ)
    if models:
        seed_cache(tmp_path / "cache")
    env.update(
        PHOTOTAG_DB=str(tmp_path / "db" / "index.db"),
        PHOTOTAG_WEIGHTS=str(WEIGHTS),
        HOME=str(tmp_path / "home"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        PYTHONPATH=os.pathsep.join(
            ([] if HAVE_SHARED else [str(WEIGHTS)]) + [str(ROOT), env.get("PYTHONPATH", "")]),
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_phototag(tmp_path, *args, env=None, check=True, **kwargs):
    """Run the real CLI in a fresh process, the way cron would."""
    result = subprocess.run(
        [sys.executable, "-m", "phototag", *map(str, args)],
        env=env or phototag_env(tmp_path, models=bool(MODEL_COMMANDS & set(map(str, args)))),
        capture_output=True, text=True,
        errors="surrogateescape", timeout=600, **kwargs,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def db_rows(db_path, sql, params=()):
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def copy_photos(names, dest):
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy2(photo_source(name), dest / Path(name).name)
    return dest


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "db" / "index.db"


@pytest.fixture(scope="session")
def reference():
    return json.loads((PHOTOS / "reference_detections.json").read_text())


def index_in_process(db_path, roots, **options):
    """An index run in this process (the model loads once per test session)."""
    from phototag.pipeline import IndexOptions, run_index
    from phototag.store import Writer

    cache = os.environ.get("XDG_CACHE_HOME")
    if cache is None:  # a fixture wider than one test, set up before the test's own HOME
        cache = tempfile.mkdtemp(prefix="phototag-cache-")
        os.environ["XDG_CACHE_HOME"] = cache
        try:
            return index_in_process(db_path, roots, **options)
        finally:
            del os.environ["XDG_CACHE_HOME"]
            shutil.rmtree(cache, ignore_errors=True)
    seed_cache(Path(cache))
    options.setdefault("weights_dir", str(WEIGHTS))
    options.setdefault("workers", 0)
    store = Writer(db_path)
    try:
        return run_index(store, IndexOptions(roots=[str(r) for r in roots], **options))
    finally:
        store.close()


# An index run that says on stdout when each batch is in the index: tests wait for that event
# instead of polling the database.
ANNOUNCING_RUN = """
import sys
from phototag.store import writer
plain = writer.Writer.write_photos
def announced(self, records):
    plain(self, records)
    print(f"written {len(records)}", flush=True)
writer.Writer.write_photos = announced
from phototag.cli import main
main(sys.argv[1:], prog_name="phototag")
"""


def start_index(tmp_path, *args, env=None, **popen):
    """`phototag index ARGS` in a process of its own that prints a line per batch written."""
    return subprocess.Popen([sys.executable, "-c", ANNOUNCING_RUN, "index", *map(str, args)],
                            env=env or phototag_env(tmp_path), stdout=subprocess.PIPE,
                            text=True, **popen)


def wait_until_written(process, photos):
    """Block until ``process`` (from ``start_index``) has written at least ``photos`` photos;
    returns how many it has, or fewer if it ended first."""
    written = 0
    while written < photos:
        line = process.stdout.readline()
        if not line:
            break
        if line.startswith("written "):
            written += int(line.split()[1])
    return written


def wait_until_gone(pids, timeout=120):
    """Block until every process in ``pids`` has exited (pidfds: the kernel says when)."""
    import select
    import time

    deadline = time.monotonic() + timeout
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        finally:
            os.close(fd)
