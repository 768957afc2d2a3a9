"""The few Neutron calls floating IPs need, through openstacksdk's network proxy.

openstacksdk is synchronous: every call runs on the client's bounded thread
pool (:class:`~magnum_spawner.common.sdk.SdkService`), so the hub's event loop
never waits on Neutron.  Floating IPs come back as plain dicts.
"""

import asyncio
import logging

from ..common.errors import CloudError, NotFound
from ..common.sdk import SdkService

log = logging.getLogger(__name__)


def _as_dict(ip):
    return {
        "id": ip.id,
        "floating_ip_address": ip.floating_ip_address,
        "port_id": ip.port_id,
        "status": ip.status,
        "description": ip.description,
    }


class FloatingIPs(SdkService):
    """Asynchronous access to the few Neutron calls floating IPs need."""

    service = "neutron"

    def __init__(self, cloud, max_workers=4):
        super().__init__(cloud, max_workers)
        self._network_ids = {}
        #: releases that outlive a cancelled start (referenced until done)
        self._background = set()

    @property
    def _net(self):
        return self.conn.network

    async def network_id(self, name_or_id):
        """The id of the external network (a uuid or a name), looked up once."""
        if name_or_id not in self._network_ids:
            found = await self._call(self._net.find_network, name_or_id, ignore_missing=True)
            if found is None:
                raise NotFound(
                    f"no network {name_or_id!r} (ZunSpawner.floating_ip_network)",
                    service="neutron",
                )
            self._network_ids[name_or_id] = found.id
        return self._network_ids[name_or_id]

    async def find(self, **filters):
        """Floating IPs matching Neutron's server-side ``filters`` exactly."""
        def run():
            return [_as_dict(ip) for ip in self._net.ips(**filters)]

        found = await self._call(run)
        return [f for f in found if all(f.get(k) == v for k, v in filters.items())]

    async def associate(self, *, network, port_id, description):
        """A floating IP on ``port_id``: the one already there, or a new one.

        The create is sent once.  If it fails without an answer, Neutron may
        have made it anyway: the caller's clean-up releases by ``description``.
        If the caller is cancelled (JupyterHub's start timeout) while it is in
        flight, the request still completes in its thread: what it made is
        released as soon as it answers.
        """
        for existing in await self.find(port_id=port_id):
            return existing
        network_id = await self.network_id(network)
        future = self._submit(
            lambda: _as_dict(self._net.create_ip(
                floating_network_id=network_id, port_id=port_id, description=description,
            ))
        )
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            task = asyncio.ensure_future(self._release_after(future, description))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            raise

    async def _release_after(self, future, description):
        try:
            await future
        except Exception:  # noqa: S110 - its failure was nobody's to report
            pass
        try:
            await self.release(description)
        except CloudError as e:
            log.error("Could not release the floating IP %r: %s", description, e)

    async def release(self, description, ip_id=None):
        """Delete the floating IP ``ip_id`` and every one carrying ``description``.

        Returns the addresses released.  A 404 (already gone) is not an error.
        """
        found = await self.find(description=description)
        ids = {f["id"]: f["floating_ip_address"] for f in found}
        if ip_id and ip_id not in ids:
            ids[ip_id] = None
        for ident in ids:
            await self._call(self._net.delete_ip, ident, ignore_missing=True)
        return [a for a in ids.values() if a]
