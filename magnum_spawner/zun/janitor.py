"""Removing containers that no server runs in, hub-wide, until they are gone.

A container must go when its server ended, when a start failed or was cancelled
(JupyterHub cancels start() at ``start_timeout`` while the create may still be on
its way to Zun in a worker thread), and when stop() could not finish.  Zun does
not always let it go at once: a non-admin ``DELETE ?stop=true`` is a 409 while the
container is Creating, Unknown, Deleting, Restarting or Paused, and any request can
fail.  So one job per container name keeps at it, with backoff, until Zun answers
404 for every container of that name it is responsible for; it outlives the
spawner call that started it (cancellation included).

Every start of a name waits for that name's job first: a server never has two
containers, not even for the moment between a late create and its removal.
"""

import asyncio
import logging

from . import objects
from ..common import cloud
from ..common.errors import CloudError, Conflict, NotFound

log = logging.getLogger(__name__)

#: Statuses in which Zun refuses a non-admin delete but that end on their own
#: (Deleting: it is already going; Rebuilding: an operator's rebuild).
PASSING_STATES = frozenset({"Creating", "Deleting", "Restarting", "Rebuilding"})


class Removal:
    """What one job must remove: known uuids, pending creates, and a name to watch."""

    def __init__(self, name, labels):
        self.name = name
        self.labels = dict(labels)
        self.uuids = set()
        #: uuids whose delete Zun accepted: only look until they are gone
        self.deleting = set()
        #: tasks (creates) that may still make a container of this name
        self.creates = []
        #: loop time until which the name is looked up again (a lost create may
        #: commit late)
        self.look_until = 0.0
        self.look_now = True
        #: the last refusal: (uuid, Zun status)
        self.refused = None
        self.task = None
        self.wake = asyncio.Event()
        #: resolved at the end of the current round of lookups and deletes
        self.round = asyncio.get_running_loop().create_future()
        self._callbacks = []

    def done(self):
        return self.task is not None and self.task.done()

    def on_gone(self, callback):
        self._callbacks.append(callback)

    def describe(self):
        if self.refused:
            uuid, status = self.refused
            return f"container {uuid} is {status}"
        if self.creates:
            return f"the create of {self.name} has not been answered yet"
        pending = sorted(self.uuids)
        return f"container {', '.join(pending)} is being deleted" if pending else "looking"


