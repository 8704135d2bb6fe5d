"""The SQLite index: schema and migrations (``schema``), records (``records``), the ``Writer`` an
index run uses under the run lock (``writer``), and the read-only side every other command
uses (``query``). No torch here.

One file holds ``photos``, ``faces``, ``people``, ``face_verdicts`` (the user's word about single
faces, ``people_rows``), ``runs`` and ``meta``. It is created with mode 0600 (it
describes people), runs in WAL mode so ``search`` works while an ``index`` run writes, and every
batch of photos is written in one transaction, so a killed run leaves whole photos or none.
"""

from .query import Query, Reader
from .records import Face, IndexedFile, PhotoRecord, path_from_db, printable_path
from .schema import MIGRATIONS, SCHEMA_VERSION, StoreError
from .writer import Writer

__all__ = ["Face", "IndexedFile", "MIGRATIONS", "PhotoRecord", "Query", "Reader", "SCHEMA_VERSION",
           "StoreError", "Writer", "path_from_db", "printable_path"]
