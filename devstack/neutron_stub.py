#!/usr/bin/env python3
"""A tiny Neutron for the local cloud (stdlib only), mostly read-only.

It writes only what the DevStack plugin's phases need (networks, subnets,
routers, quotas; see ``Handler._network_call``).

Zun asks Neutron for a network when a container is created without ``nets``
(``zun.network.neutron.NeutronAPI.get_available_network``: first
``GET /v2.0/networks?tenant_id=<project>&shared=False``, then
``?shared=True``) and, for explicit ``nets``, looks a network up by id or name.
One shared network with one subnet is all there is.  Unknown paths answer 404
and are logged, which is how a missing call shows up in ``logs/neutron.log``.

Ports (``--subnet``): Zun's network driver on the Docker path creates and
deletes a port per container (``neutron_ports.py``), with a fixed IP from the
subnet, as on a real cloud.

No authentication is checked: it listens on 127.0.0.1 only.

Usage: neutron_stub.py [--host 127.0.0.1] [--port 9696] [--subnet CIDR]
"""

import ipaddress
import json
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
    "trunks": [],
    "qos/policies": [],
    "subnetpools": [],
    "network-ip-availabilities": [],
}
# JSON keys differ from URL segments for some collections.
JSON_KEYS = {"security-groups": "security_groups", "qos/policies": "policies",
             "network-ip-availabilities": "network_ip_availabilities"}
# Filters matched against a project: every project sees the shared network.
PROJECT_FILTERS = {"tenant_id", "project_id"}
# Query keys that are not filters.
NON_FILTERS = {"fields", "limit", "marker", "sort_key", "sort_dir",
               "page_reverse", "verbose"}


def _matches(item, key, values):
    if key in NON_FILTERS or key in PROJECT_FILTERS:
        return True
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

    # Writes, only what the DevStack plugin's phases need (tests/e2e/
    # test_devstack_plugin_e2e.py): networks, subnets and routers are made,
    # joined and deleted; quotas are accepted.  What the stub was started with
    # cannot be deleted (409, as Neutron answers for what is in use).
    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def _network_call(self, method):
        """POST networks/subnets/routers, PUT router interfaces and quotas,
        DELETE what was made; False when the path is none of these."""
        parts = urlsplit(self.path).path.strip("/").split("/")[1:]
        if not parts or parts[0] not in ("networks", "subnets", "routers", "quotas"):
            return False
        if method == "POST" and len(parts) == 1 and parts[0] != "quotas":
            self._create(parts[0])
        elif method == "PUT" and parts[0] == "quotas" and len(parts) == 2:
            self._send(200, self._body())
        elif method == "PUT" and parts[0] == "routers" and len(parts) == 3 and parts[2] in (
                "add_router_interface", "remove_router_interface"):
            self._send(200, {"id": parts[1], "tenant_id": PROJECT_ID,
                             "subnet_id": self._body().get("subnet_id"),
                             "port_id": str(uuid.uuid4())})
        elif method == "DELETE" and len(parts) == 2 and parts[0] != "quotas":
            self._delete(parts[0], parts[1])
        else:
            self._unsupported()
        return True

    def _create(self, coll):
        templates = {
            "networks": dict(NETWORK, subnets=[], shared=False, is_default=False),
            # not the local subnet's gateway (set on the Docker path): Neutron's
            # default, below, unless the body names one
            "subnets": dict(SUBNET, allocation_pools=[], gateway_ip=None),
            "routers": {"status": "ACTIVE", "admin_state_up": True, "routes": [],
                        "external_gateway_info": None, "description": "",
                        "created_at": CREATED, "updated_at": CREATED, "revision_number": 1},
        }
        single = coll[:-1]
        item = dict(templates[coll], id=str(uuid.uuid4()), name="", tags=[])
        item.update(self._body()[single])
        item["tenant_id"] = item.setdefault("project_id", PROJECT_ID)
        if coll == "subnets":
            cidr = ipaddress.ip_network(item["cidr"], strict=False)
            item["ip_version"] = cidr.version
            if not item.get("gateway_ip"):  # Neutron's default: the first address
                item["gateway_ip"] = str(cidr[1])
            for network in COLLECTIONS["networks"]:
                if network["id"] == item["network_id"]:
                    network["subnets"].append(item["id"])
        COLLECTIONS[coll].append(item)
        self._send(201, {single: item})

    def _delete(self, coll, ident):
        items = COLLECTIONS[coll]
        for item in items:
            if item["id"] != ident:
                continue
            if item in (NETWORK, SUBNET):
                return self._send(409, {"NeutronError": {
                    "type": "InUse", "message": "%s %s is in use" % (coll, ident),
                    "detail": ""}})
            items.remove(item)
            # a network's subnets go with it; a subnet leaves its network
            COLLECTIONS["subnets"][:] = [
                s for s in COLLECTIONS["subnets"] if s["network_id"] != item["id"]]
            for network in COLLECTIONS["networks"]:
                if item["id"] in network["subnets"]:
                    network["subnets"].remove(item["id"])
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
                return self._send(201, {"port": PORTS.create(body, PROJECT_ID)})
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
                             "and deleted (addresses from this subnet: the Docker path)")


#: Ports made through the API (with --subnet), else None.
PORTS = None


def use_subnet(cidr):
    global PORTS
    SUBNET.update(neutron_ports.subnet_for(cidr))
    NETWORK["description"] = "bridge network of the local cloud's Docker hosts"
    PORTS = neutron_ports.PortStore(SUBNET, NETWORK_ID, SECURITY_GROUP["id"])


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
