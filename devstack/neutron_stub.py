#!/usr/bin/env python3
"""A tiny Neutron for the local cloud (stdlib only).

It writes what the DevStack plugin's phases and Zun's own API tests
(zun-tempest-plugin) need: networks, subnets (also from a subnet pool),
subnet pools, routers, security groups and their rules, quotas; see
``Handler._network_call``.  Like Neutron with ``allow_overlapping_ips =
False``, a subnet that overlaps another is refused (400): every network's
Docker bridge lives in the one network namespace of the cloud.  Nothing is
enforced (no security group filters traffic): the stub only keeps the
documents.

Zun asks Neutron for a network when a container is created without ``nets``
(``zun.network.neutron.NeutronAPI.get_available_network``: first
``GET /v2.0/networks?tenant_id=<project>&shared=False``, then
``?shared=True``) and, for explicit ``nets``, looks a network up by id or name.
The stub starts with one shared network with one subnet, which every project
sees; what is made through the API belongs to the project named in the body,
else to the caller's (its token, asked of Keystone).  Unknown paths answer 404
and are logged, which is how a missing call shows up in ``logs/neutron.log``.

Ports (``--subnet``): Zun's network driver on the Docker path creates and
deletes a port per container (``neutron_ports.py``), with fixed IPs from the
subnets of its network, as on a real cloud.

No authentication is checked: it listens on 127.0.0.1 only.

Usage: neutron_stub.py [--host 127.0.0.1] [--port 9696] [--subnet CIDR]
"""

import datetime
import ipaddress
import itertools
import json
import threading
import urllib.request
import uuid
from urllib.parse import parse_qsl, urlsplit

import neutron_ports
import stub_server

NETWORK_ID = "5c0a1f1e-7d3b-4f4e-9a57-0c1a1b2c3d4e"
SUBNET_ID = "9d2b3c4e-5f60-4a71-8b92-a3b4c5d6e7f8"
PROJECT_ID = "00000000000000000000000000000000"
CREATED = "2026-01-01T00:00:00Z"

NETWORK = {
    "id": NETWORK_ID,
    "name": "local-net",
    "description": "loopback network of the local cloud",
    "admin_state_up": True,
    "status": "ACTIVE",
    "shared": True,
    "router:external": False,
    "subnets": [SUBNET_ID],
    "tenant_id": PROJECT_ID,
    "project_id": PROJECT_ID,
    "mtu": 65536,
    "port_security_enabled": False,
    "provider:network_type": "local",
    "provider:physical_network": None,
    "provider:segmentation_id": None,
    "availability_zones": ["nova"],
    "availability_zone_hints": [],
    "ipv4_address_scope": None,
    "ipv6_address_scope": None,
    "is_default": True,
    "tags": [],
    "created_at": CREATED,
    "updated_at": CREATED,
    "revision_number": 1,
}

SUBNET = {
    "id": SUBNET_ID,
    "name": "local-subnet",
    "description": "",
    "network_id": NETWORK_ID,
    "ip_version": 4,
    "cidr": "127.0.0.0/8",
    "gateway_ip": None,
    "enable_dhcp": False,
    "allocation_pools": [{"start": "127.0.1.1", "end": "127.0.255.254"}],
    "dns_nameservers": [],
    "host_routes": [],
    "ipv6_address_mode": None,
    "ipv6_ra_mode": None,
    "subnetpool_id": None,
    "tenant_id": PROJECT_ID,
    "project_id": PROJECT_ID,
    "tags": [],
    "created_at": CREATED,
    "updated_at": CREATED,
    "revision_number": 1,
}

SECURITY_GROUP = {
    "id": "3f0c6d1a-2b4e-4c8d-9e0f-1a2b3c4d5e6f",
    "name": "default",
    "description": "default",
    "security_group_rules": [],
    "tenant_id": PROJECT_ID,
    "project_id": PROJECT_ID,
    "stateful": True,
    "tags": [],
    "created_at": CREATED,
    "updated_at": CREATED,
    "revision_number": 1,
}

