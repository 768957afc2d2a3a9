"""The few Neutron calls floating IPs need, through openstacksdk's network proxy.

openstacksdk is synchronous: every call runs on the client's bounded thread
pool (:class:`~magnum_spawner.common.sdk.SdkService`), so the hub's event loop
never waits on Neutron.  Floating IPs come back as plain dicts.

The hub deletes only floating IPs it made, known by their description
(:func:`~.objects.description`): a *mark* naming the hub and the container,
plus one association's own token.  A release for one association (a start's
late answer) touches that association's IP only; a release for a server
touches every IP marked for it, never one the mark does not name (an
administrator's IP on the port, another start's).
"""

import asyncio
import logging

from ..common.errors import CloudError, NotFound
from ..common.sdk import SdkService
from .objects import made_for

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

    async def _project_ips(self):
        """Every floating IP of the hub's project (an admin's token sees all projects')."""
        def run():
            project = self.conn.current_project_id
            filters = {"project_id": project} if project else {}
            return [_as_dict(ip) for ip in self._net.ips(**filters)]

        return await self._call(run)

    async def associate(self, *, network, port_id, mark, description):
        """A floating IP on ``port_id``: the one already there, or a new one.

        The new one carries ``description`` (``mark`` plus this association's
        token).  One already on the port is used, and is ``"ours"`` only when
        ``mark`` names it: an administrator's IP is never released by the hub.

        The create is sent once.  If it fails without an answer, Neutron may
        have made it anyway: the caller's clean-up releases by ``mark``.  If the
        caller is cancelled (JupyterHub's start timeout) while it is in flight,
        the request still completes in its thread: what it made, and only
        that, is released as soon as it answers.
        """
        for existing in await self.find(port_id=port_id):
            return dict(existing, ours=made_for(existing["description"], mark))
        network_id = await self.network_id(network)
        future = self._submit(
            lambda: _as_dict(self._net.create_ip(
                floating_network_id=network_id, port_id=port_id, description=description,
            ))
        )
        try:
            return dict(await asyncio.shield(future), ours=True)
        except asyncio.CancelledError:
            task = asyncio.ensure_future(self._release_after(future, description))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
            raise

    async def _release_after(self, future, description):
        """Once a cancelled create ends, release what it made (and nothing else)."""
        try:
            made = await future
        except Exception:
            made = None  # no answer: Neutron may have made it; its description says
        try:
            if made is not None:
                await self._delete(made["id"])
            else:
                for ip in await self.find(description=description):
                    await self._delete(ip["id"])
        except CloudError as e:
            log.error("Could not release the floating IP %r: %s", description, e)

    async def _delete(self, ident):
        await self._call(self._net.delete_ip, ident, ignore_missing=True)

    async def release(self, mark, ip_id=None):
        """Delete every floating IP the hub made for the server ``mark`` names.

        ``ip_id`` (the one the server's state records) goes too when it carries
        the mark; one that does not (on the port before the hub came) is left.
        Returns the addresses released.  A 404 (already gone) is not an error.
        """
        released = []
        for ip in await self._project_ips():
            if not made_for(ip["description"], mark):
                if ip["id"] == ip_id:
                    log.info("Floating IP %s was not made by the hub (%r); leaving it",
                             ip["floating_ip_address"], ip["description"])
                continue
            await self._delete(ip["id"])
            released.append(ip["floating_ip_address"])
        return released
