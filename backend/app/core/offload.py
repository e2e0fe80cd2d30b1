"""CPU-bound work off the event loop, in a small thread pool of its own.

Hashing and checking a password (argon2, about 0.1 s of CPU each) and estimating a password's
strength are CPU work. On the event loop they would stall every other request; in asyncio's default
executor (up to cores + 4 threads) a burst of logins would take every core, and /health and the
other requests would wait for them. Here they queue for PASSWORD_HASH_THREADS threads (0, the
default: half the cores, at least one), which leaves the event loop a core; argon2 releases the GIL
while it works. A queued login still answers within the request deadline (app.api.deadline).
"""

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TypeVar

from app.core.config import get_settings

T = TypeVar("T")

_pool: ThreadPoolExecutor | None = None


def threads() -> int:
    configured = get_settings().PASSWORD_HASH_THREADS
    return configured or max(1, (os.cpu_count() or 2) // 2)


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=threads(), thread_name_prefix="password")
    return _pool


async def run_cpu_bound(work: Callable[..., T], *args: object) -> T:
    """`work(*args)` in the pool, awaited from the event loop."""
    return await asyncio.get_running_loop().run_in_executor(_executor(), partial(work, *args))
