"""Neutron's floating IPs as a project member sees them, for requests-mock.

Records have the shape of the upstream API reference samples
(``fixtures/neutron-api-samples/floatingips``); only values change.  Rules kept
from the real API: a list filters exactly on the fields it is given (a repeated
field means "any of"), a create answers 201 with the new IP, a delete answers
204 (404 once gone), every IP belongs to the token's project.
"""

import copy
import itertools
import json
import re
import threading
from urllib.parse import parse_qs, urlsplit

from .recorded import NEUTRON, PROJECT, sample

FIPS = f"{NEUTRON}/v2.0/floatingips"
CREATED = sample("neutron-api-samples/floatingips/floatingip-create-response.json")["floatingip"]
EXTERNAL_NET = CREATED["floating_network_id"]
JSON = {"Content-Type": "application/json"}


def external_network(cloud):
    """``public`` is looked up by id (404), then by name (the list sample, renamed)."""
    cloud.neutron_root()
    cloud.m.get(f"{NEUTRON}/v2.0/networks/public", status_code=404, headers=JSON, json={
        "NeutronError": {"type": "NetworkNotFound", "detail": "",
                         "message": "Network public could not be found."}})
    body = sample("neutron-api-samples/networks/networks-list-response.json")
    net = dict(body["networks"][0], name="public", id=EXTERNAL_NET)
    net["router:external"] = True
    cloud.m.get(f"{NEUTRON}/v2.0/networks?name=public", json={"networks": [net]})


class FakeNeutron:
    def __init__(self):
        self.ips = {}  # id -> record
        self._template = sample(
            "neutron-api-samples/floatingips/floating-ips-list-response.json")["floatingips"][0]
        self._serial = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, description, port_id=None, project=PROJECT):
        """A floating IP that exists already; returns its id."""
        n = next(self._serial)
        ip = copy.deepcopy(self._template)
        ip.update(id=f"f1f1f1f1-0000-4000-8000-{n:012d}", floating_ip_address=f"172.24.4.{n}",
                  description=description, port_id=port_id, project_id=project,
                  tenant_id=project, status="ACTIVE" if port_id else "DOWN")
        with self._lock:
            self.ips[ip["id"]] = ip
        return ip["id"]

    def described(self, description):
        return [i for i in self.ips.values() if i["description"] == description]

    def install(self, cloud):
        external_network(cloud)

        def on_list(request, context):
            query = parse_qs(urlsplit(request.url).query)
            query = {k: v for k, v in query.items() if k not in ("fields", "limit")}
            with self._lock:
                found = [copy.deepcopy(i) for i in self.ips.values()
                         if all(str(i.get(k)) in v for k, v in query.items())]
            context.headers.update(JSON)
            return json.dumps({"floatingips": found})

        def on_create(request, context):
            sent = request.json()["floatingip"]
            ident = self.add(sent.get("description", ""), sent.get("port_id"))
            context.status_code = 201
            context.headers.update(JSON)
            return json.dumps({"floatingip": self.ips[ident]})

        def on_delete(request, context):
            ident = request.path.rsplit("/", 1)[1]
            with self._lock:
                gone = self.ips.pop(ident, None)
            if gone is None:
                context.status_code = 404
                context.headers.update(JSON)
                return json.dumps({"NeutronError": {
                    "type": "FloatingIPNotFound", "detail": "",
                    "message": f"Floating IP {ident} could not be found"}})
            context.status_code = 204
            return ""

        cloud.m.get(re.compile(re.escape(FIPS) + r"(\?.*)?$"), text=on_list)
        cloud.m.post(FIPS, text=on_create)
        cloud.m.delete(re.compile(re.escape(FIPS) + r"/[^/?]+$"), text=on_delete)
        return self
