"""Serve the recorded OpenStack exchanges with requests-mock.

Each fixture file holds one real request/response pair.  ``RecordedCloud`` answers
the recorded method and URL with the recorded status, headers and body; tests may
change *values* (never the shape) through ``overrides``.
"""

import copy
import datetime
import json
import pathlib
import re
import threading
from urllib.parse import parse_qs, urlsplit

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
RECORDED = FIXTURES / "recorded-local"
KEYSTONE = "http://127.0.0.1:5000"
ZUN = "http://127.0.0.1:9517"
PROJECT = "a17b6821d77c4ab1961a712e80b49b41"
CINDER = f"http://127.0.0.1:8776/v3/{PROJECT}"
NEUTRON = "http://127.0.0.1:9696"
CONTAINER_UUID = "515db7d6-d0e9-4a4d-8976-b6f501999f75"
NETWORK = "6f3f6b6c-5a0c-4b5e-9a3e-1f0b9c1d2e3f"

#: The Zun calls of alice's start and stop (the default container name).
LIST_BY_NAME = f"{ZUN}/v1/containers?name=jupyter-alice"
CREATE = f"{ZUN}/v1/containers?run=true"
SHOW = f"{ZUN}/v1/containers/{CONTAINER_UUID}"
DELETE = f"{SHOW}?stop=true"

#: Zun's status (and ``status_detail``) -> what poll() reports: None while running.
POLL_RESULTS = [
    ("Running", None, None),
    ("Creating", None, None),
    ("Created", None, None),
    ("Restarting", None, None),
    ("Paused", None, None),
    ("Rebuilding", None, None),  # openstack appcontainer rebuild: it runs again after
    ("Stopped", "Exited(0) 3 minutes ago", 0),
    ("Stopped", "Exited(137) 1 second ago", 137),
    ("Stopped", None, 0),
    ("Error", None, 1),
    ("Dead", None, 1),
    ("Deleted", None, 0),
    ("Deleting", None, 0),
    # a status a later Zun may add: never read as stopped
    ("Hibernating", None, None),
]

#: The labels alice's container carries on the default hub (written out: a test
#: must not compute its expectation with the code under test).
HUB_LABELS = {
    "hub.jupyter.org/hub": "jupyterhub",
    "hub.jupyter.org/user": "alice",
    "hub.jupyter.org/server": "",
    "hub.jupyter.org/managed-by": "magnum-spawner",
}


def load(name):
    return json.loads((RECORDED / f"{name}.json").read_text())


def response(name):
    return copy.deepcopy(load(name)["response"])


def body(name):
    return copy.deepcopy(load(name)["response"]["body"])


def sample(path):
    return json.loads((FIXTURES / path).read_text())


def future(hours=1):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=hours)
    return t.strftime("%Y-%m-%dT%H:%M:%S.000000Z")


class RecordedCloud:
    """A requests-mock set up with Keystone's recorded answers."""

    def __init__(self, mocker):
        self.m = mocker
        self.token_requests = 0
        #: issue a new token id at every login (to revoke one server-side)
        self.fresh_tokens = False
        self.revoked = set()
        #: refuse every token (see unauthorized_if_revoked)
        self.revoke_all = False
        #: called when a request is refused (to replay a race between threads)
        self.on_refusal = None
        self._token_lock = threading.Lock()
        root = response("keystone-v3")
        self.m.get(f"{KEYSTONE}/v3", json=root["body"], status_code=200)
        self.m.get(f"{KEYSTONE}/v3/", json=root["body"], status_code=200)
        self.m.post(f"{KEYSTONE}/v3/auth/tokens", json=self._token)
        self.zun_root("1.1", "1.40")

    def _token(self, request, context):
        with self._token_lock:
            self.token_requests += 1
            token = (
                f"gAAAAA-token-{self.token_requests}" if self.fresh_tokens
                else "gAAAAA-recorded-token"
            )
        rec = response("keystone-token-password")
        context.status_code = rec["status"]
        context.headers.update(rec["headers"])
        # The recording keeps only selected headers; keystoneauth needs the token
        # id, and the recorded expiry is long past: same shape, new values.
        context.headers["X-Subject-Token"] = token
        rec["body"]["token"]["expires_at"] = future()
        return rec["body"]

    def zun_root(self, min_version, max_version):
        body = response("zun-root")["body"]
        for doc in [body["default_version"], *body["versions"]]:
            doc["min_version"], doc["max_version"] = min_version, max_version
        self.m.get(f"{ZUN}/", json=body)

    def neutron_root(self):
        """Neutron's version document (openstacksdk reads it before its first call).

        The upstream sample names the API at ``http://23.253.228.211:9696/v2.0``:
        the same document with this catalog's address.
        """
        body = sample("neutron-api-samples/networks/versions-list-response.json")
        body["versions"][0]["links"][0]["href"] = f"{NEUTRON}/v2.0"
        self.m.get(f"{NEUTRON}/", json=body)

    def reply(self, method, url, name, status=None, change=None, headers=None):
        """Answer ``method url`` with the recorded response ``name``."""
        rec = response(name)
        if change is not None:
            change(rec["body"])
        kwargs = {
            "status_code": status or rec["status"],
            "headers": {**rec.get("headers", {}), **(headers or {})},
        }
        if rec["body"] in (None, ""):
            kwargs["text"] = ""
        else:
            kwargs["json"] = rec["body"]
        return self.m.register_uri(method, url, **kwargs)

    def replies(self, method, url, *names_or_responses):
        """Answer successive calls with successive recorded responses."""
        out = []
        for item in names_or_responses:
            name, change = item if isinstance(item, tuple) else (item, None)
            rec = response(name)
            if change is not None:
                change(rec["body"])
            entry = {"status_code": rec["status"], "headers": rec.get("headers", {})}
            if rec["body"] in (None, ""):
                entry["text"] = ""
            else:
                entry["json"] = rec["body"]
            out.append(entry)
        return self.m.register_uri(method, url, out)

    def unauthorized_if_revoked(self, answer):
        """Wrap a requests-mock callback: a revoked token gets keystonemiddleware's 401."""
        refused = response("keystone-token-wrong-password")

        def wrapped(request, context):
            token = request.headers.get("X-Auth-Token")
            if self.revoke_all or token in self.revoked:
                if self.on_refusal is not None:
                    self.on_refusal()
                context.status_code = refused["status"]
                context.headers.update(refused["headers"])
                return refused["body"]
            return answer(request, context)

        return wrapped

    def requests(self, method=None, pattern=""):
        return [
            r for r in self.m.request_history
            if (method is None or r.method == method) and re.search(pattern, r.url)
        ]


