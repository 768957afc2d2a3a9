"""A stateful Zun container list and show, following Zun 18's rules.

Used with requests-mock by the poller tests and behind an HTTP server by the
poller benchmark.  Records have the recorded list entry's shape (values only
change).  Rules kept from the real API:
- pages are in creation order, at most 1,000 items; a full page carries a
  ``next`` link that is absolute and keeps only sort, limit and marker;
- a ``marker`` naming a container that no longer exists is a 404;
- ``status`` (and ``name``) filter server-side, a repeated parameter means
  "any of"; ``labels`` is not a filter (400);
- ``GET /containers/<uuid>`` answers the record, 404 when it is gone.
"""

import copy
import re
from urllib.parse import parse_qs, urlsplit

from .recorded import ZUN, body, response

MAX_LIMIT = 1000


def template():
    return body("zun-containers-list-one")["containers"][0]


def make_container(uuid, name, status="Running", hub="jupyterhub", restart="no",
                   base=None, **fields):
    c = copy.deepcopy(base or template())
    c.update(uuid=uuid, name=name, status=status, **fields)
    c["labels"] = dict(c["labels"], **{
        "hub.jupyter.org/hub": hub,
        "hub.jupyter.org/user": name.removeprefix("jupyter-"),
        "hub.jupyter.org/server": "",
        "hub.jupyter.org/managed-by": "magnum-spawner",
    })
    # what the real record carries and the poller must never keep
    c["environment"] = dict(c["environment"], JUPYTERHUB_API_TOKEN=f"secret-{uuid}")
    c["restart_policy"] = {"Name": restart, "MaximumRetryCount": "0"}
    return c


class FakeZun:
    def __init__(self, base=ZUN):
        self.base = base
        self.containers = {}  # uuid -> record, in creation order
        self.lists = 0  # list requests answered
        self.items = 0  # containers returned by lists
        self.gets = 0
        self._template = template()

    def add(self, uuid, name=None, **kwargs):
        c = make_container(uuid, name or f"jupyter-{uuid}", base=self._template, **kwargs)
        self.containers[uuid] = c
        return c

    def set(self, uuid, **fields):
        self.containers[uuid].update(fields)

    def delete(self, uuid):
        self.containers.pop(uuid, None)

    def not_found(self, ident):
        rec = response("zun-container-show-404")
        text = f"Container {ident} could not be found."
        rec["body"]["errors"][0].update(detail=text, title=text)
        return 404, rec["body"]

    def list(self, query):
        """``(status, body)`` for ``GET /v1/containers`` with ``query`` (parse_qs)."""
        if "labels" in query:
            return 400, {"errors": [{"status": 400, "title": "Invalid filter: labels",
                                     "detail": "Invalid filter: labels"}]}
        limit = min(int(query.get("limit", [MAX_LIMIT])[0]), MAX_LIMIT)
        order = list(self.containers)
        start = 0
        if "marker" in query:
            marker = query["marker"][0]
            if marker not in self.containers:
                return self.not_found(marker)
            start = order.index(marker) + 1
        statuses = set(query.get("status", ()))
        names = set(query.get("name", ()))
        page = []
        for uuid in order[start:]:
            c = self.containers[uuid]
            if (statuses and c["status"] not in statuses) or (names and c["name"] not in names):
                continue
            page.append(c)
            if len(page) == limit:
                break
        self.lists += 1
        self.items += len(page)
        nxt = None
        if len(page) == limit:
            nxt = (f"{self.base}/v1/containers?sort_key=id&sort_dir=asc&limit={limit}"
                   f"&marker={page[-1]['uuid']}")
        return 200, {"containers": page, "next": nxt}

    def show(self, uuid):
        self.gets += 1
        if uuid not in self.containers:
            return self.not_found(uuid)
        return 200, self.containers[uuid]

    # -- requests-mock --------------------------------------------------------

    def install(self, mocker, before_list=None):
        """Serve list and show on ``mocker``; ``before_list(query)`` may act first."""
        def on_list(request, context):
            query = parse_qs(urlsplit(request.url).query)
            if before_list is not None:
                before_list(query)
            context.status_code, payload = self.list(query)
            return payload

        def on_show(request, context):
            context.status_code, payload = self.show(request.path.rsplit("/", 1)[1])
            return payload

        mocker.get(re.compile(r"/v1/containers(\?.*)?$"), json=on_list)
        mocker.get(re.compile(r"/v1/containers/[^/?]+$"), json=on_show)
        return self
