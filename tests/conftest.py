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


@pytest.fixture(autouse=True)
def own_home(tmp_path_factory, monkeypatch):
    """Every test has a HOME and XDG folders of its own: nothing lands in the user's cache."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    for name in ("XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(name, str(home / name.lower()))
    seed_cache(home / "xdg_cache_home")
    for name in ("PHOTOTAG_DB", "PHOTOTAG_MODEL", "PHOTOTAG_WEIGHTS", "PHOTOTAG_PRETRAINED"):
        monkeypatch.delenv(name, raising=False)
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
    import stand_ins

    WEIGHTS = stand_ins.detector_folder(STAND_INS / "weights")


def photo_source(name):
    """A photo of ../shared/data/photos by name, or its generated stand-in."""
    if HAVE_SHARED:
        return PHOTOS / name
    import stand_ins

    target = STAND_INS / "photos" / name
    return target if target.is_file() else stand_ins.photo(target, name)


@functools.cache
def _onnx_exports():
    """RetinaFace and the shipped model's face backbone exported for the CPU once per test
    session: a run exports them into its user cache the first time, and every test has a cache
    of its own (`seed_cache`)."""
    from phototag.vision.attributes import export_face_encoder
    from phototag.vision.onnx_cpu import exported
    from phototag.vision.retinaface import OnPixels, load_retinaface
    from phototag.vision.weightsfile import load_weights

    folder = Path(tempfile.mkdtemp(prefix="phototag-onnx-"))
    weights = WEIGHTS / RETINAFACE.name
    exported(OnPixels(load_retinaface(weights)), weights, folder)
    shipped = ROOT / "weights" / "phototag-cpu.safetensors"
    model, _ = load_weights(shipped)
    export_face_encoder(model, shipped, folder)
    return list(folder.glob("*.onnx"))


def seed_cache(cache_home):
    """Put the session's ONNX exports in a test's cache, as an earlier run would have left them."""
    if not (WEIGHTS / RETINAFACE.name).is_file():
        return
    target = Path(cache_home) / "phototag" / "onnx"
    target.mkdir(parents=True, exist_ok=True)
    for onnx in _onnx_exports():
        if not (target / onnx.name).exists():
            shutil.copyfile(onnx, target / onnx.name)


def phototag_env(tmp_path, **extra):
    env = dict(os.environ)
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
        env=env or phototag_env(tmp_path), capture_output=True, text=True,
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

    options.setdefault("weights_dir", str(WEIGHTS))
    options.setdefault("workers", 0)
    store = Writer(db_path)
    try:
        return run_index(store, IndexOptions(roots=[str(r) for r in roots], **options))
    finally:
        store.close()
