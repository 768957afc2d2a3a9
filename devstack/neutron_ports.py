"""Ports the Neutron stub creates, with the fixed IPs Neutron's IPAM would give.

On the Docker path Zun's network driver
(``devstack/docker_parts/docker_parts/network.py``) asks Neutron for a port per
container (``POST /v2.0/ports``), puts the container on a Docker bridge with the
port's address, and deletes the port with the container.  This module is the
stub's side of that: a port store in memory (the stub lives as long as the
cloud) that allocates addresses from the subnet's pool, refuses an address
already in use (409 ``IpAddressAlreadyAllocated``) and a full pool (409
``IpAddressGenerationFailure``), as Neutron does.  Stdlib only.
"""

import hashlib
import ipaddress
import threading
import uuid

CREATED = "2026-01-01T00:00:00Z"


class PortError(Exception):
    def __init__(self, status, kind, message):
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


class PortStore:
    """The ports of one subnet (*subnet*: the stub's subnet document)."""

    def __init__(self, subnet, network_id, security_group_id):
        self.subnet = subnet
        self.network_id = network_id
        self.security_group_id = security_group_id
        pool = subnet["allocation_pools"][0]
        self.first = ipaddress.ip_address(pool["start"])
        self.last = ipaddress.ip_address(pool["end"])
        self.ports = {}
        self.lock = threading.Lock()
        self.next = self.first

    def list(self):
        with self.lock:
            return [dict(p) for p in self.ports.values()]

    def _in_use(self):
        return {ip["ip_address"] for p in self.ports.values() for ip in p["fixed_ips"]}

    def _allocate(self, wanted):
        used = self._in_use()
        if wanted:
            if wanted in used:
                raise PortError(409, "IpAddressAlreadyAllocated",
                                "IP address %s already allocated in subnet %s"
                                % (wanted, self.subnet["id"]))
            if ipaddress.ip_address(wanted) not in ipaddress.ip_network(self.subnet["cidr"]):
                raise PortError(400, "InvalidIpForNetwork",
                                "IP address %s is not a valid IP for the specified network"
                                % wanted)
            return wanted
        # Round robin through the pool, as Neutron avoids reusing an address
        # that was just released.
        size = int(self.last) - int(self.first) + 1
        candidate = self.next
        for _ in range(size):
            if str(candidate) not in used:
                self.next = candidate + 1 if candidate < self.last else self.first
                return str(candidate)
            candidate = candidate + 1 if candidate < self.last else self.first
        raise PortError(409, "IpAddressGenerationFailure",
                        "No more IP addresses available on network %s" % self.network_id)

    def create(self, body, project_id):
        if body.get("network_id") != self.network_id:
            raise PortError(404, "NetworkNotFound",
                            "Network %s could not be found." % body.get("network_id"))
        wanted = None
        for fixed in body.get("fixed_ips") or []:
            wanted = fixed.get("ip_address") or wanted
        with self.lock:
            address = self._allocate(wanted)
            port_id = str(uuid.uuid4())
            mac = hashlib.sha256(port_id.encode()).hexdigest()[:8]
            project = body.get("project_id") or body.get("tenant_id") or project_id
            port = {
                "id": port_id,
                "name": body.get("name", ""),
                "network_id": self.network_id,
                "tenant_id": project,
                "project_id": project,
                "device_id": body.get("device_id", ""),
                "device_owner": body.get("device_owner", ""),
                "mac_address": "fa:16:3e:" + ":".join(mac[i:i + 2] for i in range(0, 6, 2)),
                "fixed_ips": [{"subnet_id": self.subnet["id"], "ip_address": address}],
                "admin_state_up": body.get("admin_state_up", True),
                "status": "ACTIVE",
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
            port["revision_number"] += 1
            return dict(port)

    def delete(self, port_id):
        with self.lock:
            if self.ports.pop(port_id, None) is None:
                raise PortError(404, "PortNotFound", "Port %s could not be found." % port_id)


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
