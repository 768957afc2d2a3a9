"""Zun's network driver for the local cloud's Docker hosts (``[network] driver =
local-bridge``, entry point group ``zun.network.driver``).

Why a stand-in: this kernel has no Open vSwitch, so no Neutron agent can bind a
port and kuryr-libnetwork has nothing to plug into.  Everything else stays
upstream's: this class *is* Zun's ``KuryrNetwork`` (Neutron ports created,
updated and deleted through Zun's own Neutron client, the container's
``addresses`` built from the port, security groups on ports) except for the one
place where kuryr would have Docker ask Neutron for the wiring: the Docker
network of a Neutron network is a plain Docker ``bridge`` network, with the
Neutron subnets' CIDRs and gateways (an IPv4 and/or an IPv6 one), so Docker
gives each container exactly its port's fixed IPs.  The local cloud's own
network (``[local_bridge] network``) is on the Linux bridge ``[local_bridge]
bridge``; any other Neutron network (a project's, a test's) on a Linux bridge
named after it (``zunbr-`` and the network id's first 9 hex digits).  Every
Docker host of the local cloud runs in the same network namespace and shares
these bridges, as hosts share a provider network.

A subnet without a gateway (``gateway_ip`` null) still needs an address on
its bridge, which Docker would take from the subnet's first address, where
Neutron's pool starts too: the driver takes one from Neutron instead, as a
port owned by ``network:local-bridge`` (as Neutron's DHCP agent takes one for
its port), shared by the hosts and deleted with the network.

Zun itself never removes the Docker network of a Neutron network that was
deleted; here, as its bridge holds the subnet's addresses in the one namespace
(a later subnet may reuse them), such a Docker network with no container left
is removed before a new one is made.
"""

from neutronclient.common import exceptions as n_exceptions
from oslo_config import cfg
from oslo_log import log as logging

from zun.common import exception
from zun.network import kuryr_network

LOG = logging.getLogger(__name__)
# The owner of the Neutron ports whose addresses the bridges of subnets
# without a gateway hold.
BRIDGE_PORT_OWNER = "network:local-bridge"

opts = [
    cfg.StrOpt("bridge", default="zunbr0",
               help="The Linux bridge (made by devstack/local-cloud) that every "
                    "Docker host's network of the local network is built on."),
    cfg.StrOpt("network", default="",
               help="The Neutron network (the stub's shared one) whose Docker "
                    "networks use the bridge above; every other network gets "
                    "a bridge of its own."),
]
cfg.CONF.register_opts(opts, group="local_bridge")


def list_opts():
    return [("local_bridge", opts)]


class BridgeNetwork(kuryr_network.KuryrNetwork):
    """KuryrNetwork with Docker's bridge driver instead of kuryr's."""

    def create_network(self, neutron_net_id):
        shared = self.neutron_api.get_neutron_network(neutron_net_id)["shared"]
        subnets = self.neutron_api.list_subnets(
            network_id=neutron_net_id).get("subnets", [])
        by_version = {v: [s for s in subnets if s["ip_version"] == v] for v in (4, 6)}
        if not subnets:
            raise exception.ZunException(
                "The Neutron network %s has no subnet" % neutron_net_id)
        config, options = [], {"neutron.net.uuid": neutron_net_id,
                               "neutron.net.shared": str(shared)}
        for version, key in ((4, "neutron.subnet.uuid"), (6, "neutron.subnet.v6.uuid")):
            if len(by_version[version]) > 1:
                raise exception.ZunException(
                    "Multiple Neutron subnets exist with ip version %s" % version)
            for subnet in by_version[version]:
                config.append({"Subnet": subnet["cidr"],
                               "Gateway": subnet["gateway_ip"]
                               or self._bridge_address(subnet)})
                options[key] = subnet["id"]
        bridge = (cfg.CONF.local_bridge.bridge
                  if neutron_net_id == cfg.CONF.local_bridge.network
                  else "zunbr-" + neutron_net_id.replace("-", "")[:9])
        options["com.docker.network.bridge.name"] = bridge
        self._remove_stale_networks()
        LOG.info("Creating Docker network %s on bridge %s (%s)", neutron_net_id,
                 bridge, ", ".join(c["Subnet"] for c in config))
        try:
            self.docker.create_network(name=neutron_net_id, driver="bridge",
                                       options=options,
                                       ipam={"Driver": "default", "Config": config},
                                       enable_ipv6=bool(by_version[6]),
                                       check_duplicate=True)
        except Exception:
            # Two creates racing on one host: the other one made it.
            if not self.docker.networks(names=[neutron_net_id]):
                raise

    def _bridge_address(self, subnet):
        """The address of the bridge of a subnet without a gateway: that of
        its network:local-bridge port, made if there is none yet."""
        ports = self.neutron_api.list_ports(
            network_id=subnet["network_id"],
            device_owner=BRIDGE_PORT_OWNER).get("ports", [])
        for port in ports:
            for ip in port["fixed_ips"]:
                if ip["subnet_id"] == subnet["id"]:
                    return ip["ip_address"]
        port = self.neutron_api.create_port({"port": {
            "network_id": subnet["network_id"], "tenant_id": subnet["project_id"],
            "device_owner": BRIDGE_PORT_OWNER, "device_id": "local-bridge",
            "fixed_ips": [{"subnet_id": subnet["id"]}]}}, admin=True)["port"]
        LOG.info("Subnet %s has no gateway: its bridge takes port %s's address",
                 subnet["id"], port["id"])
        return port["fixed_ips"][0]["ip_address"]

    def _remove_stale_networks(self):
        """Remove this host's Docker networks of deleted Neutron networks
        that no container uses any more."""
        for net in self.docker.networks(filters={"driver": "bridge"}):
            neutron_id = (net.get("Options") or {}).get("neutron.net.uuid")
            if not neutron_id or neutron_id == cfg.CONF.local_bridge.network:
                continue
            try:
                self.neutron_api.get_neutron_network(neutron_id)
                continue
            except (exception.NetworkNotFound, n_exceptions.NotFound):
                pass
            if self.docker.inspect_network(net["Id"]).get("Containers"):
                continue
            LOG.info("Removing Docker network %s: its Neutron network is gone",
                     net["Name"])
            try:
                self.docker.remove_network(net["Id"])
            except Exception:
                LOG.exception("Could not remove Docker network %s", net["Name"])
