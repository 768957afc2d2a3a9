"""One polling loop for the whole hub, whose cost grows with what changes.

JupyterHub polls every server on its own timer; one GET per server is thousands
of requests per interval at class scale (Zun answers a GET in ~16 ms of its own
time, a listed container in ~1.15 ms).  Instead one task per hub keeps a map
uuid -> slim record of this hub's containers, fed by two kinds of list:

- every ``interval``: a list filtered server-side to the statuses that need
  action (Stopped, Error, Dead, Deleted, Unknown) — usually a handful of items;
- every ``full_interval``: a list of everything, which sees containers that
  vanished; a container absent from two consecutive complete lists is gone.

Each record keeps only what ``poll()`` needs (never the environment, which holds
the server's API token); pages are parsed in a worker thread with the collector
paused.  The intervals grow with the measured list time (listing takes at most a
quarter of the time); errors back off exponentially with jitter, within a bound.

A loop that fails keeps its last snapshot and is restarted on the next use: a
poller that gave up is never handed out silently.  Readers ask Zun directly
(``ASK``) whenever the map cannot answer for sure.
"""

import asyncio
import gc
import logging

from .. import metrics
from ..common import cloud
from ..common.errors import CloudError
from ..common.waiting import backoff_delay
from .objects import slim

log = logging.getLogger(__name__)

#: Statuses a server needs action for; the frequent list asks Zun for these only.
ACTION_STATUSES = ("Stopped", "Error", "Dead", "Deleted", "Unknown")
#: Statuses a restart policy may turn back into Running on its own.
RESTARTABLE_STOPS = frozenset({"Stopped", "Error", "Dead"})
#: Zun's largest page.
PAGE_SIZE = 1000
#: Listing may use at most 1/LIST_DUTY of the time.
LIST_DUTY = 4
#: Longest wait for the first complete list (a restarted hub reattaching servers).
FIRST_LOAD_WAIT = 30.0

#: lookup() verdicts
ASK = "ask"  # the map cannot tell: ask Zun for this container
GONE = "gone"  # absent from two consecutive complete lists
LISTED = "listed"  # the record is what the lists say
QUIET = "quiet"  # not listed as needing action since it was created


_heap_frozen = False


def freeze_heap_once(enabled):
    """Freeze the hub's heap at its first start (``ZunSpawner.hub_gc_freeze``).

    A burst of starts comes before the first poll: without this, the first full
    collection of the burst walks every object JupyterHub has made (a ~250 ms
    stall at 200 starts, ``benchmarks/spawn_burst_gc.py``).  Once per process:
    each freeze keeps what is garbage by then out of reach for good.
    """
    global _heap_frozen
    if enabled and not _heap_frozen:
        _heap_frozen = True
        gc.freeze()
        log.info("Froze %d objects of the hub's heap at its first start (hub_gc_freeze)",
                 gc.get_freeze_count())


