"""phototag: tag a personal photo library by the faces in it."""

__version__ = "0.1.0"
