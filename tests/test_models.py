"""Process-level model runtime settings."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

CHECK = """
import ctypes, ctypes.util, sys
from rag.models import keep_freed_memory
tuned = keep_freed_memory()
assert keep_freed_memory() == tuned  # idempotent
# A freed 64 MB block must come back from the heap, not from a fresh (zeroed) mmap: with the
# default 32 MB-ish dynamic threshold glibc would map and unmap it every time.
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
a = libc.malloc(64 << 20); libc.free(a)
b = libc.malloc(64 << 20); libc.free(b)
print(tuned, a == b)
"""


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)
@pytest.mark.parametrize(
    ("env", "expected"), [({}, "True True"), ({"RAG_DEFAULT_MALLOC": "1"}, "False")]
)
def test_keep_freed_memory_reuses_large_blocks(env: dict[str, str], expected: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHECK],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out.startswith(expected), out
