"""Which file names phototag reads."""

import importlib.util

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".heic", ".heif", ".tif", ".tiff", ".bmp"}
)
RAW_EXTENSIONS = frozenset(
    {".dng", ".cr2", ".cr3", ".nef", ".nrw", ".arw", ".raf", ".orf", ".rw2", ".pef", ".srw"}
)
JPEG_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe"})


def raw_supported():
    """RAW files are read through their embedded preview, which needs the ``[raw]`` extra."""
    return importlib.util.find_spec("rawpy") is not None


def wanted_extensions():
    return IMAGE_EXTENSIONS | RAW_EXTENSIONS if raw_supported() else IMAGE_EXTENSIONS
