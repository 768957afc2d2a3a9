"""Cinder home volumes: one persistent volume per user (or per named server).

The volume is found again at every start - by the id saved in the spawner's state,
by the hub's metadata and by name - created when missing, grown when the configured
size went up, and handed to Zun as a ``mounts`` entry.  It outlives the container:
stopping a server never touches it, and only ``delete_forever`` (when configured)
removes it, and only when this hub made it.

The traits and this server's volume name are in ``home_settings``, Cinder
calls in ``cinder``, the request bodies and the readings of a volume
in ``objects``; this module decides what to do with what it finds.
"""

import asyncio
import logging
import time

from jupyterhub.spawner import SpawnException

from ..common.errors import CloudError, for_user, spawn_error
from ..common.names import LABEL_HUB, LABEL_MANAGED_BY, LABEL_USER, LABEL_USER_ID, per_server
from ..common.owners import ADOPT, MINE, NOT_MINE, OWNER_SENTENCE, UNSURE, Owner, verdict
from ..common.waiting import wait_until
from . import progress as steps
from .home_settings import HomeVolumeSettings
from .objects import (
    ATTACHED_STATES,
    UNUSED_KEY,
    WAIT_STATES,
    attached_to,
    conflicts,
    describe,
    matches_server,
    mounts_for,
    never_mounted,
    owned_by,
    volume_made_here,
    volume_request,
)

log = logging.getLogger(__name__)


#: Statuses of Cinder working on the volume for us (see _wait_usable)
MAKING = frozenset({"creating", "extending", "downloading"})


class _Restart(Exception):
    """The volume went away while we waited: look (or create) again."""


def _reader(cinder, volume):
    """A look at ``volume``: first as given, then as Cinder sees it (None: gone)."""
    pending = [volume]

    async def read():
        return pending.pop() if pending else await cinder.get(volume["id"])

    return read


# -- the mixin ----------------------------------------------------------------


