"""A small stateful Cinder on requests-mock: volumes made, found, updated, deleted.

Bodies are the recorded ones (fixtures/recorded-local; the update answer is the
api-ref sample) with values changed.  Rules kept from the real API: names are
not unique; ``metadata=`` filters on every key given; a new volume is
``creating`` at its first show and ``available`` after; a deleted one is
``deleting`` once, then 404.  ``create_delay`` makes a create take that long
(requests-mock answers one request at a time: others wait meanwhile).
"""

import ast
import copy
import itertools
import json
import re
import time
from urllib.parse import parse_qs, urlsplit

from .recorded import CINDER, FIXTURES, response


class FakeCinder:
    def __init__(self):
        self.volumes = {}  # id -> volume, in creation order
        self.creates = 0
        self.deleted = []
        self.create_delay = 0.0
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
            vid = request.path.rsplit("/", 1)[1]
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
        if volume["status"] == "creating":
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

    def install(self, mocker):
        root = CINDER.split("/v3/")[0]
        mocker.get(f"{root}/v3/", json=self._versions["body"], headers=self._versions["headers"])
        volumes = re.escape(CINDER) + "/volumes"
        mocker.get(re.compile(volumes + r"/detail"), text=self._list)
        mocker.get(re.compile(volumes + r"/(?!detail)[^/?]+$"), text=self._show)
        mocker.post(re.compile(volumes + r"$"), text=self._create)
        mocker.put(re.compile(volumes + r"/[^/?]+$"), text=self._update)
        mocker.delete(re.compile(volumes + r"/[^/?]+(\?.*)?$"), text=self._delete)
        return self
