"""One index run per database: an advisory lock on a file beside it."""

import fcntl
import os


class RunLock:
    def __init__(self, db_path):
        self.path = os.fspath(db_path) + ".lock"
        self._fd = None

    def holder(self):
        try:
            with open(self.path) as f:
                return f.read().strip() or None
        except OSError:
            return None

    def acquire(self, wait=False):
        """Take the lock; without ``wait``, return False at once if another run holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return True

    def release(self):
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