COLLECTIONS = {
    "networks": [NETWORK],
    "subnets": [SUBNET],
    "ports": [],
    "security-groups": [SECURITY_GROUP],
    "floatingips": [],
    "routers": [],
    "security-group-rules": [],
    "trunks": [],
    "qos/policies": [],
    "subnetpools": [],
    "network-ip-availabilities": [],
}
# JSON keys differ from URL segments for some collections.
JSON_KEYS = {"security-groups": "security_groups", "qos/policies": "policies",
             "security-group-rules": "security_group_rules",
             "network-ip-availabilities": "network_ip_availabilities"}
# Filters matched against a project: every project sees the shared network
# and its subnet the stub started with; what is made through the API, only its
# own project.  A project's default security group is made when a listing
# filtered by the project first asks for it, as Neutron makes it on first use
# (tempest's dynamic credentials delete it with the project).
PROJECT_FILTERS = {"tenant_id", "project_id"}
SEEDED = [NETWORK, SUBNET, SECURITY_GROUP]
# Collections the API writes (POST/DELETE), beside ports.
WRITABLE = ("networks", "subnets", "routers", "security-groups",
            "security-group-rules", "subnetpools")
# One lock for the writes: the server answers each request in a thread.
LOCK = threading.Lock()
KEYSTONE = "http://127.0.0.1:5000/v3"
_TOKEN_PROJECTS = {}
_CLOCK = itertools.count(1)
# Query keys that are not filters.
NON_FILTERS = {"fields", "limit", "marker", "sort_key", "sort_dir",
               "page_reverse", "verbose"}


def _matches(item, key, values):
    if key in NON_FILTERS:
        return True
    if key in PROJECT_FILTERS:
        return item is NETWORK or item is SUBNET or item.get("project_id") in values
    if key not in item:
        return True  # unknown attribute: ignore, like an unsupported filter
    have = item[key]
    for value in values:
        if isinstance(have, bool):
            if value.lower() in ("true", "1") and have:
                return True
            if value.lower() in ("false", "0") and not have:
                return True
        elif isinstance(have, list):
            if value in have:
                return True
        elif str(have) == value:
            return True
    return False


def _select(item, fields):
    if not fields:
        return item
    return {k: v for k, v in item.items() if k in fields}


