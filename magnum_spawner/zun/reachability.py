"""How the hub reaches a user's server: the container's own address, or a
Neutron floating IP on the container's port.

On a cloud where the hub's host does not route to the tenant network (a stock
DevStack, most public clouds), the container's fixed IP is unreachable from the
hub.  With ``server_access = "floating_ip"`` the spawner asks Neutron for a
floating IP on the external network and associates it with the container's
Neutron port once the container is Running; the server's URL then uses the
floating address.  The IP is released before the container is deleted (stop, a
failed start, a cancelled start), so none is ever left allocated to nobody.

Every floating IP the spawner makes carries a description naming the hub and the
container (:func:`description`): a stop finds them by it even when the state was
lost or the answer to the create never arrived.

Neutron is reached through openstacksdk's network proxy on the hub's shared
keystoneauth session, on a bounded thread pool (the event loop never waits).
"""

import asyncio
import logging

from traitlets import Integer, List, TraitError, Unicode, Union, validate

from . import objects
from ..common.errors import CloudError, NotFound, spawn_error
from ..common.host import Host
from ..common.sdk import SdkService

log = logging.getLogger(__name__)

FIXED_IP = "fixed_ip"
FLOATING_IP = "floating_ip"

#: Neutron's limit on a description.
MAX_DESCRIPTION = 255


# -- pure helpers -------------------------------------------------------------


def description(hub_id, container_name):
    """The description that marks a floating IP as this server's (exact match)."""
    return f"magnum-spawner hub={hub_id} container={container_name}"[:MAX_DESCRIPTION]


def container_port(container, network=None):
    """The Neutron port of the address the hub would use (``objects.address_entry``)."""
    return (objects.address_entry(container, network) or {}).get("port")


def exposed_ports_body(ports):
    """Zun's ``exposed_ports`` (microversion 1.24+): ``{"8888/tcp": {}}``.

    Zun 18's ``build_exposed_ports`` takes keys ``"<port>"`` or
    ``"<port>/<tcp|udp>"`` with any value; its Docker driver then makes a
    security group for the container that lets those ports in from anywhere.
    """
    body = {}
    for port in ports:
        text = str(port).strip()
        number, _, proto = text.partition("/")
        proto = proto or "tcp"
        if not number.isdigit() or not 1 <= int(number) <= 65535 or proto not in ("tcp", "udp"):
            raise ValueError(
                f"exposed port {port!r}: use a port number, optionally with /tcp or /udp"
            )
        body[f"{int(number)}/{proto}"] = {}
    return body


def _as_dict(ip):
    return {
        "id": ip.id,
        "floating_ip_address": ip.floating_ip_address,
        "port_id": ip.port_id,
        "status": ip.status,
        "description": ip.description,
    }


# -- Neutron through openstacksdk ----------------------------------------------


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



# -- the mixin ----------------------------------------------------------------


