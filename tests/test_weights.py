"""Weight files: found, downloaded once, checked against the manifest, never half-written."""

import functools
import hashlib
import http.server
import os
import threading

import pytest

from phototag import weights
from phototag.weights import Entry, WeightsError

from conftest import RETINAFACE, copy_photos, needs_shared, phototag_env, run_phototag


@pytest.fixture
def served(tmp_path):
    """A folder served over HTTP on 127.0.0.1 only."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def entry_for(content, name="model.bin"):
    return Entry(name, hashlib.sha256(content).hexdigest(), len(content), "unused", "MIT")


def test_manifest_lists_the_retinaface_checkpoint_with_the_published_hash():
    entry = weights.read_manifest()["retinaface_mobilenet0.25_Final.pth"]
    assert entry.sha256 == "38ec7bb3c9cbfe2f40edabc05fab970a6d648747cbc534092be85d5eb9b37ed0"
    assert entry.size == 1789735 and entry.url.startswith("https://")


def test_download_with_the_right_hash_lands_atomically(tmp_path, served):
    folder, url = served
    content = os.urandom(300_000)
    (folder / "model.bin").write_bytes(content)
    dest = tmp_path / "cache"
    path = weights.fetch(entry_for(content), dest, url=f"{url}/model.bin")
    assert path.read_bytes() == content
    assert sorted(os.listdir(dest)) == ["model.bin"]


def test_download_with_a_wrong_hash_is_refused_and_leaves_nothing(tmp_path, served):
    folder, url = served
    (folder / "model.bin").write_bytes(b"tampered" * 1000)
    dest = tmp_path / "cache"
    with pytest.raises(WeightsError, match="does not match its sha256"):
        weights.fetch(entry_for(b"the real weights"), dest, url=f"{url}/model.bin")
    assert os.listdir(dest) == []


def test_a_local_file_with_a_wrong_hash_is_refused(tmp_path):
    (tmp_path / "model.bin").write_bytes(b"corrupted")
    manifest = {"model.bin": entry_for(b"the real weights")}
    with pytest.raises(WeightsError, match="delete or replace it"):
        weights.locate("model.bin", weights_dir=tmp_path, manifest=manifest)


@needs_shared
def test_index_downloads_its_networks_once_from_a_mirror(tmp_path, served):
    folder, url = served
    networks = [RETINAFACE, RETINAFACE.parent / weights.IDENTITY_WEIGHTS]
    for network in networks:
        (folder / network.name).write_bytes(network.read_bytes())
    lib = copy_photos(["people/ultralight__8.jpg"], tmp_path / "lib")
    env = phototag_env(tmp_path, PHOTOTAG_WEIGHTS_MIRROR=url)
    del env["PHOTOTAG_WEIGHTS"]
    run_phototag(tmp_path, "index", lib, env=env)
    cache = tmp_path / "cache" / "phototag" / "weights"
    assert sorted(os.listdir(cache)) == sorted(n.name for n in networks)
    for network in networks:
        (folder / network.name).unlink()  # the mirror is gone: a second run needs none of it
    (lib / "again.jpg").write_bytes((lib / "ultralight__8.jpg").read_bytes()[:-2])
    run_phototag(tmp_path, "index", lib, env=env)


@needs_shared
def test_index_refuses_a_tampered_download(tmp_path, served):
    folder, url = served
    (folder / RETINAFACE.name).write_bytes(RETINAFACE.read_bytes()[:-10] + b"0123456789")
    lib = copy_photos(["people/ultralight__8.jpg"], tmp_path / "lib")
    env = phototag_env(tmp_path, PHOTOTAG_WEIGHTS_MIRROR=url)
    del env["PHOTOTAG_WEIGHTS"]
    result = run_phototag(tmp_path, "index", lib, env=env, check=False)
    assert result.returncode == 1
    assert "does not match its sha256" in result.stderr and "Traceback" not in result.stderr
    cache = tmp_path / "cache" / "phototag" / "weights"
    assert not cache.exists() or os.listdir(cache) == []


@pytest.mark.slow  # a run with a photo to look at
def test_offline_with_no_file_says_where_to_put_it(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "a.jpg").write_bytes(b"x")  # something to do, so the detector is needed
    env = phototag_env(tmp_path, PHOTOTAG_WEIGHTS_MIRROR="http://127.0.0.1:9")
    del env["PHOTOTAG_WEIGHTS"]
    result = run_phototag(tmp_path, "index", lib, env=env, check=False)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot download" in lines[0] and "--weights-dir" in lines[0]


def test_a_verified_file_is_not_rehashed_until_it_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    content = os.urandom(100_000)
    path = tmp_path / "model.bin"
    path.write_bytes(content)
    entry = entry_for(content)
    reads = []
    real = weights.sha256_of
    monkeypatch.setattr(weights, "sha256_of", lambda p: reads.append(p) or real(p))
    weights.verify(path, entry)
    weights.verify(path, entry)
    assert len(reads) == 1  # the second run trusts the recorded size, mtime and inode
    path.write_bytes(os.urandom(100_000))  # same size, new content and mtime
    with pytest.raises(WeightsError, match="does not match the sha256"):
        weights.verify(path, entry)


def test_a_shipped_file_missing_from_the_install_says_so_and_downloads_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("PHOTOTAG_WEIGHTS", raising=False)
    entry = Entry("absent.safetensors", "0" * 64, 10, "-", "non-commercial")
    with pytest.raises(WeightsError, match="ships with phototag"):
        weights.locate(entry.name, weights_dir=str(tmp_path), manifest={entry.name: entry})


@needs_shared
@pytest.mark.slow
def test_an_unreadable_weights_file_is_said_in_one_line(tmp_path):
    """Not a traceback, and not taken for the index being unwritable."""
    import shutil

    from test_incremental import unprivileged

    folder = tmp_path / "weights"
    folder.mkdir()
    for name in (RETINAFACE.name, weights.IDENTITY_WEIGHTS):
        shutil.copy(RETINAFACE.parent / name, folder / name)
    (folder / RETINAFACE.name).chmod(0)
    lib = copy_photos(["people/ultralight__8.jpg"], tmp_path / "lib")
    result = run_phototag(tmp_path, "index", "--weights-dir", folder, lib, check=False,
                          **unprivileged())
    assert result.returncode == 1, result.stderr
    assert "cannot read the weights file" in result.stderr and "Permission denied" in result.stderr
    assert "Traceback" not in result.stderr and "cannot write the index" not in result.stderr
