"""One polling loop for the whole hub.

JupyterHub polls every server on its own timer; with one GET per user a hub of a
few thousand users sends thousands of requests per interval.  Instead one task
lists the project's containers (all pages) every ``interval`` seconds and keeps a
map uuid -> container of this hub's containers; ``poll()`` reads the map.

A loop that fails keeps its last snapshot but marks it stale, and it is restarted
on the next use: a poller that gave up is never handed out silently.  Readers that
find the snapshot stale, or a container newer than it, ask Zun directly.
"""

import asyncio
import logging

from .errors import CloudError
from .objects import LABEL_HUB

log = logging.getLogger(__name__)


class HubPoller:
    _instances = {}

    def __init__(self, client, hub_id, interval=15.0):
        self.client = client
        self.hub_id = hub_id
        self.interval = interval
        self.containers = {}
        #: loop time of the last successful list; None before the first
        self.updated_at = None
        self.last_error = None
        self._task = None
        self._first_load = None

    @classmethod
    def for_hub(cls, client, hub_id, interval=15.0):
        """The shared poller for this client and hub, (re)started as needed."""
        key = (id(client), hub_id)
        poller = cls._instances.get(key)
        if poller is None:
            poller = cls._instances[key] = cls(client, hub_id, interval)
        poller.ensure_running()
        return poller

    @classmethod
    def stop_all(cls):
        for poller in cls._instances.values():
            poller.stop()
        cls._instances.clear()

    def ensure_running(self):
        if self._task is None or self._task.done():
            if self._task is not None and self._task.done() and not self._task.cancelled():
                exc = self._task.exception()
                if exc:
                    log.warning("Restarting the Zun poller after: %s", exc)
            loop = asyncio.get_running_loop()
            if self._first_load is None or self._first_load.get_loop() is not loop:
                self._first_load = loop.create_future()
            self._task = loop.create_task(self._run())

    def stop(self):
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def refresh(self):
        """List once and replace the snapshot."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        containers = await self.client.list()
        self.containers = {
            c["uuid"]: c
            for c in containers
            if (c.get("labels") or {}).get(LABEL_HUB) == self.hub_id
        }
        # Anything created after the list began may be missing from it.
        self.updated_at = started
        self.last_error = None
        if self._first_load is not None and not self._first_load.done():
            self._first_load.set_result(None)

    async def _run(self):
        while True:
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except CloudError as e:
                self.last_error = e
                log.warning("Listing Zun containers failed: %s", e)
            except Exception as e:  # keep the loop alive whatever happens
                self.last_error = e
                log.exception("Zun poller error")
            await asyncio.sleep(self.interval)

    def fresh(self, since=None):
        """Whether the snapshot can be trusted (and was taken after ``since``)."""
        if self.updated_at is None or self.last_error is not None:
            return False
        now = asyncio.get_running_loop().time()
        if now - self.updated_at > 3 * self.interval:
            return False
        return since is None or self.updated_at >= since

    async def wait_first_load(self, timeout):
        if self._first_load is None:
            return False
        try:
            await asyncio.wait_for(asyncio.shield(self._first_load), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    def lookup(self, uuid, created_after=None):
        """``(known, container)``: known is False when the caller must ask Zun."""
        if not self.fresh(created_after):
            return False, None
        return True, self.containers.get(uuid)
