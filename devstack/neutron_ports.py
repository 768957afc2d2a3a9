"""Ports the Neutron stub creates, with the fixed IPs Neutron's IPAM would give.

On the Docker path Zun's network driver
(``devstack/docker_parts/docker_parts/network.py``) asks Neutron for a port per
container (``POST /v2.0/ports``), puts the container on a Docker bridge with the
port's address(es), and deletes or unbinds the port with the container.  This
module is the stub's side of that: a port store in memory (the stub lives as
long as the cloud) for every network the stub knows, that allocates addresses
from each subnet's pool (one IPv4 subnet and every IPv6 subnet of the network,
or the subnets and addresses the request names), refuses an address already in
use (409 ``IpAddressAlreadyAllocated``) and a full pool (409
``IpAddressGenerationFailure``), and reports a port bound to a host
(``binding:host_id``) with a ``binding:vif_type``, as Neutron does.  Stdlib only.
"""

import hashlib
import ipaddress
import threading
import uuid

CREATED = "2026-01-01T00:00:00Z"
# What the Linux bridge mechanism driver reports for a bound port: the
# containers are on Linux bridges (docker_parts).
BOUND_VIF_TYPE = "bridge"


class PortError(Exception):
    def __init__(self, status, kind, message):
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


def default_pool(cidr, gateway_ip):
    """Neutron's allocation pool of a subnet made without one: every host
    address but the gateway's (as one range when the gateway is the first)."""
    net = ipaddress.ip_network(cidr)
    first, last = net.network_address + 1, net.broadcast_address - 1
    if net.version == 6:
        last = net.broadcast_address
    if gateway_ip and ipaddress.ip_address(gateway_ip) == first:
        first += 1
    return [{"start": str(first), "end": str(last)}]


