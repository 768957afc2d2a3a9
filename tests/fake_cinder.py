"""A small stateful Cinder on requests-mock: volumes made, found, updated, deleted.

Bodies are the recorded ones (fixtures/recorded-local; the update answer is the
api-ref sample) with values changed.  Rules kept from the real API: names are
not unique; ``metadata=`` filters on every key given; a new volume is
``creating`` at its first show and ``available`` after; a deleted one is
``deleting`` once, then 404; ``os-extend`` of a volume that is not
``available`` is Cinder's 400 (the recorded one of a delete), an extended
volume is ``extending`` at its first show.  ``create_delay`` makes a create take
that long (requests-mock answers one request at a time: others wait meanwhile).

``fail(method, path, *kinds)`` injects the fault proxy's faults
(devstack/fault_proxy.py) into the next matching calls, one kind per call:
``error`` (500, not done), ``reset`` (no answer, not done), ``lost`` (done,
then no answer), ``late-error`` (done, then 502).
"""

import ast
import copy
import itertools
import json
import re
import time
from urllib.parse import parse_qs, urlsplit

import requests

from .recorded import CINDER, FIXTURES, response


class FakeCinder:
    def __init__(self, base=CINDER):
        #: the project's Cinder endpoint, as the catalog names it
        self.base = base
        self.volumes = {}  # id -> volume, in creation order
        self.creates = 0
        self.deleted = []
        self.create_delay = 0.0
        self.faults = []  # (method, path pattern, kind), each used once
        #: shows a new volume stays ``creating`` (a busy cinder-volume)
        self.creating_looks = 0
        self._looks = {}
        self.extends = 0
        self._serial = itertools.count(1)
        rec = json.loads((FIXTURES / "recorded-extra" / "cinder-v3-versions.json").read_text())
        self._versions = rec["response"]

    def add(self, name="home-alice", metadata=None, status="available", created_at=None):
        vid = f"0000ba5e-0000-4000-8000-{next(self._serial):012d}"
        volume = response("cinder-volume-show-available")["body"]["volume"]
        volume.update(id=vid, name=name, status=status, metadata=dict(metadata or {}))
        volume["created_at"] = created_at or time.strftime("%Y-%m-%dT%H:%M:%S.") + f"{vid[-6:]}"
        for link in volume["links"]:
            link["href"] = re.sub(r"/volumes/[^/]+$", f"/volumes/{vid}", link["href"])
        self.volumes[vid] = volume
        return vid

    def live(self):
        return [v for v in self.volumes.values() if v["status"] != "deleting"]

    # -- handlers -------------------------------------------------------------------

    @staticmethod
    def _answer(context, name, body):
        rec = response(name)
        context.status_code = rec["status"]
        context.headers.update(rec["headers"])
        return "" if body is None else json.dumps(body)

    def _list(self, request, context):
        query = parse_qs(urlsplit(request.url).query)
        found = list(self.volumes.values())
        if "name" in query:
            found = [v for v in found if v["name"] == query["name"][0]]
        if "metadata" in query:
            wanted = ast.literal_eval(query["metadata"][0])
            found = [v for v in found
                     if all(v["metadata"].get(k) == val for k, val in wanted.items())]
        body = response("cinder-volumes-detail-filter-name")["body"]
        body["volumes"] = copy.deepcopy(found)
        return self._answer(context, "cinder-volumes-detail-filter-name", body)

    def _one(handler):
        """A handler for ``/volumes/<id>``: Cinder's 404 when there is no such volume."""
        def wrapped(self, request, context):
            vid = re.search(r"/volumes/([^/]+)", request.path).group(1)
            volume = self.volumes.get(vid)
            if volume is None:
                body = response("cinder-volume-show-404")["body"]
                body["itemNotFound"]["message"] = f"Volume {vid} could not be found."
                return self._answer(context, "cinder-volume-show-404", body)
            return handler(self, request, context, vid, volume)
        return wrapped

    @_one
    def _show(self, request, context, vid, volume):
        body = {"volume": copy.deepcopy(volume)}
        if volume["status"] in ("creating", "extending"):
            if self._looks.get(vid, 0) > 0:
                self._looks[vid] -= 1
            else:
                volume["status"] = "available"
        elif volume["status"] == "deleting":
            del self.volumes[vid]
        return self._answer(context, "cinder-volume-show-available", body)

    def _create(self, request, context):
        if self.create_delay:
            time.sleep(self.create_delay)
        sent = request.json()["volume"]
        self.creates += 1
        vid = self.add(sent["name"], sent.get("metadata"), status="creating")
        self._looks[vid] = self.creating_looks
        body = {"volume": copy.deepcopy(self.volumes[vid])}
        return self._answer(context, "cinder-volume-create", body)

    @_one
    def _update(self, request, context, vid, volume):
        sent = request.json()["volume"]
        if "metadata" in sent:
            volume["metadata"] = dict(sent["metadata"])
        body = json.loads((FIXTURES / "cinder-api-samples/volume-update-response.json")
                          .read_text())
        body["volume"].update({k: copy.deepcopy(volume[k]) for k in
                               ("id", "name", "status", "metadata", "size")})
        context.status_code = 200
        context.headers["Content-Type"] = "application/json"
        return json.dumps(body)

    @_one
    def _delete(self, request, context, vid, volume):
        volume["status"] = "deleting"
        self.deleted.append(vid)
        return self._answer(context, "cinder-volume-delete", None)

    @_one
    def _action(self, request, context, vid, volume):
        new_size = request.json()["os-extend"]["new_size"]
        if volume["status"] != "available":
            body = response("cinder-volume-delete-in-use")["body"]
            body["badRequest"]["message"] = (
                "Invalid volume: Volume status must be 'available' to extend, "
                f"currently {volume['status']}.")
            return self._answer(context, "cinder-volume-delete-in-use", body)
        self.extends += 1
        volume.update(status="extending", size=new_size)
        return self._answer(context, "cinder-volume-delete", None)

    def fail(self, method, path, *kinds):
        self.faults += [(method, re.compile(path), kind) for kind in kinds]

    def _faulty(self, handler):
        def wrapped(request, context):
            kind = None
            for i, (method, path, k) in enumerate(self.faults):
                if method == request.method and path.search(request.path):
                    kind = self.faults.pop(i)[2]
                    break
            if kind == "reset":
                raise requests.exceptions.ConnectionError("Connection reset by peer")
            if kind == "error":
                context.status_code = 500
                return json.dumps({"computeFault": {"code": 500, "message": "injected"}})
            answer = handler(request, context)
            if kind == "lost":
                raise requests.exceptions.ConnectionError("Connection reset by peer")
            if kind == "late-error":
                context.status_code = 502
                context.headers["Content-Type"] = "text/plain"
                return "Bad Gateway"
            return answer
        return wrapped

    def install(self, mocker):
        root = self.base.split("/v3/")[0]
        mocker.get(f"{root}/v3/", json=self._versions["body"], headers=self._versions["headers"])
        volumes = re.escape(self.base) + "/volumes"
        f = self._faulty
        mocker.get(re.compile(volumes + r"/detail"), text=f(self._list))
        mocker.get(re.compile(volumes + r"/(?!detail)[^/?]+$"), text=f(self._show))
        mocker.post(re.compile(volumes + r"$"), text=f(self._create))
        mocker.post(re.compile(volumes + r"/[^/?]+/action$"), text=f(self._action))
        mocker.put(re.compile(volumes + r"/[^/?]+$"), text=f(self._update))
        mocker.delete(re.compile(volumes + r"/[^/?]+(\?.*)?$"), text=f(self._delete))
        return self
