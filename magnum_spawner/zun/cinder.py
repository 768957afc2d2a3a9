"""The few Cinder calls home volumes need, through openstacksdk's block-storage proxy.

openstacksdk is synchronous: every call runs on the client's bounded thread pool
(:class:`~magnum_spawner.common.sdk.SdkService`), so the hub's event loop never
waits on Cinder.  Volumes come back as plain dicts.

A transient failure (no answer, a reset, a 5xx) does not fail a start: reads
are sent again, and so is each write, but only once a look shows that Cinder
did not do it after all (a gateway may answer 502 after the work is done, a
connection may drop with the answer): a create is found by the volume's name
and owner metadata and adopted, never made twice; an extend that is under way
or done, or a delete of a volume that is going, is not sent again.
"""

import asyncio
import json
import logging

from ..common.errors import CloudError, NotFound, is_transient
from ..common.sdk import SdkService

log = logging.getLogger(__name__)


def _as_dict(volume):
    return {
        "id": volume.id,
        "name": volume.name,
        "status": volume.status,
        "size": volume.size,
        "metadata": dict(volume.metadata or {}),
        "attachments": list(volume.attachments or []),
        "multiattach": bool(volume.is_multiattach),
        "created_at": volume.created_at or "",
        "availability_zone": volume.availability_zone,
    }


class CinderVolumes(SdkService):
    """Asynchronous access to the few Cinder calls home volumes need."""

    service = "cinder"
    #: Seconds between the tries of a read or of a write found not done: five
    #: tries in 7.5 s, well within ``home_volume_timeout`` and ``start_timeout``
    read_retry_delays = write_retry_delays = (0.5, 1.0, 2.0, 4.0)

    def __init__(self, cloud, max_workers=4):
        super().__init__(cloud, max_workers)
        #: volume name -> lock: one find-or-create at a time per name in the hub
        self.name_locks = {}
        #: volume name -> create task still on its way (its caller may be gone)
        self.creating = {}

    def name_lock(self, name):
        lock = self.name_locks.get(name)
        if lock is None:
            lock = self.name_locks[name] = asyncio.Lock()
        return lock

    @property
    def _proxy(self):
        return self.conn.block_storage

    async def get(self, volume_id):
        """The volume, or None when Cinder answers 404."""
        try:
            return await self._read(lambda: _as_dict(self._proxy.get_volume(volume_id)))
        except NotFound:
            return None

    async def find(self, *, name=None, metadata=None):
        """Volumes with exactly this name and/or carrying all this metadata."""
        query = {}
        if name is not None:
            query["name"] = name
        if metadata:
            # Sent as ``metadata=``; Cinder reads it as a dict literal (requests
            # would send only a dict's keys).  openstacksdk calls it
            # ``properties``: under its server-side name it would also filter
            # client-side, comparing each volume's dict with this string.
            query["properties"] = json.dumps(metadata, sort_keys=True)

        def run():
            return [_as_dict(v) for v in self._proxy.volumes(details=True, **query)]

        found = await self._read(run)
        if name is not None:
            found = [v for v in found if v["name"] == name]
        if metadata:
            found = [
                v for v in found
                if all(v["metadata"].get(k) == val for k, val in metadata.items())
            ]
        return found

    async def _settled(self, what, send, done):
        """``await send()`` until it works; after a transient failure ``await
        done()`` looks whether Cinder did it all the same (its result ends the
        tries; None: not done, send again)."""
        for delay in (*self.write_retry_delays, None):
            try:
                return await send()
            except CloudError as e:
                if not is_transient(e):
                    raise
                result = await done()
                if result is not None:
                    log.info("%s: %s, but Cinder did it", what, e)
                    return result
                if delay is None:
                    raise
                log.info("%s: %s; not done, again in %.1f s", what, e, delay)
                await asyncio.sleep(delay)

    async def create(self, attrs, owner):
        """Create a volume; after a transient failure the volume named
        ``attrs["name"]`` carrying the ``owner`` metadata is adopted if Cinder
        made it (the caller holds the name's lock: no one else makes it)."""
        async def made():
            found = [v for v in await self.find(metadata=owner) if v["name"] == attrs["name"]]
            return min(found, key=lambda v: v["created_at"]) if found else None

        return await self._settled(
            f"create of volume {attrs['name']}",
            lambda: self._call(lambda: _as_dict(self._proxy.create_volume(**attrs))),
            made,
        )

    async def replace_metadata(self, volume_id, metadata):
        """Set the volume's whole metadata (``PUT /volumes/<id>``; sent again
        after a transient failure: setting the same value twice is harmless)."""
        async def again():
            return None

        await self._settled(
            f"metadata of volume {volume_id}",
            lambda: self._call(lambda: self._proxy.update_volume(
                volume_id, metadata=dict(metadata))),
            again,
        )

    async def extend(self, volume_id, size):
        async def extended():
            volume = await self.get(volume_id)
            if volume is None or volume["status"] == "extending" or (
                    volume["size"] or 0) >= size:
                return True
            return None

        await self._settled(
            f"extend of volume {volume_id}",
            lambda: self._call(self._proxy.extend_volume, volume_id, int(size)),
            extended,
        )

    async def delete(self, volume_id):
        """Delete; True when a delete was sent, False when the volume was gone."""
        async def going():
            volume = await self.get(volume_id)
            return True if volume is None or volume["status"] == "deleting" else None

        try:
            return await self._settled(
                f"delete of volume {volume_id}",
                lambda: self._call(self._proxy.delete_volume, volume_id,
                                   ignore_missing=False),
                going,
            ) is not False
        except NotFound:
            return False