class PortStore:
    """The ports of every network in *networks* (the stub's lists of network
    and subnet documents, read at each call: networks come and go)."""

    def __init__(self, networks, subnets, security_group_id):
        self.networks, self.subnets = networks, subnets
        self.security_group_id = security_group_id
        self.ports = {}
        self.lock = threading.Lock()
        self.next = {}  # subnet id -> the next address to try

    def list(self):
        with self.lock:
            return [dict(p) for p in self.ports.values()]

    def _in_use(self):
        return {ip["ip_address"] for p in self.ports.values() for ip in p["fixed_ips"]}

    def _network(self, network_id):
        for network in self.networks:
            if network["id"] == network_id:
                return network
        raise PortError(404, "NetworkNotFound", "Network %s could not be found." % network_id)

    def _subnets_of(self, network_id):
        return [s for s in self.subnets if s["network_id"] == network_id]

    def _allocate(self, subnet, used):
        pool = subnet["allocation_pools"][0]
        first = ipaddress.ip_address(pool["start"])
        last = ipaddress.ip_address(pool["end"])
        size = int(last) - int(first) + 1
        # Round robin through the pool, as Neutron avoids reusing an address
        # that was just released; of len(used) + 1 addresses one is free.
        candidate = self.next.get(subnet["id"], first)
        for _ in range(min(size, len(used) + 1)):
            if str(candidate) not in used:
                self.next[subnet["id"]] = candidate + 1 if candidate < last else first
                return str(candidate)
            candidate = candidate + 1 if candidate < last else first
        raise PortError(409, "IpAddressGenerationFailure",
                        "No more IP addresses available on network %s" % subnet["network_id"])

    def _fixed_ips(self, network_id, wanted):
        subnets = self._subnets_of(network_id)
        used = self._in_use()
        if not wanted:
            # one IPv4 subnet, and every IPv6 one
            v4 = [s for s in subnets if s["ip_version"] == 4][:1]
            wanted = [{"subnet_id": s["id"]} for s in v4 + [
                s for s in subnets if s["ip_version"] == 6]]
        fixed = []
        for entry in wanted:
            address = entry.get("ip_address")
            candidates = [s for s in subnets
                          if entry.get("subnet_id") in (None, s["id"])]
            if address:
                ip = ipaddress.ip_address(address)
                candidates = [s for s in candidates if ip in ipaddress.ip_network(s["cidr"])]
                if not candidates:
                    raise PortError(400, "InvalidIpForNetwork",
                                    "IP address %s is not a valid IP for the specified "
                                    "network" % address)
                if address in used:
                    raise PortError(409, "IpAddressAlreadyAllocated",
                                    "IP address %s already allocated in subnet %s"
                                    % (address, candidates[0]["id"]))
            elif not candidates:
                raise PortError(400, "InvalidInput", "Invalid input for operation: "
                                "subnet %s is not on network %s"
                                % (entry.get("subnet_id"), network_id))
            else:
                address = self._allocate(candidates[0], used)
            used.add(address)
            fixed.append({"subnet_id": candidates[0]["id"], "ip_address": address})
        return fixed

    @staticmethod
    def _binding(port):
        # An unbound port is DOWN: Zun takes a port made beforehand only then
        # (NeutronAPI.ensure_neutron_port_usable).
        bound = bool(port.get("binding:host_id"))
        port["binding:host_id"] = port["binding:host_id"] if bound else ""
        port["binding:vif_type"] = BOUND_VIF_TYPE if bound else "unbound"
        port["binding:vif_details"] = {"port_filter": False} if bound else {}
        port["status"] = "ACTIVE" if bound else "DOWN"

    def create(self, body, project_id):
        network = self._network(body.get("network_id"))
        with self.lock:
            fixed = self._fixed_ips(network["id"], body.get("fixed_ips") or [])
            port_id = str(uuid.uuid4())
            mac = hashlib.sha256(port_id.encode()).hexdigest()[:8]
            project = body.get("project_id") or body.get("tenant_id") or project_id
            port = {
                "id": port_id,
                "name": body.get("name", ""),
                "network_id": network["id"],
                "tenant_id": project,
                "project_id": project,
                "device_id": body.get("device_id", ""),
                "device_owner": body.get("device_owner", ""),
                "mac_address": "fa:16:3e:" + ":".join(mac[i:i + 2] for i in range(0, 6, 2)),
                "fixed_ips": fixed,
                "admin_state_up": body.get("admin_state_up", True),
                "status": "DOWN",
                "security_groups": body.get("security_groups", [self.security_group_id]),
                "binding:host_id": body.get("binding:host_id", ""),
                "binding:vnic_type": "normal",
                "binding:profile": {},
                "port_security_enabled": False,
                "allowed_address_pairs": [],
                "extra_dhcp_opts": [],
                "description": body.get("description", ""),
                "tags": [],
                "created_at": CREATED,
                "updated_at": CREATED,
                "revision_number": 1,
            }
            self._binding(port)
            self.ports[port_id] = port
            return dict(port)

    def update(self, port_id, body):
        with self.lock:
            port = self.ports.get(port_id)
            if port is None:
                raise PortError(404, "PortNotFound", "Port %s could not be found." % port_id)
            for key in ("name", "device_id", "device_owner", "binding:host_id",
                        "binding:profile", "security_groups", "description",
                        "admin_state_up", "mac_address"):
                if key in body:
                    port[key] = body[key]
            self._binding(port)  # an unbound port's host is "" (None clears it)
            port["revision_number"] += 1
            return dict(port)

    def delete(self, port_id):
        with self.lock:
            if self.ports.pop(port_id, None) is None:
                raise PortError(404, "PortNotFound", "Port %s could not be found." % port_id)

    def delete_network(self, network_id):
        """The ports of a network that is deleted go with it."""
        with self.lock:
            for port_id in [p["id"] for p in self.ports.values()
                            if p["network_id"] == network_id]:
                del self.ports[port_id]


def subnet_for(cidr):
    """The subnet's addresses for *cidr*: gateway the first host, the pool
    the rest (from the tenth host on in a subnet of more than 32 addresses,
    leaving a few for the hosts' own use)."""
    net = ipaddress.ip_network(cidr)
    hosts = list(net.hosts()) if net.num_addresses <= 65536 else None
    if hosts is None:
        raise ValueError("subnet %s is too large for the stub" % cidr)
    return {"cidr": str(net), "gateway_ip": str(hosts[0]),
            "allocation_pools": [{"start": str(hosts[9] if len(hosts) > 32 else hosts[1]),
                                  "end": str(hosts[-1])}]}
