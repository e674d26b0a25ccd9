"""Keep BLAS on the calling thread.

A batch-1 model step is a handful of small matrix-vector products.  OpenBLAS hands them to its
worker pool, whose threads run at normal priority: on a busy 2-core machine a step then waits for
the OS scheduler (steps of 5-30 ms instead of 0.5 ms were measured here while a model trained).
``OPENBLAS_NUM_THREADS=1`` fixes that but must be set before numpy loads, which the CLI cannot
promise, so the pool is shrunk at run time through OpenBLAS's own setter (what threadpoolctl does).
"""

from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger(__name__)
_SETTERS = ("openblas_set_num_threads", "openblas_set_num_threads64_", "scipy_openblas_set_num_threads64_",
            "scipy_openblas_set_num_threads")


def limit_blas_threads(n: int = 1) -> list[str]:
    """Set the thread count of every loaded OpenBLAS; returns the libraries changed (Linux only)."""
    if not sys.platform.startswith("linux"):
        return []
    try:
        with open("/proc/self/maps", encoding="utf-8") as f:
            paths = sorted({line.split()[-1] for line in f if "openblas" in line.lower() and "/" in line})
    except OSError:
        return []
    done = []
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in _SETTERS:
            fn = getattr(lib, name, None)
            if fn is not None:
                fn(ctypes.c_int(n))
                done.append(path.rsplit("/", 1)[-1])
                break
    if done:
        log.debug("BLAS limited to %d thread(s) in %s", n, ", ".join(done))
    return done
