"""glibc's allocator as train and eval set it: memory freed by one batch is kept for the next."""

import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux")

# Batches of large arrays, made, touched and freed again and again, as a network's activations
# are; prints the page faults they cost.
BATCHES = """
import resource, sys
import numpy as np
if sys.argv[1] == "kept":
    from phototag.allocator import keep_freed_memory
    assert keep_freed_memory()
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
small, start = [], faults()
for _ in range(30):
    batch = [np.ones((4 << 20) // 8 * k) for k in (1, 2, 3, 5)]
    small.append(np.ones(1000))
    del batch
print(faults() - start)
"""


def page_faults(mode):
    out = subprocess.run([sys.executable, "-c", BATCHES, mode], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    return int(out)


def test_freed_batches_are_reused_instead_of_faulted_in_again():
    defaults, kept = page_faults("defaults"), page_faults("kept")
    assert kept < 0.7 * defaults, (defaults, kept)
