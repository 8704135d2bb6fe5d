"""The SQLite index: schema and migrations (``schema``), records (``records``), the writer an
index run uses under the run lock (``writer``), and the read-only side every other command
uses (``query``). No torch here.

One file holds ``photos``, ``faces``, ``runs`` and ``meta``. It is created with mode 0600 (it
describes people), runs in WAL mode so ``search`` works while an ``index`` run writes, and every
batch of photos is written in one transaction, so a killed run leaves whole photos or none.
"""

from .query import Query, Reader
from .records import Face, PhotoRecord, path_from_db, printable_path
from .schema import MIGRATIONS, SCHEMA_VERSION, StoreError
from .writer import Index

__all__ = ["Face", "Index", "MIGRATIONS", "PhotoRecord", "Query", "Reader", "SCHEMA_VERSION",
           "StoreError", "path_from_db", "printable_path"]
