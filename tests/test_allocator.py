"""The allocator setting: a freed large tensor's memory is reused without new page faults."""

import os
import platform
import subprocess
import sys

import pytest

# page faults taken by the second of two 256 MiB tensors allocated, filled and freed at the top
# of the heap, after ten of 64 MiB (measured: glibc may grow its heap several times before it
# reuses a freed block of one size; likely the aligned tails it caches per thread). With
# glibc's default each is mapped afresh; on the heap but trimmed, the top is handed back and
# faulted in again; kept, the second reuses the pages of the first.
_FAULTS = """
import resource, sys, torch
from wsas.allocator import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "kept" else None
def faults(mib):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x = torch.ones(mib * 2**18)
    del x
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
for _ in range(10):
    faults(64)
faults(256)
print(applied, faults(256))
"""


_SETTINGS = ("GLIBC_TUNABLES", "WSAS_KEEP_FREED_MEMORY")  # the test's own, not the caller's


def _faults_once_settled(setting: str) -> tuple[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", _FAULTS, setting],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k not in _SETTINGS and "MALLOC" not in k},
    ).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting is glibc's")
def test_kept_memory_is_reused_without_page_faults():
    _, default = _faults_once_settled("default")
    applied, kept = _faults_once_settled("kept")
    assert applied == "True"
    pages = 256 * 2**20 // 4096
    if default < pages // 10:
        pytest.skip(f"glibc's default took only {default} faults (huge pages?): nothing to show")
    assert kept < pages // 100 < default, (kept, default)


def test_the_allocator_is_left_alone_off_glibc_where_the_user_tuned_it_or_opted_out(monkeypatch):
    import wsas.allocator as allocator

    def no_libc(name):
        raise AssertionError("mallopt must not be reached")

    monkeypatch.setattr(allocator.ctypes, "CDLL", no_libc)
    monkeypatch.setattr(allocator.platform, "libc_ver", lambda: ("musl", "1.2"))
    assert allocator.keep_freed_memory() is False
    monkeypatch.setattr(allocator.platform, "libc_ver", lambda: ("glibc", "2.36"))
    monkeypatch.setattr(allocator.platform, "system", lambda: "Linux")
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.mmap_max=65536")
    assert allocator.keep_freed_memory() is False
    monkeypatch.delenv("GLIBC_TUNABLES")
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    assert allocator.keep_freed_memory() is False
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_")
    monkeypatch.setenv("WSAS_KEEP_FREED_MEMORY", "0")
    assert allocator.keep_freed_memory() is False
