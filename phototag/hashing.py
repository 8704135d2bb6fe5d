"""The one way phototag hashes content: sha256, in hex. Standard library only, so that every
layer (library, weights, training) can use it."""

import hashlib

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
