"""The allocator setting: a freed large tensor's memory is reused without new page faults."""

import platform
import subprocess
import sys

import pytest

# page faults taken by a 64 MiB tensor allocated, filled and freed after ten others (glibc's
# heap settles on reusing a freed block within the first ten)
_FAULTS = """
import resource, sys, torch
from wsas.allocator import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "kept" else None
def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x = torch.ones(16 * 2**20)
    del x
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
for _ in range(10):
    faults()
print(applied, faults())
"""


def _faults_once_settled(setting: str) -> tuple[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", _FAULTS, setting], capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting is glibc's")
def test_kept_memory_is_reused_without_page_faults():
    _, default = _faults_once_settled("default")
    applied, kept = _faults_once_settled("kept")
    assert applied == "True"
    pages = 64 * 2**20 // 4096
    if default < pages // 10:
        pytest.skip(f"the kernel maps this allocation with huge pages ({default} faults)")
    assert kept < pages // 100 < default, (kept, default)
