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
container, and one association's token (:func:`description`): a stop finds them
by it even when the state was lost or the answer to the create never arrived,
and deletes nothing the hub did not make (an IP already on the port is used,
never released).  A cancelled start's late answer releases its own IP only.

Neutron's calls are in ``neutron``, the pure helpers (description, port,
``exposed_ports``) in ``objects``.
"""

import secrets

from traitlets import Integer, List, TraitError, Unicode, Union, validate

from ..common.errors import CloudError, spawn_error
from ..common.host import Host
from .neutron import FloatingIPs
from .objects import container_port, description, exposed_ports_body

FIXED_IP = "fixed_ip"
FLOATING_IP = "floating_ip"


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
          start.  A floating IP already on the port (an administrator's) is
          used and never released: the hub deletes only IPs it made.  Each
          server takes one floating IP of the project's quota (Neutron's
          default quota is 50).

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
    def floating_ip_mark(self):
        """What every floating IP the hub makes for this server's container carries."""
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
        name = self.container_name_in_state or self.container_name
        ip = await self.neutron.associate(
            network=self.floating_ip_network,
            port_id=port_id,
            mark=description(self.hub_id, name),
            # this association's own: a late release of it touches nothing else
            description=description(self.hub_id, name, secrets.token_hex(6)),
        )
        if not ip["ours"]:
            self.log.warning(
                "%s: port %s already has floating IP %s (%r), not made by the hub: "
                "using it, never releasing it", self._log_name, port_id,
                ip["floating_ip_address"], ip["description"])
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
        released = await self.neutron.release(self.floating_ip_mark, self.floating_ip_id)
        if released:
            self.log.info("%s: released floating IP %s", self._log_name, ", ".join(released))
        self.floating_ip_id = None
        self.floating_ip_address = None
