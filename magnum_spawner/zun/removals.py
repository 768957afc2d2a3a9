"""Containers that must go, go: this server's side of the hub's janitor.

A container to remove (the previous one before a start, one a cancelled start
made, one that ended or failed) is handed to the hub-wide
:class:`~.janitor.Janitor`, which deletes it until Zun answers 404 even when the
caller is cancelled; the server's state remembers it (``to_remove``) until it
is gone, so a later poll or start, or another hub process, finishes the job.
"""

import asyncio

from traitlets import List

from ..common.errors import CloudError, spawn_error
from . import objects
from . import progress as steps
from .janitor import Janitor
from .settings import ZunHost


class RemovalMixin(ZunHost):
    #: Containers of this server that must go but were not gone yet when last
    #: seen: ``[{"id": uuid or None, "name": name}]``.  Kept across clear_state
    #: (JupyterHub clears the state after every stop, failed or not).
    to_remove = List()

    # -- state ------------------------------------------------------------------

    def get_state(self):
        state = super().get_state()
        if self.to_remove:
            state["to_remove"] = [dict(e) for e in self.to_remove]
        return state

    def load_state(self, state):
        super().load_state(state)
        known = {(e["id"], e["name"]) for e in self.to_remove}
        for entry in state.get("to_remove") or []:
            if (entry.get("id"), entry.get("name")) not in known:
                kept = {"id": entry.get("id"), "name": entry.get("name")}
                if entry.get("place") is not None:
                    kept["place"] = entry["place"]
                self.to_remove.append(kept)

    def clear_state(self):
        # JupyterHub clears the state after every stop (even a failed one) and
        # before every start: containers still to be removed are kept.
        to_remove = list(self.to_remove)
        super().clear_state()
        self.to_remove = to_remove

    # -- removing containers ----------------------------------------------------

    @property
    def janitor(self):
        return Janitor.for_client(self.zun)

    def _hand_over(self, name, uuid=None, create=None, by_name=True):
        """Give a container that must go to the hub's janitor, and remember it.

        The janitor deletes it (retrying until Zun answers 404) even when the
        caller is cancelled; the entry in state lets a later poll or start (or
        another hub process) finish the job if this one cannot.
        """
        entry = {"id": uuid, "name": name}
        place = getattr(self, "place_name", None)  # None with one place: the state stays as it was
        if place is not None:
            entry["place"] = place
        if entry not in self.to_remove:
            self.to_remove.append(entry)
        job = self.janitor.remove(
            name, self.own_labels, uuid=uuid, create=create, by_name=by_name
        )
        job.on_gone(lambda job: self._removed(job, place))
        return job

    def _removed(self, job, place=None):
        if not job.uuids and not job.creates:
            self.to_remove = [e for e in self.to_remove
                              if e["name"] != job.name or e.get("place") != place]

    def janitor_of_place(self, name):
        """The janitor of the place ``name`` (one place: the only janitor)."""
        return self.janitor

    def _resume_removals(self):
        """Hand recorded removals to the janitor when no job is at them (hub restart)."""
        jobs = []
        for entry in list(self.to_remove):
            place = entry.get("place")
            janitor = self.janitor_of_place(place)
            job = janitor.active(entry["name"])
            if job is None or (entry["id"] and entry["id"] not in job.uuids):
                if janitor is self.janitor:
                    job = self._hand_over(
                        entry["name"], uuid=entry["id"], by_name=not entry["id"]
                    )
                else:
                    job = self._hand_over_in(place, entry)
            jobs.append(job)
        return jobs

    async def _clear_the_way(self, name, deadline):
        """Remove every earlier container of this server before a new one is made.

        A same-named container that is not ours is an error (a second hub or a
        wrong template); ours are removed.  Waits, within start's deadline, for
        every removal of this server, including those still in flight from a
        cancelled start.
        """
        if self.container_id:
            # a container from an earlier spawn (perhaps under another name)
            self._hand_over(
                self.container_name_in_state or name, uuid=self.container_id, by_name=False
            )
            self.container_id = None
        jobs = self._resume_removals()
        for found in await self.zun.find_by_name(name):
            if not objects.is_ours(found, self.own_labels):
                raise spawn_error(
                    f"A container named {name} that this hub did not make already "
                    "exists; tell your administrator.",
                    reason="name-conflict",
                    log_message=(
                        f"container {found['uuid']} is named {name} but has labels "
                        f"{found.get('labels')}; set a distinct ZunSpawner.hub_id or "
                        "name_template"
                    ),
                )
            self.emit(steps.REMOVING_OLD, "Removing your previous server")
            self.log.info("%s: deleting old container %s", self._log_name, found["uuid"])
            jobs.append(self._hand_over(name, uuid=found["uuid"]))
        active = self.janitor.active(name)
        if active is not None:
            jobs.append(active)
        await self._wait_removed(jobs, deadline)

    async def _wait_removed(self, jobs, deadline):
        loop = asyncio.get_running_loop()
        jobs = list({id(j): j for j in jobs}.values())
        while not await self.janitor.wait(jobs, min(1.0, deadline - loop.time())):
            stuck = [j for j in jobs if not j.done()]
            unknown = [j for j in stuck if j.refused and j.refused[1] == "Unknown"]
            if unknown:
                uuid = unknown[0].refused[0]
                raise spawn_error(
                    f"Your previous server (container {uuid}) is in Zun's status "
                    "Unknown, and Zun does not let the hub remove it; tell your "
                    "administrator.",
                    reason="previous-container",
                    log_message=f"container {uuid} is Unknown; Zun refuses to delete "
                    "it (an administrator can delete it with --force)",
                )
            if loop.time() >= deadline:
                raise spawn_error(
                    "Your previous server is still being removed ("
                    + "; ".join(j.describe() for j in stuck)
                    + "); try again in a minute.",
                    reason="previous-container",
                )

    async def _sweep(self):
        try:
            name = self.container_name_in_state or self.container_name
            job = self.janitor.active(name)
            for found in await self.zun.find_by_name(name):
                if not objects.is_ours(found, self.own_labels):
                    continue
                if job is not None and found["uuid"] in job.uuids:
                    continue
                self.log.warning(
                    "%s: container %s (%s) was made by a start that never finished; "
                    "removing it", self._log_name, found["uuid"], found.get("status"),
                )
                self._hand_over(name, uuid=found["uuid"], by_name=False)
        except (CloudError, ValueError) as e:
            self.log.warning("%s: could not look for unrecorded containers: %s",
                             self._log_name, e)