class HubPoller:
    _instances = {}

    def __init__(self, client, hub_id, interval=15.0, full_interval=None,
                 max_backoff=None, page_size=PAGE_SIZE):
        self.client = client
        self.hub_id = hub_id
        self.interval = float(interval)
        self.full_interval = float(full_interval or max(60.0, 4 * self.interval))
        self.max_backoff = float(max_backoff or max(120.0, 8 * self.interval))
        self.page_size = page_size
        #: uuid -> slim record (None: changed since, ask Zun)
        self.containers = {}
        #: start times of the last two complete full lists and what they held
        self._fulls = []
        #: loop time at which the last complete list (of any kind) started
        self.updated_at = None
        self._action_at = None
        self.last_error = None
        self.failures = 0
        #: measured seconds of the last list of each kind
        self.full_seconds = 0.0
        self.action_seconds = 0.0
        self._task = None
        self._first_load = None
        self._sleep = asyncio.sleep
        #: called with the slim records after each complete full list
        self.after_full = []
        #: the names of the places (ZunSpawner.places) this poller lists for
        self.places = set()
        metrics.track_poller(self)

    @classmethod
    def for_hub(cls, client, hub_id, interval=15.0, gc_freeze=False, **kwargs):
        """The shared poller for this client and hub, (re)started as needed.

        With ``gc_freeze``, the first poller of the process freezes the heap
        (see ``ZunSpawner.hub_gc_freeze``).
        """
        key = (id(client), hub_id)
        poller = cls._instances.get(key)
        if poller is None:
            if gc_freeze and not cls._instances:
                gc.freeze()
                log.info("Froze %d objects of the hub's heap (hub_gc_freeze)",
                         gc.get_freeze_count())
            poller = cls._instances[key] = cls(client, hub_id, interval, **kwargs)
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
                if self.updated_at is not None:
                    self._first_load.set_result(None)
            self._task = loop.create_task(self._run())

    def stop(self):
        if self._task is not None:
            self._task.cancel()
            self._task = None

    # -- the periods ------------------------------------------------------------

    @property
    def place_label(self):
        """The metrics' ``place`` label: the places this list serves."""
        return "+".join(sorted(self.places)) or "default"

    @property
    def period(self):
        """Seconds between two action lists: grows with the measured list time."""
        return max(self.interval, LIST_DUTY * self.action_seconds)

    @property
    def full_period(self):
        return max(self.full_interval, LIST_DUTY * self.full_seconds)

    def _full_due(self, now):
        return not self._fulls or now - self._fulls[-1][0] >= self.full_period

    # -- listing ----------------------------------------------------------------

    def _keep(self, container):
        return slim(container, self.hub_id)

    async def _list(self, **filters):
        return await self.client.list(
            limit=self.page_size, keep=self._keep, **filters
        )

    async def refresh_full(self):
        """List everything and replace the map."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        records = await self._list()
        self.full_seconds = loop.time() - started
        self.containers = {r["uuid"]: r for r in records}
        self._fulls = (self._fulls + [(started, frozenset(self.containers))])[-2:]
        self._listed(started)
        for callback in list(self.after_full):
            try:
                await callback(records)
            except Exception:
                log.exception("Zun poller: a follow-up of the full list failed")

    async def refresh_action(self):
        """List the containers that need action and update the map with them."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        records = await self._list(status=list(ACTION_STATUSES))
        self.action_seconds = loop.time() - started
        fresh = {r["uuid"]: r for r in records}
        # A container that needed action and is not listed so any more changed
        # status (restarted, being deleted, gone): the map no longer knows it.
        for uuid, record in self.containers.items():
            if record is not None and record["status"] in ACTION_STATUSES and uuid not in fresh:
                self.containers[uuid] = None
        self.containers.update(fresh)
        self._listed(started)

    def _listed(self, started):
        self.updated_at = self._action_at = started
        self.last_error = None
        self.failures = 0
        self._first_attempt_done()

    def _first_attempt_done(self):
        if self._first_load is not None and not self._first_load.done():
            self._first_load.set_result(None)

    async def cycle(self):
        """One list (full when due), as the loop runs it; returns the next delay."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        kind = "full" if self._full_due(started) else "action"
        try:
            if kind == "full":
                await self.refresh_full()
            else:
                await self.refresh_action()
            metrics.observe_poller_cycle(kind, loop.time() - started, ok=True)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # keep the loop alive whatever happens
            metrics.observe_poller_cycle(kind, loop.time() - started, ok=False)
            self.last_error = e
            self.failures += 1
            # readers waiting for a first list ask Zun themselves meanwhile
            self._first_attempt_done()
            delay = backoff_delay(self.failures, self.interval, self.max_backoff)
            if isinstance(e, CloudError):
                log.warning("Listing Zun containers failed (%d in a row, next try in "
                            "%.0f s): %s", self.failures, delay, e)
            else:
                log.exception("Zun poller error")
            return delay
        return self.period

    async def _run(self):
        while True:
            await self._sleep(await self.cycle())

    # -- reading ----------------------------------------------------------------

    @property
    def stale_after(self):
        """Age beyond which the map is not trusted: three periods plus a list."""
        return 3 * self.period + max(self.full_seconds, self.action_seconds)

    def fresh(self, since=None):
        """Whether the map can be trusted (and was listed after ``since``)."""
        if self.updated_at is None:
            return False
        now = asyncio.get_running_loop().time()
        if now - self.updated_at > self.stale_after:
            return False
        return since is None or self.updated_at >= since

    @property
    def loaded(self):
        return self.updated_at is not None

    async def wait_first_load(self, timeout=None):
        """Wait (bounded) for the first list to end; whether the map is loaded."""
        if self.loaded:
            return True
        if self._first_load is None:
            return False
        try:
            await asyncio.wait_for(
                asyncio.shield(self._first_load),
                FIRST_LOAD_WAIT if timeout is None else timeout,
            )
        except asyncio.TimeoutError:
            return False
        return self.loaded

    def lookup(self, uuid, created_after=None):
        """``(verdict, record)`` for container ``uuid``.

        LISTED: ``record`` is what the latest lists say.  QUIET: newer than the
        last full list and not in a list of statuses that need action taken
        since it was created: running as far as the lists can tell.  GONE:
        absent from two consecutive complete lists started after it was created.
        ASK: the map cannot tell (stale, newer than every list, missing from one
        full list, status changed, or a stop a restart policy may undo) — ask
        Zun.
        """
        if not self.fresh():
            return ASK, None
        if uuid in self.containers:
            record = self.containers[uuid]
            if record is None:
                return ASK, None
            if (record["status"] in RESTARTABLE_STOPS
                    and record["restart_policy"] not in (None, "", "no")):
                # Zun's database lags its hosts; the host may already have
                # restarted it (a GET asks the host).
                return ASK, None
            return LISTED, record
        since = float("-inf") if created_after is None else created_after
        missing = sum(1 for started, uuids in self._fulls
                      if started >= since and uuid not in uuids)
        if missing >= 2:
            return GONE, None
        if missing == 1:
            # vanished from one complete list: one GET tells sooner than the next
            return ASK, None
        if self._action_at is not None and self._action_at >= since:
            return QUIET, None
        return ASK, None


cloud.on_reset(HubPoller.stop_all)