class HomeVolumeMixin(HomeVolumeSettings):
    """Steps for per-user home volumes.

    ZunSpawner calls ``await self.prepare_home_volume()`` in start(), after old
    containers of this server are gone and before the create; it returns the Zun
    ``mounts`` list.  ``delete_forever`` removes the volume when configured.
    """

    def _volume_error(self, message, reason, log_message=None):
        return spawn_error(message, reason=f"home-volume-{reason}", log_message=log_message)

    # -- finding ----------------------------------------------------------------

    def _recorded_volume_ids(self):
        """Volume ids in the hub's saved state of this user's servers: the
        hub's own record that this user (whatever the name now) mounted them."""
        ids = {self.home_volume_id} - {None}
        for orm_spawner in (getattr(self.user, "orm_spawners", None) or {}).values():
            ids.add((getattr(orm_spawner, "state", None) or {}).get("home_volume_id"))
        return ids - {None}

    async def _homes_by_metadata(self, cinder):
        """``(key, volume)`` for each of this server's volumes in ``cinder`` whose
        metadata names this hub and its owner: by the owner's id first (a
        renamed user's home keeps it), then by the user name of homes made
        before ids were recorded."""
        identity = self.home_volume_identity
        per_server_volume = per_server(self.home_volume_name_template)
        for key in (LABEL_USER_ID, LABEL_USER):
            search = {k: identity[k] for k in (LABEL_HUB, key, LABEL_MANAGED_BY)}
            for volume in await cinder.find(metadata=search):
                if matches_server(volume, self.name, per_server_volume):
                    yield key, volume

    async def _find_home_volumes(self, cinder, by_name=True):
        """This server's home volumes, by state id, owner metadata and name.

        Returns ``(found, unsure)``: the live volumes that are this user's
        (:data:`~..common.owners.MINE` or ``ADOPT``), as ``(volume, verdict)``,
        and those whose owner cannot be told, as ``(volume, why)``.  Volumes
        of other users or hubs are left out.  ``by_name=False`` leaves out
        volumes found only by their name (which delete_forever must never touch).
        """
        owner = Owner.of(self.hub_id, self.user)
        recorded = self._recorded_volume_ids()
        seen, found, unsure = set(), [], []

        def judge(volume, how):
            if volume["id"] in seen:
                return
            seen.add(volume["id"])
            meta = volume["metadata"]
            kind, why = verdict(meta, volume.get("created_at"), owner,
                                recorded=volume["id"] in recorded)
            if kind == NOT_MINE:
                # Names are only for people: Cinder allows duplicates, and
                # volumes are told apart by their metadata.
                self.log.warning("Ignoring volume %s: it was found by %s but %s",
                                 describe(volume), how, why)
            elif kind == UNSURE:
                unsure.append((volume, why))
            else:
                found.append((volume, kind))

        if self.home_volume_id:
            volume = await cinder.get(self.home_volume_id)
            if volume is None:
                self.log.warning(
                    "Home volume %s of %s is gone; looking for it by name and metadata",
                    self.home_volume_id, self._log_name,
                )
                self.home_volume_id = None
            else:
                judge(volume, "the id in the hub's state")
        identity = self.home_volume_identity
        async for key, volume in self._homes_by_metadata(cinder):
            judge(volume, f"its metadata {key}")
        if by_name:
            name = self.home_volume_name
            others = {k: v for k, v in identity.items() if k not in (LABEL_USER, LABEL_USER_ID)}
            for volume in await cinder.find(name=name):
                wrong = volume["id"] not in seen and conflicts(volume, others)
                if wrong:
                    self.log.warning(
                        "Ignoring volume %s: it is named %s but belongs elsewhere (%s)",
                        volume["id"], name, wrong,
                    )
                    seen.add(volume["id"])
                    continue
                judge(volume, f"its name {name}")
        return found, unsure

    def _unsure_error(self, unsure):
        """Stop the start: homes that may be this user's, or an earlier one's."""
        what = "; ".join(f"{describe(v)}: {why}" for v, why in unsure)
        return self._volume_error(
            OWNER_SENTENCE,
            reason="owner",
            log_message=f"{self._log_name} (user id {self.user.id}): {what}. If it is "
            f"this user's, set its metadata {LABEL_USER_ID}={self.user.id} and "
            f"{LABEL_HUB}={self.hub_id}; if it is another user's, set their id; "
            "then start again",
        )

    async def _wait_gone(self, cinder, volume, deadline):
        async def gone():
            current = await cinder.get(volume["id"])
            if current is None:
                return True
            if current["status"] != "deleting":
                raise self._volume_error(
                    f"The old home volume {describe(current)} is {current['status']} "
                    "instead of being deleted; tell your administrator.",
                    reason="state",
                )
            return None

        try:
            await wait_until(gone, deadline=deadline, interval=self.home_volume_poll_interval)
        except TimeoutError:
            raise self._volume_error(
                f"The old home volume {describe(volume)} was still being deleted "
                f"after {self.home_volume_timeout:g} s; try again in a minute.",
                reason="timeout",
            ) from None

    async def _wait_usable(self, cinder, volume, deadline, want_size=None):
        """Wait until the volume is available (and at least ``want_size``).

        ``deadline`` (home_volume_timeout) bounds waits for others: a previous
        container letting go, a deletion.  Cinder still making or growing the
        volume is progress, not a stuck state (a busy cinder-volume takes its
        time): that wait is bounded by the start's own limit, start_timeout.
        """
        read = _reader(cinder, volume)
        latest = volume
        last = None

        async def usable():
            nonlocal latest, last
            current = await read()
            if current is None:
                raise _Restart(latest)
            latest = current
            status = current["status"]
            if status != last and last is not None:
                self.emit(*steps.volume_status(status))
            last = status
            big_enough = want_size is None or (current["size"] or 0) >= want_size
            if status == "available" and big_enough:
                return current
            if status == "in-use" and current["multiattach"] and big_enough:
                return current
            if status == "deleting":
                raise _Restart(current)
            if status.startswith("error"):
                raise self._volume_error(
                    f"Your home volume {describe(current)} is in status {status}; "
                    "tell your administrator.",
                    reason="error",
                )
            if status not in MAKING and time.monotonic() > deadline:
                raise TimeoutError
            return None

        try:
            return await wait_until(
                usable, deadline=deadline + self.start_timeout,
                interval=self.home_volume_poll_interval,
            )
        except TimeoutError:
            where = ""
            if last in ATTACHED_STATES and attached_to(latest):
                where = " (attached to container " + ", ".join(attached_to(latest)) + ")"
            raise self._volume_error(
                f"Your home volume {describe(latest)} was still {last}{where} "
                f"after {self.home_volume_timeout:g} s; try again in a minute.",
                reason="timeout",
            ) from None

    # -- creating and growing ---------------------------------------------------

    async def _create_home_volume(self, cinder, size):
        metadata = dict(await self.resolve(self.home_volume_metadata) or {})
        metadata.update(self.home_volume_identity)
        metadata[UNUSED_KEY] = "yes"  # until it is first handed to a container
        attrs = volume_request(
            name=self.home_volume_name,
            size=size,
            metadata=metadata,
            description=f"JupyterHub home of {self.user.name}"
            + (f" (server {self.name})" if self.name else "")
            + f" on hub {self.hub_id}",
            volume_type=await self.resolve(self.home_volume_type),
            availability_zone=await self.home_zone(),
        )
        self.emit(*steps.volume_creating(size))
        # (a create that failed on the way is looked up, and adopted if made)
        volume = await cinder.create(attrs, owner=self.home_volume_identity)
        self.home_volume_id = volume["id"]
        return volume

    async def _wait_created(self, cinder, volume, deadline):
        """Wait for a new volume; one that Cinder could not make is removed again."""
        try:
            return await self._wait_usable(cinder, volume, deadline)
        except SpawnException as e:
            if e.reason != "home-volume-error":
                raise
        # Nothing half-made: an empty volume in error would block every later start.
        try:
            await cinder.delete(volume["id"])
        except CloudError as e:
            self.log.warning("Could not delete failed volume %s: %s", describe(volume), e)
            raise self._volume_error(
                f"Cinder could not create your home volume {describe(volume)} (it is in "
                "status error); tell your administrator.",
                reason="error",
            ) from None
        self.home_volume_id = None
        raise self._volume_error(
            f"Cinder could not create your home volume {describe(volume)} (it went to "
            "status error and was removed); try again, and tell your administrator if "
            "it happens again.",
            reason="error",
        )

    async def _grow(self, cinder, volume, size, deadline):
        have = volume["size"] or 0
        if have > size:
            self.log.info(
                "Home volume %s is %s GiB, more than the %s GiB asked for; volumes "
                "never shrink", describe(volume), have, size,
            )
            return volume
        if have == size:
            return volume
        self.emit(*steps.volume_growing(have, size))
        await cinder.extend(volume["id"], size)
        current = await cinder.get(volume["id"]) or volume
        return await self._wait_usable(cinder, current, deadline, want_size=size)

    async def _resolve_duplicates(self, cinder, live):
        """One home volume out of several found for this server.

        Only a volume this hub made and never handed to a container (so with no
        file on it) is deleted; when more than one may hold files, nothing is
        deleted and the user is told to ask an administrator.
        """
        identity = self.home_volume_identity

        def spare(volume):
            return (
                never_mounted(volume)
                and volume_made_here(volume, self.hub_id)
                and not conflicts(volume, identity)
                and volume["status"] == "available"
                and not attached_to(volume)
            )

        keep = [v for v in live if not spare(v)]
        extra = sorted((v for v in live if spare(v)), key=lambda v: v.get("created_at") or "")
        if len(keep) > 1:
            ids = ", ".join(sorted(v["id"] for v in live))
            raise self._volume_error(
                f"There are {len(live)} home volumes for this server ({ids}); "
                "tell your administrator, who should keep one of them.",
                reason="duplicate",
                log_message=f"{self._log_name}: home volumes {ids} may each hold "
                "files; none was deleted",
            )
        if not keep:
            keep = [extra.pop(0)]  # all of them empty: the oldest stays
        for volume in extra:
            self.log.warning(
                "Deleting home volume %s of %s: a duplicate this hub made and never "
                "mounted (keeping %s)", describe(volume), self._log_name, describe(keep[0]),
            )
            await cinder.delete(volume["id"])
        return keep[0]

    async def _find_or_create(self, cinder, size, deadline):
        """This server's live home volume, made when there is none.

        Called under the volume name's lock.  A create whose caller was
        cancelled is still on its way to Cinder: it is awaited first, so that
        its volume is found rather than a second one made.
        """
        name = self.home_volume_name
        pending = cinder.creating.get(name)
        if pending is not None and not pending.done():
            self.log.info("%s: waiting for an earlier create of volume %s", self._log_name, name)
            await asyncio.wait([pending])
        found, unsure = await self._find_home_volumes(cinder)
        candidates = [v for v, _ in found]
        live = [v for v in candidates if v["status"] != "deleting"]
        if unsure and not live:
            # Never guess: a new empty home would hide the user's files, and
            # someone else's would show theirs.
            raise self._unsure_error(unsure)
        if unsure:
            self.log.warning("%s: using its own home volume; not %s", self._log_name,
                             "; ".join(f"{describe(v)} ({why})" for v, why in unsure))
        if len(live) > 1:
            live = [await self._resolve_duplicates(cinder, live)]
        if live:
            self.emit(10, "Found your home folder")
            return live[0]
        for old in candidates:
            self.emit(10, "Waiting for your previous home folder to be deleted")
            await self._wait_gone(cinder, old, deadline)
            if self.home_volume_id == old["id"]:
                self.home_volume_id = None
        create = asyncio.ensure_future(self._create_home_volume(cinder, size))
        # (an error of a create nobody awaits any more is logged, not raised)
        create.add_done_callback(lambda t: t.cancelled() or t.exception())
        cinder.creating[name] = create
        volume = await asyncio.shield(create)
        return await self._wait_created(cinder, volume, deadline)

    async def _home_volume(self, cinder, size):
        deadline = time.monotonic() + self.home_volume_timeout
        while True:
            try:
                # One find-or-create per volume name at a time in the hub: a
                # default and a named server sharing home-{username}, started
                # together, make one volume, not two.
                async with cinder.name_lock(self.home_volume_name):
                    volume = await self._find_or_create(cinder, size, deadline)
                volume = await self._wait_usable(cinder, volume, deadline)
                return await self._grow(cinder, volume, size, deadline)
            except _Restart as restart:
                gone = restart.args[0]
                if self.home_volume_id == gone["id"]:
                    self.home_volume_id = None
                if time.monotonic() > deadline:
                    raise self._volume_error(
                        f"The home volume {describe(gone)} went away while starting; "
                        "try again.",
                        reason="gone",
                    ) from None
                continue

    async def prepare_home_volume(self):
        """Find, create or grow this server's home volume; return Zun ``mounts``."""
        self.home_volume_mounted = False
        size = await self.resolve(self.home_volume_size)
        if not size:
            return []
        mount_path = await self.resolve(self.home_mount_path)
        try:
            volume = await self._home_volume(self.cinder, int(size))
            meta = volume["metadata"]
            # The owner's id (a home made before ids were recorded is adopted
            # here) and the user's present name, for the administrator.
            wanted = {**meta, **Owner.of(self.hub_id, self.user).marks()}
            if never_mounted(volume):
                # From now on it may hold files: never deleted as a spare.
                wanted[UNUSED_KEY] = "no"
            if wanted != meta:
                await self.cinder.replace_metadata(volume["id"], wanted)
        except CloudError as e:
            raise for_user(e, "prepare the home volume") from None
        self.home_volume_id = volume["id"]
        self.home_volume_mounted = True
        self.emit(*steps.volume_ready())
        return mounts_for(volume["id"], mount_path)

    # -- deleting ---------------------------------------------------------------

    async def delete_forever(self):
        """Delete the home volume when configured and when this hub made it."""
        parent = getattr(super(), "delete_forever", None)
        if parent is not None:
            result = parent()
            if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                await result
        if not self.delete_home_volume_on_delete:
            if self.home_volume_id:
                self.log.info(
                    "Keeping home volume %s of %s (delete_home_volume_on_delete is off)",
                    self.home_volume_id, self._log_name,
                )
            return
        cinder = self.cinder
        found, _ = await self._find_home_volumes(cinder, by_name=False)
        identity = self.home_volume_identity
        for volume, kind in found:
            # a home made before ids were recorded goes only if its name is this user's
            sure = kind == MINE or (kind == ADOPT and not conflicts(volume, identity))
            if not volume_made_here(volume, self.hub_id) or not sure:
                self.log.warning(
                    "Not deleting volume %s of %s: this hub did not make it (metadata %s)",
                    describe(volume), self._log_name, volume["metadata"],
                )
                continue
            if not owned_by(volume, self.name):
                self.log.info(
                    "Keeping volume %s: it is %s's home, shared by all their servers; "
                    "it is deleted only with the user", describe(volume), self.user.name,
                )
                continue
            await self._delete_home_volume(cinder, volume)
        self.home_volume_id = None

    async def _delete_home_volume(self, cinder, volume):
        read = _reader(cinder, volume)
        latest = volume

        async def settled():
            nonlocal latest
            current = await read()
            if current is None:
                return "gone"
            latest = current
            return None if current["status"] in WAIT_STATES else current

        try:
            volume = await wait_until(
                settled, deadline=time.monotonic() + self.home_volume_timeout,
                interval=self.home_volume_poll_interval,
            )
        except TimeoutError:
            raise CloudError(
                f"home volume {describe(latest)} was still {latest['status']} after "
                f"{self.home_volume_timeout:g} s; not deleted",
                service="cinder",
            ) from None
        if volume == "gone":
            return
        if volume["status"] == "deleting":
            return
        if await cinder.delete(volume["id"]):
            self.log.info("Deleted home volume %s of %s", describe(volume), self._log_name)
