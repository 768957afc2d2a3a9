"""The few Cinder calls home volumes need, through openstacksdk's block-storage proxy.

openstacksdk is synchronous: every call runs on the client's bounded thread pool
(:class:`~magnum_spawner.common.sdk.SdkService`), so the hub's event loop never
waits on Cinder.  Volumes come back as plain dicts.
"""

import asyncio
import json

from ..common.errors import NotFound
from ..common.sdk import SdkService


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
    }


class CinderVolumes(SdkService):
    """Asynchronous access to the few Cinder calls home volumes need."""

    service = "cinder"

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

    async def create(self, attrs):
        return await self._call(lambda: _as_dict(self._proxy.create_volume(**attrs)))

    async def replace_metadata(self, volume_id, metadata):
        """Set the volume's whole metadata (``PUT /volumes/<id>``)."""
        await self._call(lambda: self._proxy.update_volume(volume_id, metadata=dict(metadata)))

    async def extend(self, volume_id, size):
        await self._call(self._proxy.extend_volume, volume_id, int(size))

    async def delete(self, volume_id):
        """Delete; True when a delete was sent, False when the volume was gone."""
        try:
            await self._call(self._proxy.delete_volume, volume_id, ignore_missing=False)
        except NotFound:
            return False
        return True
