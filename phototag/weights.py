"""Finding, fetching and verifying weight files.

Lookup order for a file named in ``weights/manifest``: the directory given by ``--weights-dir`` or
``$PHOTOTAG_WEIGHTS``, the weights shipped with phototag, the user cache
(``$XDG_CACHE_HOME/phototag/weights``). A file found nowhere is downloaded once into the cache
from its manifest URL (or ``$PHOTOTAG_WEIGHTS_MIRROR/<name>``), checked against its sha256 and
written atomically, so a half-finished or tampered download never lands under its real name.
"""

import hashlib
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .files import atomic_path, write_atomically
from .files import file_sha256 as sha256_of

CHUNK = 1 << 20
# The networks every index run uses, by their names in weights/manifest.
DETECTOR_WEIGHTS = "retinaface_mobilenet0.25_Final.pth"
IDENTITY_WEIGHTS = "face_recognition_sface_2021dec_int8bq.onnx"  # SFace: faces → people


class WeightsError(Exception):
    """A weight file is missing, cannot be fetched, or fails its checksum."""


@dataclass(frozen=True)
class Entry:
    name: str
    sha256: str
    size: int
    url: str
    licence: str


def shipped_dir():
    """The ``weights/`` folder that ships with phototag (installed copy or source checkout)."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "shipped_weights", here.parent / "weights"):
        if (candidate / "manifest").is_file():
            return candidate
    raise WeightsError(f"phototag is installed without its weights/manifest (looked beside {here})")


def cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "phototag" / "weights"


def read_manifest(path=None):
    path = Path(path) if path else shipped_dir() / "manifest"
    entries = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 5:
            raise WeightsError(f"{path}:{number}: expected 5 fields (name sha256 size url licence)")
        name, sha256, size, url, licence = fields
        entries[name] = Entry(name, sha256.lower(), int(size), url, licence)
    return entries


def record_in_manifest(path, manifest):
    """Rewrite the manifest's line for ``path`` (by file name) with its sha256 and size, where
    ``path`` lies in the manifest's folder; a file elsewhere (a copy to compare against) has no
    line there, even under the same name. Returns whether a line was rewritten."""
    path, manifest = Path(path), Path(manifest)
    if path.resolve().parent != manifest.resolve().parent:
        return False
    lines = manifest.read_text().splitlines()
    rewritten = False
    for i, line in enumerate(lines):
        fields = line.split()
        if fields and fields[0] == path.name:
            fields[1], fields[2] = sha256_of(path), str(path.stat().st_size)
            lines[i] = "  ".join(fields)
            rewritten = True
    write_atomically(manifest, "\n".join(lines) + "\n")
    return rewritten



def _hash_cache_file():
    return cache_dir().parent / "sha256.json"


def remembered_sha256(path):
    """sha256 of a file, remembered by its path, size, mtime and inode (as git's index does):
    a nightly run does not re-read tens of megabytes of weights to learn what it knew.
    WeightsError for a file that cannot be read."""
    try:
        return _remembered_sha256(os.path.realpath(path))
    except OSError as exc:
        raise WeightsError(f"cannot read the weights file {path}: {exc.strerror or exc}") from None


def _remembered_sha256(path):
    st = os.stat(path)
    stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
    cache = _hash_cache_file()
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    entry = known.get(path)
    if isinstance(entry, list) and entry[:3] == stamp:
        return entry[3]
    digest = sha256_of(path)
    known[path] = stamp + [digest]
    try:
        write_atomically(cache, json.dumps(known))
    except OSError:
        pass  # a read-only home: hash again next time
    return digest


def verify(path, entry):
    actual = remembered_sha256(path)
    if actual != entry.sha256:
        raise WeightsError(
            f"{path} does not match the sha256 in weights/manifest "
            f"(expected {entry.sha256}, got {actual}); delete or replace it"
        )
    return Path(path)


def fetch(entry, dest_dir, url=None, timeout=60):
    """Download ``entry`` into ``dest_dir``; nothing is left behind unless the checksum matches."""
    url = url or entry.url
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / entry.name
    try:
        digest = hashlib.sha256()
        with atomic_path(target) as partial, open(partial, "wb") as out, \
                urllib.request.urlopen(url, timeout=timeout) as response:
            for chunk in iter(lambda: response.read(CHUNK), b""):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
            if digest.hexdigest() != entry.sha256:
                raise WeightsError(
                    f"download of {entry.name} from {url} does not match its sha256 "
                    f"(expected {entry.sha256}, got {digest.hexdigest()}); refused"
                )
        return target
    except (urllib.error.URLError, OSError) as exc:
        raise WeightsError(
            f"cannot download {entry.name} from {url} ({exc}); put the file in {dest_dir} "
            f"or pass --weights-dir / set PHOTOTAG_WEIGHTS to a folder holding it"
        ) from exc


def locate(name, weights_dir=None, download=True, manifest=None):
    """Path of a verified weight file, downloading it into the cache if it is nowhere yet."""
    entries = manifest if manifest is not None else read_manifest()
    if name not in entries:
        raise WeightsError(f"{name} is not listed in weights/manifest")
    entry = entries[name]
    explicit = weights_dir or os.environ.get("PHOTOTAG_WEIGHTS")
    folders = [Path(explicit)] if explicit else []
    try:
        folders.append(shipped_dir())
    except WeightsError:
        pass
    folders.append(cache_dir())
    for folder in folders:
        candidate = folder / name
        if candidate.is_file():
            return verify(candidate, entry)
    if entry.url == "-":  # shipped inside the package, published nowhere else
        raise WeightsError(f"{name} ships with phototag but is not in the installed package; "
                           f"reinstall phototag, or pass --weights-dir to a folder holding it")
    if not download:
        raise WeightsError(f"{name} not found; put it in {cache_dir()} or pass --weights-dir")
    mirror = os.environ.get("PHOTOTAG_WEIGHTS_MIRROR")
    url = f"{mirror.rstrip('/')}/{name}" if mirror else None
    return fetch(entry, cache_dir(), url=url)


ATTRIBUTE_FORMAT = "phototag-attributes-1"  # what a weights file of `phototag train` says it is


def check_attribute_weights(path):
    """WeightsError unless ``path`` is an emotion/age weights file of phototag's (read from its
    safetensors header alone: no torch, so a run with nothing to do still says so)."""
    try:
        with open(path, "rb") as f:
            size = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(size)) if 0 < size < 100_000_000 else None
    except (OSError, ValueError) as exc:
        raise WeightsError(f"cannot use {path}: not a weights file ({exc})") from None
    metadata = (header or {}).get("__metadata__") or {}
    if metadata.get("format") != ATTRIBUTE_FORMAT:
        raise WeightsError(f"cannot use {path}: not a phototag emotion/age weights file "
                           f"(`phototag train` makes them)")
    return path


def weights_id(path):
    """A short, stable id for the rows a weights file made: its name and content hash."""
    return f"{Path(path).stem}-{remembered_sha256(path)[:12]}"


def default_attribute_weights(weights_dir=None):
    """The trained emotion/age weights phototag uses when none are named, or None: the first
    ``.safetensors`` file the manifest lists that can be found."""
    for name in read_manifest():
        if name.endswith(".safetensors"):
            return locate(name, weights_dir)
    return None
