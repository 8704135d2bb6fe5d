"""Files, the one way phototag handles them: content hashes (sha256, in hex) and writes that
land whole or not at all. Standard library only, so that every layer can use it."""

import contextlib
import hashlib
import os
import secrets
import stat
from pathlib import Path

CHUNK = 1 << 20


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def file_sha256(path):
    """sha256 of a file's content, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_path(path):
    """A part file beside ``path`` to write to; renamed onto ``path`` when the block ends
    without an error, removed otherwise. A reader (or a run killed meanwhile) never sees half a
    file under the real name. Part files end in ``.part``, so that leftovers can be recognised."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.part")
    # Created as a plain new file would be (the umask decides), or with the mode of the file
    # it replaces: a sidecar made private or shared by its owner stays so.
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        mode = 0o666
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
    if mode != 0o666:
        os.chmod(partial, mode)
    try:
        yield Path(partial)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)


def write_atomically(path, data):
    """Write ``data`` (bytes or text) to ``path`` with ``atomic_path``; returns the path."""
    with atomic_path(path) as partial:
        if isinstance(data, str):
            partial.write_text(data, encoding="utf-8")
        else:
            partial.write_bytes(data)
    return Path(path)
