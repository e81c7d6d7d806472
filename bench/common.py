"""The benchmark convention (docs/benchmarks.md).

Every ``bench/NAME.py`` runs with the project's virtual environment and
prints exactly one JSON object on its last line of output::

    {"name": "...", "seconds": <median of runs>, "floor_seconds": <median or null>,
     "runs": N, "params": {...}, ...}

``seconds`` is the measured figure; ``floor_seconds`` is the same work done by
the layer underneath (raw ZooKeeper, the bare driver) in the same run, so the
ratio stays meaningful on a noisy machine.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from typing import Any


def timed_runs(fn: Callable[[], Any], runs: int) -> list[float]:
    """Run ``fn`` ``runs`` times; return each run's wall time in seconds."""
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def emit(name: str, samples: list[float], floor: list[float] | None = None,
         **params: Any) -> dict[str, Any]:
    """Print the result line (last line of output) and return it."""
    result: dict[str, Any] = {
        "name": name,
        "seconds": round(statistics.median(samples), 6),
        "floor_seconds": round(statistics.median(floor), 6) if floor else None,
        "runs": len(samples),
        "samples": [round(s, 6) for s in samples],
        "params": params,
    }
    if floor:
        result["ratio"] = round(result["seconds"] / max(result["floor_seconds"], 1e-9), 3)
    print(json.dumps(result, sort_keys=True), flush=True)
    return result