class Janitor:
    """The hub's container removals for one Zun client (shared by all spawners)."""

    _instances = {}
    #: seconds between rounds while Zun is deleting
    first_delay = 0.5
    #: at most this long while Zun refuses for a status that ends on its own
    passing_delay = 5.0
    #: at most this long while Zun fails or refuses (Unknown)
    max_delay = 60.0
    #: seconds to keep looking by name after a create without an answer
    lost_create_window = 10.0

    def __init__(self, client):
        self.client = client
        self.jobs = {}

    @classmethod
    def for_client(cls, client):
        janitor = cls._instances.get(id(client))
        if janitor is None or janitor.client is not client:
            janitor = cls._instances[id(client)] = cls(client)
        return janitor

    @classmethod
    def stop_all(cls):
        """Cancel every job (tests; a stopping hub's loop cancels them anyway)."""
        for janitor in cls._instances.values():
            for job in janitor.jobs.values():
                if job.task is not None:
                    job.task.cancel()
        cls._instances.clear()

    def active(self, name):
        job = self.jobs.get(name)
        return job if job is not None and not job.done() else None

    def remove(self, name, labels, *, uuid=None, create=None, look_for=0.0, by_name=True):
        """Remove ``uuid``, what ``create`` makes and (``by_name``) our containers named ``name``.

        Joins the name's running job when there is one.  Returns the job.
        """
        loop = asyncio.get_running_loop()
        job = self.active(name)
        if job is None:
            job = self.jobs[name] = Removal(name, labels)
            job.look_now = by_name
            job.task = loop.create_task(self._run(job))
        elif by_name:
            job.look_now = True
        if uuid:
            job.uuids.add(uuid)
        if create is not None:
            job.creates.append(create)
        if look_for:
            job.look_until = max(job.look_until, loop.time() + look_for)
        job.wake.set()
        return job

    async def wait(self, jobs, timeout):
        """Wait until the jobs are done; False when some are still at work."""
        tasks = [j.task for j in jobs if not j.done()]
        if not tasks:
            return True
        done, pending = await asyncio.wait(tasks, timeout=max(timeout, 0))
        return not pending

    async def tried(self, job, timeout):
        """Wait until the job has had one go at Zun (a delete sent, or refused)."""
        try:
            await asyncio.wait_for(asyncio.shield(job.round), timeout)
        except asyncio.TimeoutError:
            pass

    # -- the job ------------------------------------------------------------------

    async def _run(self, job):
        loop = asyncio.get_running_loop()
        delay = self.first_delay
        try:
            while True:
                await self._await_creates(job)
                cap = await self._step(job)
                job.round.set_result(None)
                job.round = loop.create_future()
                if not job.uuids and not job.creates and loop.time() >= job.look_until:
                    log.info("Every container named %s that the hub removes is gone", job.name)
                    return
                # Quick while Zun is deleting; slower while it refuses or fails
                # (a Creating container is looked at often: it ends on its own).
                delay = min(delay * 2, cap)
                job.wake.clear()
                try:
                    await asyncio.wait_for(job.wake.wait(), delay)
                except asyncio.TimeoutError:
                    pass
        finally:
            if not job.round.done():
                job.round.set_result(None)
            for callback in job._callbacks:
                try:
                    callback(job)
                except Exception:  # one caller's bookkeeping must not stop the others
                    log.exception("Removal callback for %s failed", job.name)

    async def _await_creates(self, job):
        loop = asyncio.get_running_loop()
        while job.creates:
            create = job.creates[0]
            await asyncio.wait([create])
            job.creates.remove(create)
            made = None
            if not create.cancelled() and create.exception() is None:
                made = create.result()
            if made and made.get("uuid"):
                job.uuids.add(made["uuid"])
            else:
                # No answer: the container may still appear under the name.
                job.look_until = max(job.look_until, loop.time() + self.lost_create_window)
                job.look_now = True

    async def _step(self, job):
        """One round of lookups and deletes; returns the longest wait before the next."""
        loop = asyncio.get_running_loop()
        cap = self.max_delay
        try:
            if job.look_now or loop.time() < job.look_until:
                for found in await self.client.find_by_name(job.name):
                    if objects.is_ours(found, job.labels) and found["uuid"] not in job.uuids:
                        log.info("Removing container %s (%s, %s) that no server runs in",
                                 found["uuid"], job.name, found.get("status"))
                        job.uuids.add(found["uuid"])
                job.look_now = False
                if loop.time() < job.look_until:
                    cap = 1.0
            for uuid in sorted(job.uuids):
                cap = min(cap, await self._delete(job, uuid))
        except CloudError as e:
            log.warning("Removing containers named %s: %s; trying again", job.name, e)
        except Exception:  # never let a job die with containers still to remove
            log.exception("Removing containers named %s failed; trying again", job.name)
        return cap

    async def _status(self, job, uuid):
        """The container's status; None (and the job told) when Zun answers 404."""
        try:
            return (await self.client.get(uuid)).get("status")
        except NotFound:
            self._gone(job, uuid)
            return None

    async def _delete(self, job, uuid):
        if uuid in job.deleting:
            status = await self._status(job, uuid)
            if status in (None, "Deleting"):
                return self.first_delay
            # The delete did not go through (Error): send it again.
            job.deleting.discard(uuid)
        try:
            await self.client.delete(uuid)
        except NotFound:
            self._gone(job, uuid)
            return self.first_delay
        except Conflict:
            status = await self._status(job, uuid)
            if status is None:
                return self.first_delay
            if status == "Deleting":
                job.deleting.add(uuid)
                return self.first_delay
            if job.refused != (uuid, status):
                log.warning(
                    "Zun will not delete container %s (%s) while it is %s; trying again",
                    uuid, job.name, status,
                )
            job.refused = (uuid, status)
            return self.passing_delay if status in PASSING_STATES else self.max_delay
        except CloudError as e:
            log.warning("Deleting container %s (%s) failed: %s; trying again", uuid, job.name, e)
            return self.max_delay
        job.deleting.add(uuid)
        if job.refused and job.refused[0] == uuid:
            job.refused = None
        return self.first_delay

    def _gone(self, job, uuid):
        job.uuids.discard(uuid)
        job.deleting.discard(uuid)
        if job.refused and job.refused[0] == uuid:
            job.refused = None


cloud.on_reset(Janitor.stop_all)
