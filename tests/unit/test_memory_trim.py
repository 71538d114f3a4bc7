"""`core/memory`: the free pages of malloc's arenas go back to the system (RSS falls), with
the allocation pattern that leaves them stranded: many blocks freed below one still in use; and
startup objects frozen out of the garbage collector's walks."""

from __future__ import annotations

import asyncio
import ctypes
from pathlib import Path

import pytest

from dockyard.core import memory

pytestmark = pytest.mark.skipif(memory._LIBC is None, reason="glibc only")


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_trim_gives_stranded_free_memory_back() -> None:
    # 64 MiB in 4 KiB blocks (below malloc's mmap threshold: they come from an arena), then all
    # but the last freed: the last one pins the top of the heap, so free() alone returns nothing.
    blocks = [ctypes.create_string_buffer(4096) for _ in range(16384)]
    for block in blocks:
        block[0] = b"x"  # touched: resident
    pinned = blocks[-1]
    del blocks
    before = rss_bytes()
    assert memory.trim() is True
    after = rss_bytes()
    assert before - after > 32 * 1024 * 1024, (before, after)
    assert pinned[0] == b"x"  # what is in use is untouched


def test_the_trimmer_runs_until_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []
    monkeypatch.setattr(memory, "trim", lambda: calls.append(True) or True)

    async def run() -> None:
        task = asyncio.create_task(memory.trim_forever(interval=0.01))
        while len(calls) < 3:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    assert len(calls) >= 3


def test_startup_objects_are_frozen_out_of_the_collectors_walks() -> None:
    import gc

    try:
        kept = [[] for _ in range(1000)]  # containers alive at "startup"
        frozen = memory.freeze_startup_objects()
        assert frozen >= len(kept) and gc.get_freeze_count() == frozen
        assert not any(any(obj is item for item in kept[:3]) for obj in gc.get_objects())
    finally:
        gc.unfreeze()
