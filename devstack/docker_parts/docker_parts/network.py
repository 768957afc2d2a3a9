"""Zun's network driver for the local cloud's Docker hosts (``[network] driver =
local-bridge``, entry point group ``zun.network.driver``).

Why a stand-in: this kernel has no Open vSwitch, so no Neutron agent can bind a
port and kuryr-libnetwork has nothing to plug into.  Everything else stays
upstream's: this class *is* Zun's ``KuryrNetwork`` (Neutron ports created,
updated and deleted through Zun's own Neutron client, the container's
``addresses`` built from the port, security groups on ports) except for the one
place where kuryr would have Docker ask Neutron for the wiring: the Docker
network of a Neutron network is a plain Docker ``bridge`` network on the Linux
bridge ``[local_bridge] bridge``, with the Neutron subnet's CIDR and gateway, so
Docker gives each container exactly its port's fixed IP.  Every Docker host of
the local cloud runs in the same network namespace and shares that bridge, as
hosts share a provider network.
"""

from oslo_config import cfg
from oslo_log import log as logging

from zun.common import exception
from zun.network import kuryr_network

LOG = logging.getLogger(__name__)

opts = [
    cfg.StrOpt("bridge", default="zunbr0",
               help="The Linux bridge (made by devstack/local-cloud) that every "
                    "Docker host's network is built on."),
]
cfg.CONF.register_opts(opts, group="local_bridge")


def list_opts():
    return [("local_bridge", opts)]


class BridgeNetwork(kuryr_network.KuryrNetwork):
    """KuryrNetwork with Docker's bridge driver instead of kuryr's."""

    def create_network(self, neutron_net_id):
        subnets = self.neutron_api.list_subnets(
            network_id=neutron_net_id).get("subnets", [])
        v4 = [s for s in subnets if s["ip_version"] == 4]
        if not v4:
            raise exception.ZunException(
                "The Neutron network %s has no IPv4 subnet" % neutron_net_id)
        subnet = v4[0]
        ipam = {"Driver": "default",
                "Config": [{"Subnet": subnet["cidr"], "Gateway": subnet["gateway_ip"]}]}
        options = {"com.docker.network.bridge.name": cfg.CONF.local_bridge.bridge,
                   "neutron.net.uuid": neutron_net_id,
                   "neutron.subnet.uuid": subnet["id"]}
        LOG.info("Creating Docker network %s on bridge %s (%s)", neutron_net_id,
                 cfg.CONF.local_bridge.bridge, subnet["cidr"])
        try:
            self.docker.create_network(name=neutron_net_id, driver="bridge",
                                       options=options, ipam=ipam,
                                       check_duplicate=True)
        except Exception:
            # Two creates racing on one host: the other one made it.
            if not self.docker.networks(names=[neutron_net_id]):
                raise
