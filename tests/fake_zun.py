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
import itertools
import json
import re
import threading
import time
from urllib.parse import parse_qs, urlsplit

import requests

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
        #: the host and path prefix ``next`` links name (Zun builds them from
        #: the request's host, or its own idea of it behind a proxy)
        self.link_base = f"{base}/v1"
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
            nxt = (f"{self.link_base}/containers?sort_key=id&sort_dir=asc&limit={limit}"
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


# -- creates and deletes ----------------------------------------------------------

#: A project member's ``DELETE ?stop=true`` is a 409 in these statuses (Zun 18).
REFUSE_DELETE = frozenset({"Creating", "Unknown", "Deleting", "Restarting", "Paused",
                           "Rebuilding"})


class LifecycleZun(FakeZun):
    """FakeZun that also creates and deletes, as Zun 18 does for a project member.

    - ``POST /v1/containers?run=true`` answers 202 with the new container;
      names are not unique;
    - ``DELETE /v1/containers/<uuid>?stop=true`` is a 409 in REFUSE_DELETE,
      otherwise 204: the container shows Deleting once, then is gone (404).

    A container's status follows a script: each show takes the next status and
    the last one stays.  ``fail`` queues faults for the next matching requests.
    """

    def __init__(self, script=("Creating", "Running"), base=ZUN):
        super().__init__(base)
        self.script = list(script)
        self.scripts = {}
        #: every container ever made or added, in order
        self.made = []
        #: (name, uuids): creates sent while another container of the name lived
        self.overlaps = []
        #: (method, url regex, what): an HTTP status or exception (nothing is
        #: done), or for a create "reset-after" / ("after", status): made, then
        #: the answer is lost
        self.faults = []
        #: seconds a create or a list takes (other requests wait meanwhile:
        #: requests-mock answers one request at a time)
        self.create_delay = 0.0
        self.list_delay = 0.0
        #: when set, a create waits until the Event is set (``creates_held``
        #: counts the creates waiting or let through): a POST still on its way
        #: on a machine of any speed
        self.create_gate = None
        self.creates_held = 0
        self._serial = itertools.count(1)
        self._lock = threading.Lock()

    def server(self, name, status="Running", labels=None, **fields):
        """A container that exists already; returns its uuid."""
        uuid = f"0000c0de-0000-4000-8000-{next(self._serial):012d}"
        c = self.add(uuid, name, status=status, **fields)
        if labels is not None:
            c["labels"] = dict(labels)
        self.made.append(uuid)
        return uuid

    def set(self, uuid, **fields):
        self.scripts.pop(uuid, None)
        super().set(uuid, **fields)

    def fail(self, method, pattern, what, times=1):
        self.faults.extend([(method, re.compile(pattern), what)] * times)

    def alive(self, name=None):
        return [c for c in self.containers.values() if name in (None, c["name"])]

    def running(self, name=None):
        return [c for c in self.alive(name) if c["status"] == "Running"]

    def _fault(self, request):
        for i, (method, pattern, what) in enumerate(self.faults):
            if method == request.method and pattern.search(request.url):
                del self.faults[i]
                if isinstance(what, BaseException):
                    raise what
                return what
        return None

    def show(self, uuid):
        c = self.containers.get(uuid)
        script = self.scripts.get(uuid)
        if c is not None and script:
            c["status"] = script.pop(0) if len(script) > 1 else script[0]
        status, payload = super().show(uuid)
        if c is not None and c["status"] == "Deleting":
            self.delete(uuid)
        return status, copy.deepcopy(payload)

    def create(self, sent):
        with self._lock:
            others = [c["uuid"] for c in self.alive(sent["name"]) if c["status"] != "Deleting"]
            if others:
                self.overlaps.append((sent["name"], others))
            uuid = self.server(sent["name"], status=self.script[0],
                               labels=sent.get("labels") or {})
            self.scripts[uuid] = list(self.script)
        return self.containers[uuid]

    def delete_request(self, uuid):
        c = self.containers.get(uuid)
        if c is None:
            return self.not_found(uuid)
        if c["status"] in REFUSE_DELETE:
            rec = response("zun-container-delete-running-no-stop")
            text = f"Cannot delete container {uuid} in {c['status']} state"
            rec["body"]["errors"][0].update(detail=text, title=text)
            return 409, rec["body"]
        self.set(uuid, status="Deleting")
        return 204, None

    def install(self, mocker, before_list=None):
        """Serve list, show, create, delete and logs on ``mocker``."""
        def answer(context, status, payload, recorded):
            context.status_code = status
            context.headers.update(response(recorded)["headers"])
            return "" if payload is None else json.dumps(payload)

        def on_list(request, context):
            if self._fault(request):
                context.status_code = 500
                return ""
            if self.list_delay:
                time.sleep(self.list_delay)
            status, payload = self.list(parse_qs(urlsplit(request.url).query))
            return answer(context, status, payload, "zun-containers-list-empty")

        def on_one(action, recorded):
            """A handler for ``/containers/<uuid>``: a queued fault, or ``action(uuid)``."""
            def handler(request, context):
                fault = self._fault(request)
                if fault:
                    context.status_code = fault
                    return ""
                status, payload = action(request.path.rsplit("/", 1)[1])
                return answer(context, status, payload, recorded)
            return handler

        def on_create(request, context):
            fault = self._fault(request)
            if isinstance(fault, int):
                context.status_code = fault
                return ""
            if self.create_delay:
                time.sleep(self.create_delay)
            if self.create_gate is not None:
                self.creates_held += 1
                self.create_gate.wait(timeout=30)
            made = self.create(request.json())
            if fault == "reset-after":
                raise requests.exceptions.ConnectionError("Connection reset by peer")
            if isinstance(fault, tuple):
                context.status_code = fault[1]
                return ""
            rec = response("zun-container-create-run")
            rec["body"].update({k: made[k] for k in ("uuid", "name", "labels", "status")})
            return answer(context, 202, rec["body"], "zun-container-create-run")

        containers = re.escape(self.base) + r"/v1/containers"
        mocker.get(re.compile(containers + r"(\?.*)?$"), text=on_list)
        mocker.get(re.compile(containers + r"/[^/?]+$"),
                   text=on_one(self.show, "zun-container-show-running"))
        mocker.get(re.compile(containers + r"/[^/?]+/logs"), text="")
        mocker.post(re.compile(containers + r"\?run=true$"), text=on_create)
        mocker.delete(re.compile(containers + r"/[^/?]+\?stop=true$"),
                      text=on_one(self.delete_request, "zun-container-delete-stop-true"))
        return self
