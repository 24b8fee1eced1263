"""Process-wide settings of the long-running commands (``serve``, ``worker``)."""

from __future__ import annotations

import gc

__all__ = ["GC_THRESHOLDS", "tune_gc"]

# CPython's default (700, 10, 10) makes a server holding a thousand event streams run a full
# collection about once a second, each stalling every stream for 150 to 220 ms (bench_events);
# longrun makes little cyclic garbage, so collections can be far apart
GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    """Collect cyclic garbage less often, and never again scan what was built so far (modules,
    the app, its schemas): call it once the process is set up, before it starts serving."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