class Handler(stub_server.JSONHandler):
    server_version = "neutron-stub/1"
    request_id = "req-neutron-stub"

    def not_found_body(self, what):
        return {"NeutronError": {"type": "HTTPNotFound",
                                 "message": "%s not found" % what, "detail": ""}}

    def do_GET(self):  # noqa: N802
        url = urlsplit(self.path)
        path = url.path.rstrip("/")
        if path.endswith(".json"):
            path = path[: -len(".json")]
        if path in ("", "/"):
            return self._send(200, {"versions": [{
                "id": "v2.0", "status": "CURRENT",
                "links": [{"rel": "self",
                           "href": "http://127.0.0.1:9696/v2.0/"}]}]})
        if path == "/v2.0":
            return self._send(200, {"resources": [
                {"name": k.rstrip("s"), "collection": k,
                 "links": [{"rel": "self",
                            "href": "http://127.0.0.1:9696/v2.0/%s" % k}]}
                for k in COLLECTIONS]})
        if path == "/v2.0/extensions":
            return self._send(200, {"extensions": []})
        if not path.startswith("/v2.0/"):
            return self._not_found(path)
        rest = path[len("/v2.0/"):]
        query = {}
        for key, value in parse_qsl(url.query, keep_blank_values=True):
            query.setdefault(key, []).append(value)
        fields = set(query.get("fields", []))
        if rest == "security-groups":
            self._default_groups(query)
        for coll, items in COLLECTIONS.items():
            if coll == "ports":
                items = PORTS.list() if PORTS is not None else []
            key = JSON_KEYS.get(coll, coll.replace("-", "_"))
            if rest == coll:
                found = [
                    _select(i, fields) for i in items
                    if all(_matches(i, k, v) for k, v in query.items())
                ]
                return self._send(200, {key: found})
            if rest.startswith(coll + "/"):
                ident = rest[len(coll) + 1:]
                for item in items:
                    if item["id"] == ident:
                        single = key[:-1] if key.endswith("s") else key
                        if key == "policies":
                            single = "policy"
                        return self._send(200, {single: _select(item, fields)})
                return self._not_found("%s %s" % (coll, ident))
        return self._not_found(rest)

    # Writes: networks, subnets (from a pool too), subnet pools, routers,
    # security groups and rules are made and deleted; router interfaces and
    # quotas are accepted.  What the stub was started with cannot be deleted
    # (409, as Neutron answers for what is in use).
    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def _caller_project(self):
        """The project of the request's token (Keystone validates it; a
        token may validate itself), PROJECT_ID without one."""
        token = self.headers.get("X-Auth-Token")
        if not token:
            return PROJECT_ID
        if token not in _TOKEN_PROJECTS:
            req = urllib.request.Request(KEYSTONE + "/auth/tokens", headers={
                "X-Auth-Token": token, "X-Subject-Token": token})
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    project = json.load(r)["token"].get("project", {}).get("id")
            except (OSError, ValueError, KeyError):
                return PROJECT_ID
            _TOKEN_PROJECTS[token] = project or PROJECT_ID
        return _TOKEN_PROJECTS[token]

    def _error(self, status, kind, message):
        self._send(status, {"NeutronError": {"type": kind, "message": message,
                                             "detail": ""}})

    def _network_call(self, method):
        """POST and DELETE of the WRITABLE collections, PUT router interfaces
        and quotas; False when the path is none of these."""
        parts = urlsplit(self.path).path.strip("/").split("/")[1:]
        if not parts or parts[0] not in WRITABLE + ("quotas",):
            return False
        if method == "POST" and len(parts) == 1 and parts[0] != "quotas":
            with LOCK:
                self._create(parts[0])
        elif method == "PUT" and parts[0] == "quotas" and len(parts) == 2:
            self._send(200, self._body())
        elif method == "PUT" and parts[0] == "routers" and len(parts) == 3 and parts[2] in (
                "add_router_interface", "remove_router_interface"):
            self._send(200, {"id": parts[1], "tenant_id": PROJECT_ID,
                             "subnet_id": self._body().get("subnet_id"),
                             "port_id": str(uuid.uuid4())})
        elif method == "DELETE" and len(parts) == 2 and parts[0] != "quotas":
            with LOCK:
                self._delete(parts[0], parts[1])
        else:
            self._unsupported()
        return True

    def _create(self, coll):
        templates = {
            "networks": dict(NETWORK, subnets=[], shared=False, is_default=False),
            "subnets": dict(SUBNET, cidr=None, allocation_pools=[], enable_dhcp=True),
            "routers": {"status": "ACTIVE", "admin_state_up": True, "routes": [],
                        "external_gateway_info": None, "description": "",
                        "revision_number": 1},
            "security-groups": dict(SECURITY_GROUP, description=""),
            "security-group-rules": {
                "direction": "ingress", "ethertype": "IPv4", "protocol": None,
                "port_range_min": None, "port_range_max": None, "remote_ip_prefix": None,
                "remote_group_id": None, "description": "", "revision_number": 1},
            "subnetpools": {"prefixes": [], "default_prefixlen": None, "min_prefixlen": None,
                            "max_prefixlen": None, "shared": False, "is_default": False,
                            "address_scope_id": None, "description": "", "revision_number": 1},
        }
        single = JSON_KEYS.get(coll, coll)[:-1]
        now = (datetime.datetime(2026, 1, 1) + datetime.timedelta(seconds=next(_CLOCK))
               ).strftime("%Y-%m-%dT%H:%M:%SZ")
        item = dict(templates[coll], id=str(uuid.uuid4()), name="", tags=[],
                    created_at=now, updated_at=now)
        body = self._body()[single]
        item.update(body)
        # the body's project (an admin's --project), else the caller's
        project = body.get("project_id") or body.get("tenant_id") or self._caller_project()
        item["project_id"] = item["tenant_id"] = project
        if coll == "subnets":
            problem = self._subnet(item, body)
            if problem:
                return self._error(400, "BadRequest", problem)
            for network in COLLECTIONS["networks"]:
                if network["id"] == item["network_id"]:
                    network["subnets"].append(item["id"])
        elif coll == "security-groups":
            item["security_group_rules"] = [self._rule(item, "egress", ethertype)
                                            for ethertype in ("IPv4", "IPv6")]
        elif coll == "security-group-rules":
            for key in ("port_range_min", "port_range_max"):
                if item[key] is not None:  # Zun sends them as strings
                    item[key] = int(item[key])
            for group in COLLECTIONS["security-groups"]:
                if group["id"] == item["security_group_id"]:
                    group["security_group_rules"].append(item)
                    break
            else:
                return self._error(404, "SecurityGroupNotFound", "Security group %s does "
                                   "not exist" % item.get("security_group_id"))
        elif coll == "subnetpools":
            item["prefixes"] = [str(ipaddress.ip_network(c)) for c in item["prefixes"]]
            item["ip_version"] = ipaddress.ip_network(item["prefixes"][0]).version
            for key in ("default_prefixlen", "min_prefixlen", "max_prefixlen"):
                if item[key] is not None:
                    item[key] = int(item[key])
        COLLECTIONS[coll].append(item)
        self._send(201, {single: item})

    @staticmethod
    def _default_groups(query):
        """Make the default security group of each project the query names."""
        projects = query.get("tenant_id", []) + query.get("project_id", [])
        with LOCK:
            for project in projects:
                if project == PROJECT_ID or any(
                        g["project_id"] == project and g["name"] == "default"
                        for g in COLLECTIONS["security-groups"]):
                    continue
                group = dict(SECURITY_GROUP, id=str(uuid.uuid4()), project_id=project,
                             tenant_id=project)
                group["security_group_rules"] = [
                    Handler._rule(group, "egress", e) for e in ("IPv4", "IPv6")]
                COLLECTIONS["security-groups"].append(group)

    @staticmethod
    def _rule(group, direction, ethertype):
        return {"id": str(uuid.uuid4()), "security_group_id": group["id"],
                "direction": direction, "ethertype": ethertype, "protocol": None,
                "port_range_min": None, "port_range_max": None, "remote_ip_prefix": None,
                "remote_group_id": None, "description": "",
                "tenant_id": group["project_id"], "project_id": group["project_id"],
                "created_at": group["created_at"], "updated_at": group["created_at"],
                "revision_number": 1}

    def _subnet(self, item, body):
        """Complete a new subnet as Neutron does (its CIDR from its pool, the
        gateway, the allocation pool); a sentence saying why not otherwise."""
        pool = None
        if item.get("subnetpool_id"):
            for candidate in COLLECTIONS["subnetpools"]:
                if candidate["id"] == item["subnetpool_id"]:
                    pool = candidate
            if pool is None:
                return "Subnet pool %s could not be found." % item["subnetpool_id"]
        if not item.get("cidr"):
            if pool is None:
                return "Invalid input for operation: a subnet needs a cidr or a subnetpool_id."
            prefixlen = int(body.get("prefixlen") or pool["default_prefixlen"]
                            or pool["min_prefixlen"])
            taken = [ipaddress.ip_network(s["cidr"]) for s in COLLECTIONS["subnets"]]
            for prefix in pool["prefixes"]:
                prefix = ipaddress.ip_network(prefix)
                free = next((c for c in prefix.subnets(new_prefix=prefixlen)
                             if not any(c.overlaps(t) for t in taken)), None)
                if free is not None:
                    item["cidr"] = str(free)
                    break
            else:
                return "Failed to allocate subnet: no prefix of pool %s is free." % pool["id"]
        cidr = ipaddress.ip_network(item["cidr"], strict=False)
        item["cidr"], item["ip_version"] = str(cidr), cidr.version
        for other in COLLECTIONS["subnets"]:
            if ipaddress.ip_network(other["cidr"]).overlaps(cidr):
                return ("Invalid input for operation: Requested subnet with cidr: %s for "
                        "network: %s overlaps with another subnet." % (cidr, item["network_id"]))
        # Neutron's default gateway is the first address; an explicit null
        # means none
        if "gateway_ip" not in body:
            item["gateway_ip"] = str(cidr.network_address + 1)
        if not body.get("allocation_pools"):
            item["allocation_pools"] = neutron_ports.default_pool(item["cidr"],
                                                                  item["gateway_ip"])
        return None

    def _delete(self, coll, ident):
        items = COLLECTIONS[coll]
        for item in items:
            if item["id"] != ident:
                continue
            if any(item is seeded for seeded in SEEDED):
                return self._error(409, "InUse", "%s %s is in use" % (coll, ident))
            items.remove(item)
            # a network's subnets and ports go with it; a subnet leaves its
            # network; a rule leaves its group
            COLLECTIONS["subnets"][:] = [
                s for s in COLLECTIONS["subnets"] if s["network_id"] != item["id"]]
            if coll == "networks" and PORTS is not None:
                PORTS.delete_network(ident)
            for network in COLLECTIONS["networks"]:
                if item["id"] in network["subnets"]:
                    network["subnets"].remove(item["id"])
            if coll == "security-groups":
                COLLECTIONS["security-group-rules"][:] = [
                    r for r in COLLECTIONS["security-group-rules"]
                    if r["security_group_id"] != ident]
            for group in COLLECTIONS["security-groups"]:
                group["security_group_rules"] = [
                    r for r in group["security_group_rules"] if r["id"] != ident]
            return self._send(204, None)
        self._not_found(self.path)

    def do_HEAD(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _port_call(self, method):
        """POST /v2.0/ports, PUT and DELETE /v2.0/ports/<id> (with --subnet)."""
        path = urlsplit(self.path).path.rstrip("/")
        if PORTS is None or not path.startswith("/v2.0/ports"):
            return self._unsupported()
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}").get("port", {})
            if method == "POST" and path == "/v2.0/ports":
                project = (body.get("project_id") or body.get("tenant_id")
                           or self._caller_project())
                with LOCK:  # the subnets do not change under the allocation
                    port = PORTS.create(body, project)
                return self._send(201, {"port": port})
            port_id = path[len("/v2.0/ports/"):]
            if method == "PUT" and port_id:
                return self._send(200, {"port": PORTS.update(port_id, body)})
            if method == "DELETE" and port_id:
                PORTS.delete(port_id)
                return self._send(204, None)
        except neutron_ports.PortError as e:
            return self._send(e.status, {"NeutronError": {
                "type": e.kind, "message": e.message, "detail": ""}})
        except ValueError:
            return self._send(400, {"NeutronError": {
                "type": "HTTPBadRequest", "message": "invalid JSON body", "detail": ""}})
        return self._not_found(path)

    def do_POST(self):  # noqa: N802
        self._network_call("POST") or self._port_call("POST")

    def do_PUT(self):  # noqa: N802
        self._network_call("PUT") or self._port_call("PUT")

    def do_DELETE(self):  # noqa: N802
        self._network_call("DELETE") or self._port_call("DELETE")


def add_options(parser):
    parser.add_argument("--subnet", default=None,
                        help="CIDR of the network's subnet; ports can then be created "
                             "and deleted on every network (the Docker path)")


#: Ports made through the API (with --subnet), else None.
PORTS = None


def use_subnet(cidr):
    global PORTS
    SUBNET.update(neutron_ports.subnet_for(cidr))
    NETWORK["description"] = "bridge network of the local cloud's Docker hosts"
    PORTS = neutron_ports.PortStore(COLLECTIONS["networks"], COLLECTIONS["subnets"],
                                    SECURITY_GROUP["id"])


def main():
    def options(parser):
        add_options(parser)
        args, _ = parser.parse_known_args()
        if args.subnet:
            use_subnet(args.subnet)

    stub_server.serve(Handler, __doc__.splitlines()[0], 9696,
                      "neutron stub (network %s)" % NETWORK_ID, add_options=options)


if __name__ == "__main__":
    main()
