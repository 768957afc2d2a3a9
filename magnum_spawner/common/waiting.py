"""One way to wait for the cloud: look, sleep, look again, until done or too late.

Every wait loop of the spawners (a container to run or be gone, a volume to be
usable, grown or deleted) is :func:`wait_until` with its own ``look``; a loop
that retries after failures spaces its tries with :func:`backoff_delay`.
"""

import asyncio
import random
import time


async def wait_until(look, *, deadline, interval, backoff=1.0, max_interval=None):
    """Await ``look()`` until it returns something other than None; return that.

    ``look`` may raise to stop the wait.  Between two looks the wait is
    ``interval`` seconds, multiplied by ``backoff`` after each look and capped at
    ``max_interval``.  When the next look would come after ``deadline`` (a
    ``time.monotonic()`` time, the event loop's clock) TimeoutError is raised
    instead of sleeping: the caller's message, not JupyterHub's timeout, wins.
    """
    while True:
        found = await look()
        if found is not None:
            return found
        if time.monotonic() + interval > deadline:
            raise TimeoutError
        await asyncio.sleep(interval)
        interval *= backoff
        if max_interval is not None:
            interval = min(interval, max_interval)


def backoff_delay(failures, interval, cap, rand=random.random):
    """Seconds to wait after ``failures`` failed lists in a row.

    Doubles from ``interval``, never above ``cap``; "full jitter" in the upper
    half, so that hubs that failed together do not retry together.
    """
    base = min(cap, interval * 2 ** max(failures - 1, 0))
    return base * (0.5 + 0.5 * rand())