class ReachabilityMixin(Host):
    """Traits and steps for how the hub reaches the server.

    ZunSpawner sends :meth:`exposed_ports_for_body` in the create body, calls
    ``await self.reachable_address(container)`` once the container is Running
    and ``await self.release_floating_ip()`` before it deletes a container.
    """

    server_access = Unicode(
        FIXED_IP,
        config=True,
        help="""
        How the hub (and its proxy) reach a user's server.

        - ``"fixed_ip"`` (default): the container's own address on
          :attr:`network`, as Zun reports it.  Right when the hub runs on that
          network, or its host routes to it (the local cloud, a hub VM on the
          tenant network).
        - ``"floating_ip"``: once the container is Running, a Neutron floating IP
          from :attr:`floating_ip_network` is associated with the container's
          port and the server's URL uses it.  Needed when the hub's host does not
          route to the tenant network (a stock DevStack: the hub is on the host,
          the containers behind a Neutron router).  The floating IP is released
          before the container is deleted, on stop and on a failed or cancelled
          start.  Each server takes one floating IP of the project's quota
          (Neutron's default quota is 50).

        The server's port must also be open to the hub: see :attr:`exposed_ports`.
        Example: ``c.ZunSpawner.server_access = "floating_ip"``.
        """,
    )

    floating_ip_network = Unicode(
        "public",
        config=True,
        help="""
        The external Neutron network (name or uuid) floating IPs come from, when
        :attr:`server_access` is ``"floating_ip"``.  The container's network must
        have a router with its gateway on this network.  DevStack calls it
        ``public``.  Example: ``c.ZunSpawner.floating_ip_network = "ext-net"``.
        """,
    )

    exposed_ports = List(
        Union([Integer(), Unicode()]),
        config=True,
        help="""
        Ports of the container to open to the outside, sent as Zun's
        ``exposed_ports`` (microversion 1.24 or later): Zun's Docker driver then
        gives the container a security group of its own that lets these ports in
        (from any address).  Each entry is a port number, or ``"8888/tcp"`` /
        ``"53/udp"``.  Without it, a container gets the project's ``default``
        security group, which on most clouds (DevStack included) refuses incoming
        connections from outside the group - the hub could not reach port 8888.

        Zun refuses ``exposed_ports`` together with :attr:`security_groups`: set
        one or the other (a group of yours that lets the hub in on the server's
        port works as well).  Default: none.  Example:
        ``c.ZunSpawner.exposed_ports = [8888]`` (the spawner's :attr:`port`).
        """,
    )

    @validate("server_access")
    def _validate_server_access(self, proposal):
        if proposal.value not in (FIXED_IP, FLOATING_IP):
            raise TraitError(
                f"server_access must be {FIXED_IP!r} or {FLOATING_IP!r}, not {proposal.value!r}"
            )
        return proposal.value

    @validate("exposed_ports")
    def _validate_exposed_ports(self, proposal):
        try:
            exposed_ports_body(proposal.value)
        except ValueError as e:
            raise TraitError(str(e)) from None
        return proposal.value

    floating_ip_id = None
    floating_ip_address = None
    state_fields = ({"floating_ip_id": "floating_ip_id",
                     "floating_ip_address": "floating_ip_address"},)

    @property
    def neutron(self):
        return FloatingIPs.shared(self.cloud_context(), self.api_workers)

    @property
    def floating_ip_description(self):
        return description(self.hub_id, self.container_name_in_state or self.container_name)

    def exposed_ports_for_body(self):
        """``exposed_ports`` for the create body (None when none are set)."""
        if self.exposed_ports and self.security_groups:
            # Zun's schema refuses the pair with a 400 naming neither trait
            raise spawn_error(
                "The hub is misconfigured (exposed_ports and security_groups); "
                "tell your administrator.",
                reason="config",
                log_message="Zun accepts ZunSpawner.exposed_ports or "
                "ZunSpawner.security_groups, not both: set one of them",
            )
        return exposed_ports_body(self.exposed_ports) or None

    # -- steps ------------------------------------------------------------------

    async def reachable_address(self, container, fixed_address):
        """The address the hub uses for a Running container."""
        if self.server_access != FLOATING_IP:
            return fixed_address
        port_id = container_port(container, self.network)
        if not port_id:
            raise CloudError(
                f"Zun reports no Neutron port for container {container.get('uuid')}: "
                "no floating IP can be associated with it",
                service="neutron",
            )
        ip = await self.neutron.associate(
            network=self.floating_ip_network,
            port_id=port_id,
            description=self.floating_ip_description,
        )
        self.floating_ip_id = ip["id"]
        self.floating_ip_address = ip["floating_ip_address"]
        self.log.info(
            "%s: floating IP %s on port %s (fixed %s)",
            self._log_name, self.floating_ip_address, port_id, fixed_address,
        )
        return self.floating_ip_address

    async def release_floating_ip(self):
        """Release this server's floating IP(s); a no-op with fixed IPs."""
        if self.server_access != FLOATING_IP and not self.floating_ip_id:
            return
        released = await self.neutron.release(
            self.floating_ip_description, self.floating_ip_id
        )
        if released:
            self.log.info("%s: released floating IP %s", self._log_name, ", ".join(released))
        self.floating_ip_id = None
        self.floating_ip_address = None
