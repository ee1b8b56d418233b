"""Freed memory kept for reuse (`kernel.memory`): what the allocator does with a large
buffer, in a fresh process each time (the setting is process-wide and sticks)."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest

from kernel.memory import keep_freed_memory
from kernel.settings import Settings

ROOT = Path(__file__).resolve().parents[2]

_PROBE = """
import sys
from kernel.memory import keep_freed_memory
from tests.utils.memory import mapped_with_a_large_buffer

print(keep_freed_memory(int(sys.argv[1])), mapped_with_a_large_buffer())
"""

glibc_only = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's; elsewhere nothing is set"
)


def _probe(megabytes: int) -> tuple[bool, int]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(megabytes)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return out[0] == "True", int(out[1])


@glibc_only
def test_kept_freed_memory_serves_large_buffers_from_the_heap() -> None:
    took, mapped = _probe(256)
    assert took
    assert mapped < 16 * 2**20
    # Without the setting glibc maps it (and unmaps it when freed): the test can tell.
    took, mapped = _probe(0)
    assert not took
    assert mapped >= 16 * 2**20


def test_zero_leaves_the_allocator_alone_and_the_default_keeps() -> None:
    assert keep_freed_memory(0) is False
    # The field's default, not `Settings()`: a developer's .env may set it.
    assert Settings.model_fields["keep_freed_mb"].default > 0
