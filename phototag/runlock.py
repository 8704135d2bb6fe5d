"""One index run per database: a lock on a file beside it that belongs to the run's process.

It is a POSIX record lock (``fcntl.lockf``), not ``flock``: a record lock is held by the process
that took it and is never inherited by a forked child. So a decode worker that outlives a killed
run (it should not: see ``local_runner._die_with_parent``) still cannot keep the index locked, and
the kernel frees the lock the moment the run's own process dies, SIGKILL included.
"""

import fcntl
import os
import struct

# struct flock on Linux: l_type, l_whence, l_start, l_len, l_pid, padded to its C size.
FLOCK = "hhqqi4x"


class RunLock:
    def __init__(self, db_path):
        self.path = os.fspath(db_path) + ".lock"
        self._fd = None

    def holder(self):
        """The pid of the process holding the lock, or None."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            # F_GETLK asks the kernel who holds it: a pid written in the file could be stale.
            query = struct.pack(FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
            answer = fcntl.fcntl(fd, fcntl.F_GETLK, query)
            kind, _, _, _, pid = struct.unpack(FLOCK, answer)
            return pid if kind != fcntl.F_UNLCK else None
        except OSError:
            return None
        finally:
            os.close(fd)

    def acquire(self, wait=False):
        """Take the lock; without ``wait``, return False at once if another run holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except (BlockingIOError, PermissionError):
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return True

    def release(self):
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the only descriptor releases the record lock
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