def status(value, reason=None, detail=None):
    """A body change: set a container's status fields (values only)."""
    def change(b):
        b["status"] = value
        b["status_reason"] = reason
        b["status_detail"] = detail
    return change


def creates(cloud, *statuses, name="jupyter-alice"):
    """A start: no container named ``name`` yet, the create, then the shows.

    Each status is a recorded response's name or a change of the running
    container (see :func:`status`); the last one repeats.  Default: Running.
    """
    cloud.reply("GET", f"{ZUN}/v1/containers?name={name}", "zun-containers-list-empty")
    cloud.reply("POST", CREATE, "zun-container-create-run")
    cloud.replies("GET", SHOW, *[
        s if isinstance(s, str) else ("zun-container-show-running", s)
        for s in statuses or [status("Running")]
    ])


# -- Cinder ---------------------------------------------------------------------

VID = "689d4d3a-1cd7-4e42-b239-90bb0b12ac6a"
VOLUME = f"{CINDER}/volumes/{VID}"
DETAIL = f"{CINDER}/volumes/detail"
CINDER_ROOT = "http://127.0.0.1:8776"
#: the container of a start with a home volume
ZUN_UUID = "8c38060b-53cf-4138-9476-2dca7aa4d0d6"


def volume_change(**values):
    """A body change for a recorded volume: set these fields (values only)."""
    def apply(b):
        v = b["volume"]
        for key, value in values.items():
            v[key] = copy.deepcopy(value)
        if "id" in values:
            for link in v["links"]:
                link["href"] = link["href"].replace(VID, values["id"])
    return apply


def listed(**values):
    """One volume as the recorded ``GET /volumes/detail`` lists it."""
    v = body("cinder-volumes-detail-filter-name")["volumes"][0]
    volume_change(**values)({"volume": v})
    return v


def serve_lists(cloud, by_name=(), by_metadata=()):
    """Answer the name and metadata searches with these volumes."""
    rec = response("cinder-volumes-detail-filter-name")

    def answer(request, context):
        context.status_code = rec["status"]
        context.headers.update(rec["headers"])
        query = parse_qs(urlsplit(request.url).query)
        page = dict(rec["body"])
        page["volumes"] = list(by_metadata if "metadata" in query else by_name)
        return page

    cloud.m.get(DETAIL, json=answer)


def searches(cloud):
    """The queries the spawner sent to ``GET /volumes/detail``."""
    return [
        {k: v[0] for k, v in parse_qs(urlsplit(r.url).query).items()}
        for r in cloud.requests("GET", "/volumes/detail")
    ]


def zun_starts(cloud):
    """A start that mounts a home volume (the recorded create with ``mounts``)."""
    cloud.reply("GET", LIST_BY_NAME, "zun-containers-list-empty")
    cloud.reply("POST", CREATE, "zun-container-create-with-volume")
    cloud.reply("GET", f"{ZUN}/v1/containers/{ZUN_UUID}", "zun-container-show-with-volume")
