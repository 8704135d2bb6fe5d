"""One index run per database."""

import subprocess
import sys

from phototag.runlock import RunLock

from conftest import copy_photos, phototag_env, run_phototag


def test_second_run_says_so_and_exits_0(tmp_path, db_path):
    db_path.parent.mkdir(parents=True)
    holder = RunLock(db_path)
    assert holder.acquire()
    try:
        lib = tmp_path / "lib"
        lib.mkdir()
        result = run_phototag(tmp_path, "index", lib)
        assert result.returncode == 0
        assert "another index run" in result.stderr and "nothing done" in result.stderr
        assert not db_path.exists()
    finally:
        holder.release()


def test_wait_runs_once_the_other_run_finishes(tmp_path, db_path):
    lib = copy_photos(["people/ultralight__8.jpg"], tmp_path / "lib")
    db_path.parent.mkdir(parents=True)
    holder = RunLock(db_path)
    assert holder.acquire()
    waiting = subprocess.Popen(
        [sys.executable, "-m", "phototag", "index", "--wait", str(lib)],
        env=phototag_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    said = waiting.stderr.readline()  # the run says it waits, then waits
    assert "waiting for" in said and waiting.poll() is None
    assert not db_path.exists()  # nothing done while it waits
    holder.release()
    _, stderr = waiting.communicate(timeout=300)
    assert waiting.returncode == 0, stderr
    assert "1 indexed" in stderr
