"""Wait for a started server to answer HTTP, as part of the spawner's start.

JupyterHub waits for a server only ``http_timeout`` after start() returns, then
kills it: on a busy host a server whose container runs and whose process is
alive is thrown away for being slow, and the student's next click starts it
again.  So start() itself waits until the server answers the request JupyterHub
will send (``<url><base_url>api``, any status below 500), bounded by the start's
own deadline, and checks meanwhile that the server is still alive.  JupyterHub's
``http_timeout`` then covers a server that has already answered once.
"""

import asyncio
import contextlib
import re
import time
import urllib.parse

from jupyterhub.utils import url_path_join
from traitlets import Bool

from .host import Host
from .waiting import wait_until


#: what jupyterhub-singleuser logs, with a traceback, each time it cannot reach
#: the hub's API at start; after five tries (about 45 s) it exits
_NO_HUB = re.compile(r"Failed to connect to my Hub at (\S+)")


def unreachable_hub(logs):
    """The hub API address a server's logs say it could not reach, or None."""
    found = _NO_HUB.findall(logs or "")
    return found[-1] if found else None


def stopped_without_hub(hub):
    """The student's sentence for a server that stopped because it could not
    reach the hub at ``hub``, and the operator's remedy: trying again does not
    mend the hub's address."""
    return (f"Your server stopped while starting: it could not reach the hub at {hub}. "
            "Trying again will not help; please tell the hub's administrators.",
            "The servers must reach the hub's API at that address: set "
            "c.JupyterHub.hub_connect_url (or hub_ip) to one the cloud's containers can reach.")


class AnsweringMixin(Host):
    wait_for_answer = Bool(
        True,
        config=True,
        help="""
        Whether start() waits until the server answers HTTP where JupyterHub
        will ask it (``<url><base_url>api``), bounded by :attr:`start_timeout`.
        A server that starts slowly on a busy host is then waited for, not
        killed at JupyterHub's ``http_timeout`` and started again, and its
        start keeps its place in the start queue (:attr:`concurrent_starts`)
        until it is up.  False: start() returns once the container or pod
        runs, and ``http_timeout`` covers the server's own start-up (the
        behaviour before).  Only for servers that do not answer HTTP.
        """,
    )

    #: Seconds between the first two tries of a server that does not answer yet
    #: (the wait grows to four times that).
    answer_interval = 0.5
    #: Seconds between two checks that a server which does not answer yet runs.
    answer_check_interval = 5.0


async def http_probe(url, timeout):
    """True when a server answers ``GET url`` with a status below 500."""
    parts = urllib.parse.urlsplit(url)
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(parts.hostname, parts.port or 80), timeout)
    except (OSError, asyncio.TimeoutError):
        return False
    try:
        path = parts.path or "/"
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                     f"Connection: close\r\n\r\n".encode())
        line = await asyncio.wait_for(reader.readline(), timeout)
    except (OSError, asyncio.TimeoutError):
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    fields = line.split()
    return (len(fields) >= 2 and fields[0].startswith(b"HTTP/")
            and fields[1].isdigit() and int(fields[1]) < 500)


#: one try; tests replace it where no server runs
probe = http_probe


def answer_url(url, base_url):
    """What JupyterHub's own wait requests: the server's ``api`` under its prefix."""
    return url_path_join(url, base_url or "/", "api")


async def wait_for_answer(url, *, deadline, alive, check_every=5.0, probe_timeout=10.0,
                          interval=0.5):
    """Return once ``url`` answers; TimeoutError at ``deadline`` (a monotonic time).

    ``alive()`` is awaited every ``check_every`` seconds while the server does
    not answer; it raises to end the wait (the server stopped).  The tries
    start ``interval`` seconds apart, growing to four times that.
    """
    checked = time.monotonic()

    async def look():
        nonlocal checked
        if await probe(url, max(min(probe_timeout, deadline - time.monotonic()), 0.1)):
            return True
        if time.monotonic() - checked >= check_every:
            checked = time.monotonic()
            await alive()
        return None

    return await wait_until(look, deadline=deadline, interval=interval, backoff=1.5,
                            max_interval=4 * interval)
