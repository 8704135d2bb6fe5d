"""`phototag index --ray`: the models on a Ray cluster (here a local Ray of 2 CPUs) give the rows a
run on one machine gives, and a killed actor costs nothing but time."""

import os
import shutil
import signal
import subprocess

import pytest

from conftest import (PHOTOS, db_rows, needs_shared, needs_tool, phototag_env, run_phototag,
                      start_index, wait_until_written)

try:
    import ray
except ImportError:
    ray = None

needs_ray = needs_tool(ray, "needs Ray (pip install '.[ray]')")
pytestmark = needs_shared

DONE = "SELECT count(*), count(DISTINCT path) FROM photos WHERE status = 'done'"
FACES = ("SELECT p.path, f.x1, f.y1, f.x2, f.y2, f.emotion, f.age_group FROM faces f "
         "JOIN photos p ON p.id = f.photo_id ORDER BY p.path, f.x1, f.y1")


# The six largest crowds (over 70 faces each, about 1,000 of the 1,410) are left out: every
# face is tagged on both sides, and the rest (31 photos, one to 72 faces) shows the same.
CROWDS = {"ultralight__17.jpg", "ultralight__25.jpg", "wider_val__0_Parade_marchingband_1_765.jpg",
          "s3fd__test2.jpg", "ultralight__27.jpg", "ultralight__26.jpg"}
PHOTOS_IN_LIBRARY = len(list((PHOTOS / "people").iterdir())) - len(CROWDS)


@pytest.fixture(scope="module")
def people(tmp_path_factory):
    """../shared/data/photos/people less its largest crowds, indexed on one machine."""
    tmp_path = tmp_path_factory.mktemp("one-machine")
    library = tmp_path / "people"
    shutil.copytree(PHOTOS / "people", library, ignore=lambda _folder, names: CROWDS & set(names))
    assert len(list(library.iterdir())) == PHOTOS_IN_LIBRARY
    run_phototag(tmp_path, "index", library)
    return library, tmp_path / "db" / "index.db"


def faces_by_photo(db):
    found = {}
    for path, *row in db_rows(db, FACES):
        found.setdefault(os.path.basename(path), []).append(row)
    return found


@needs_ray
def test_a_local_ray_gives_the_rows_of_a_run_on_one_machine(tmp_path, people):
    library, single = people
    # `--ray PATH`: no address, so a Ray is started for the run and PATH is the library.
    result = run_phototag(tmp_path, "index", "--ray", library)
    assert f"{PHOTOS_IN_LIBRARY} indexed" in result.stderr and "0 errors" in result.stderr
    db = tmp_path / "db" / "index.db"
    expected, got = faces_by_photo(single), faces_by_photo(db)
    assert sorted(got) == sorted(expected) and sum(map(len, got.values())) > 300
    for name, faces in expected.items():
        assert len(got[name]) == len(faces), name
        for (*box, emotion, age), (*other_box, other_emotion, other_age) in zip(faces, got[name]):
            assert max(abs(a - b) for a, b in zip(box, other_box)) <= 0.5, name
            assert (emotion, age) == (other_emotion, other_age), name
    assert db_rows(db, DONE) == [(PHOTOS_IN_LIBRARY, PHOTOS_IN_LIBRARY)]
    again = run_phototag(tmp_path, "index", "--ray", "local", library)  # nothing to do: no Ray started
    assert f"{PHOTOS_IN_LIBRARY} unchanged" in again.stderr


def _pids_of(text):
    listing = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in listing.splitlines() if text in line]


@needs_ray
def test_a_killed_actor_is_replaced_and_every_photo_is_done_once(tmp_path, people):
    library, single = people
    db = tmp_path / "db" / "index.db"
    run = start_index(tmp_path, "--faces-only", "--batch-size", "2", "--ray", "local", library,
                      stderr=subprocess.PIPE)
    killed = None
    if wait_until_written(run, 1):  # mid-run: some batches are in, more are on their way
        actors = _pids_of("DetectFaces")
        if actors:
            killed = actors[0]
            os.kill(killed, signal.SIGKILL)
    _, stderr = run.communicate(timeout=600)
    assert killed is not None, f"the run ended before an actor could be killed:\n{stderr}"
    assert run.returncode == 0, stderr
    assert f"{PHOTOS_IN_LIBRARY} indexed" in stderr and "0 errors" in stderr
    assert db_rows(db, DONE) == [(PHOTOS_IN_LIBRARY, PHOTOS_IN_LIBRARY)]
    expected = {name: len(faces) for name, faces in faces_by_photo(single).items()}
    assert {name: len(faces) for name, faces in faces_by_photo(db).items()} == expected


@needs_ray
def test_workers_that_cannot_see_the_photos_stop_the_run_before_it_starts(tmp_path):
    from phototag.ray_runner import check_readable
    from phototag.library.scan import FileEntry
    from phototag.devices import SetupError

    photo = tmp_path / "here.jpg"
    shutil.copy(PHOTOS / "people" / os.listdir(PHOTOS / "people")[0], photo)
    entry = FileEntry(path=str(photo), size=photo.stat().st_size, mtime_ns=0)
    gone = entry._replace(path=str(tmp_path / "only-on-the-driver" / "a.jpg"))
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        check_readable(ray, [entry])  # seen by the workers: no complaint
        with pytest.raises(SetupError, match="cannot read the photos.*same path"):
            check_readable(ray, [entry, gone])
    finally:
        ray.shutdown()


@needs_ray
def test_weights_the_tagger_refuses_stop_the_run_before_ray_starts(tmp_path):
    from phototag.vision.config import PRESETS
    from phototag.vision.models import build_model
    from phototag.vision.weightsfile import save_weights

    path = save_weights(build_model(PRESETS["tiny"]), tmp_path / "untrained.safetensors")
    library = tmp_path / "lib"
    library.mkdir()
    shutil.copy(PHOTOS / "people" / "serengil__couple.jpg", library)
    result = run_phototag(tmp_path, "index", "--model", path, "--ray", library, check=False)
    assert result.returncode == 1 and "records no training" in result.stderr
    assert "Traceback" not in result.stderr and "Ray" not in result.stderr


def test_without_ray_installed_the_message_says_how_to_install_it(tmp_path):
    blocker = tmp_path / "no-ray"
    (blocker / "ray").mkdir(parents=True)
    (blocker / "ray" / "__init__.py").write_text("raise ImportError('no ray here')\n")
    library = tmp_path / "lib"
    library.mkdir()
    shutil.copy(PHOTOS / "people" / "serengil__couple.jpg", library)
    env = phototag_env(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join([str(blocker), env["PYTHONPATH"]])
    result = run_phototag(tmp_path, "index", "--ray", library, env=env, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "pip install 'phototag[ray]'" in result.stderr


def test_an_address_that_is_neither_ray_nor_a_path_is_refused(tmp_path):
    result = run_phototag(tmp_path, "index", "--ray", "no-such-thing", check=False)
    assert result.returncode == 2 and "neither a Ray address" in result.stderr
    lone = run_phototag(tmp_path, "index", "--ray-actors", "2", str(tmp_path), check=False)
    assert lone.returncode == 2 and "only with --ray" in lone.stderr
