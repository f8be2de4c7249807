"""The process's memory allocator, set for training on CPU: freed blocks are kept for reuse."""

from __future__ import annotations

import ctypes
import os
import platform

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # mallopt parameters (glibc's malloc.h)
# glibc reads its malloc settings from these at start; a user who set one keeps theirs
_USER_TUNING = ("MALLOC_MMAP_MAX_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def keep_freed_memory() -> bool:
    """Serve every block from glibc's heap and never hand freed memory back to the system, for
    the rest of the process.

    By default glibc maps each block over its mmap threshold (128 KiB, rising to at most 32 MiB)
    from fresh pages and unmaps it when freed, so the large tensors a training step allocates
    (the critic's first-block maps alone are 32 MiB in bf16) are faulted in and zeroed by the
    kernel again at every step. Kept in the heap, they are reused as they are, for somewhat more
    peak resident memory: the process keeps its peak (the gain is measured in the performance
    chapter of the book). Idempotent.
    Returns whether glibc accepted the settings: False off glibc (macOS, musl, Windows), with
    ``WSAS_KEEP_FREED_MEMORY=0`` (glibc's defaults kept) and where the environment tunes glibc's
    malloc itself (``GLIBC_TUNABLES`` naming ``glibc.malloc``, or ``MALLOC_MMAP_MAX_`` and its
    kin; setting any of them, even to its default value, turns off glibc's rising threshold).
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    if os.environ.get("WSAS_KEEP_FREED_MEMORY") == "0":
        return False
    if "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", "") or any(
        name in os.environ for name in _USER_TUNING
    ):
        return False
    libc = ctypes.CDLL(None)
    no_mmap = libc.mallopt(_M_MMAP_MAX, 0)
    no_trim = libc.mallopt(_M_TRIM_THRESHOLD, -1)  # -1: never trim (mallopt(3))
    return bool(no_mmap and no_trim)
