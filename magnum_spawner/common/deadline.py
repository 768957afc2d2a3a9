"""A start's own deadline: a slow start ends with the spawner's sentence, not JupyterHub's.

JupyterHub gives start() ``start_timeout`` seconds, counted from before start()
first runs, then gives up on it: JupyterHub 5.0 and 5.1 stop waiting
(``gen.with_timeout``), 5.2 and later cancel it (``asyncio.wait_for``); either
way the spawn page says only "Spawn failed: Timeout".  So a start ends itself
a margin earlier, with a sentence that names what the hub was still doing.

The margin covers what JupyterHub's clock counts and start()'s does not: on a
busy hub (a class's rush on 2 cores) the event loop runs start()'s first step
late, a cloud call under way when the deadline comes takes many turns of a loop
that lags to return, and so does the failure's own work (a log tail, the
removal).  A fixed 2 s was not enough there.  So the deadline is a share of
``start_timeout`` with a floor, which costs a long timeout little, and a
quarter of the margin later whatever still runs is cut (:func:`within`,
cancelled as JupyterHub would cancel it, what it made handed over the same
way).  When
JupyterHub cancels start() all the same (a loop that lags more still), the
spawners turn the cancellation into the same sentence: JupyterHub 5.2 and
later show start()'s own exception on the spawn page.
"""

import asyncio

from .errors import spawn_error

#: the margin: this share of ``start_timeout`` ...
MARGIN_SHARE = 0.05
#: ... but at least this many seconds ...
MARGIN_FLOOR = 5.0
#: ... and at most this share of it (a short ``start_timeout`` keeps half)
MARGIN_CAP = 0.5


def margin(start_timeout):
    """Seconds a start keeps free before JupyterHub's ``start_timeout``."""
    return min(max(MARGIN_FLOOR, MARGIN_SHARE * start_timeout), MARGIN_CAP * start_timeout)


def own_deadline(start_timeout):
    """The event-loop time at which a start that begins now ends itself."""
    return asyncio.get_running_loop().time() + start_timeout - margin(start_timeout)


async def within(work, deadline, start_timeout, phase):
    """Await ``work`` (a start's, begun with ``deadline``), cut a quarter of the
    margin after the deadline: then :func:`timed_out` for ``phase()``, what
    the start is doing when it is cut."""
    loop = asyncio.get_running_loop()
    cut = deadline + margin(start_timeout) / 4
    try:
        return await asyncio.wait_for(work, max(cut - loop.time(), 0))
    except asyncio.TimeoutError:
        if loop.time() < cut:
            raise  # the work's own
        raise timed_out(start_timeout, phase()) from None


def timed_out(start_timeout, phase):
    """The sentence for a start that ran out of time while the hub was ``phase``."""
    return spawn_error(
        f"The server did not start within {start_timeout} s (the hub was still "
        f"{phase}); try again in a few minutes.", reason="timeout",
    )
