"""Timing helpers shared by the benchmarks."""

import time


def best(function, runs=3):
    """The fastest of ``runs`` calls (seconds) and the last call's result."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return min(times), result
