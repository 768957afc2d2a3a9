"""Prometheus metrics of magnum-spawner (on the hub's ``/hub/metrics``), and the
request ids and structured lines of its spawn log.

JupyterHub serves prometheus_client's default registry there; every metric
here is registered in it (names start with ``magnum_spawner_``):

- ``cloud_requests_total{service,operation,status}`` and
  ``cloud_request_duration_seconds{service,operation}``: every HTTP call of
  the hub's OpenStack session (Keystone, Zun, Cinder), as keystoneauth sends
  it (retries included).  ``operation`` is the method and the path with ids
  replaced (``GET /containers/{id}``); ``status`` is the HTTP status code, or
  ``unreachable`` / ``error`` when no answer came.
- ``poller_cycle_seconds{kind,result}``: one list of the hub-wide poller
  (``kind`` full or action; ``result`` ok or error).
- ``poller_staleness_seconds{hub,place}``: age of the poller's last complete
  list; ``place`` names the places it lists for (``ZunSpawner.places``, joined
  with ``+`` when they share a project; ``default`` with one place).
- ``containers{hub,place,status}``: this hub's containers by Zun status, as the
  poller last listed them.
- ``spawn_failures_total{cause}``: failed starts by the cause the user was
  shown (quota, timeout, cloud, container-error, ...).

The hooks are one call each: :func:`instrument_session` where the session is
made (auth.py), :func:`track_poller` and :func:`observe_poller_cycle` in the
poller, :func:`count_spawn_failure` in the spawner.

Logs: each start gets a request id (``req-<uuid>``, :data:`REQUEST_ID`) that
the instrumented session sends as ``X-OpenStack-Request-ID`` on every call the
start makes, so Keystone, Zun (api and compute) and Cinder log it as the
global request id; the spawner writes one :func:`logfmt` line per phase with
user, server, container and that id (``grep req-… hub.log zun-*.log``).
"""

import contextvars
import re
import threading
import time
import uuid
import weakref
from urllib.parse import urlsplit

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from keystoneauth1 import exceptions as ks_exc

PREFIX = "magnum_spawner"

CLOUD_REQUESTS = Counter(
    f"{PREFIX}_cloud_requests",
    "OpenStack API calls of the hub, by service, operation and HTTP status",
    ["service", "operation", "status"],
)
CLOUD_LATENCY = Histogram(
    f"{PREFIX}_cloud_request_duration_seconds",
    "Time of the hub's OpenStack API calls (retries included)",
    ["service", "operation"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
POLLER_CYCLE = Histogram(
    f"{PREFIX}_poller_cycle_seconds",
    "Time of one list of the hub-wide Zun poller",
    ["kind", "result"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
SPAWN_FAILURES = Counter(
    f"{PREFIX}_spawn_failures",
    "Server starts that failed, by the cause the user was shown",
    ["cause"],
)

# Which service a catalog type is (the names operators know).
SERVICES = {
    "container": "zun",
    "block-storage": "cinder",
    "volumev3": "cinder",
    "volume": "cinder",
    "identity": "keystone",
    "network": "neutron",
    "compute": "nova",
    "container-infra": "magnum",
    "placement": "placement",
}
# Path segments kept as they are; any other segment after a collection is an id.
_COLLECTIONS = {"containers", "volumes", "capsules", "images", "quotas", "services",
                "networks", "ports", "floatingips", "clusters", "hosts", "users",
                "projects", "application_credentials", "snapshots"}
_KEEP = {"detail", "action", "logs", "stop", "start", "top", "stats", "execute",
         "put_archive", "get_archive", "auth", "tokens", "os-quota-sets", "metadata",
         "scheduler-stats", "get_pools"}
_VERSION = re.compile(r"^v\d+(\.\d+)?$")
_PROJECT = re.compile(r"^[0-9a-f]{32}$")


def operation(method, url):
    """``GET /containers/{id}``: bounded labels whatever ids and names appear."""
    parts = [p for p in urlsplit(url).path.split("/") if p]
    out = []
    previous = None
    for part in parts:
        if _VERSION.match(part) and not out:
            continue  # /v1, /v3, /v2.0
        if _PROJECT.match(part) and not out:
            continue  # Cinder's /v3/<project id>/
        if part in _COLLECTIONS or part in _KEEP:
            out.append(part)
        elif previous in _COLLECTIONS or previous == "metadata":
            out.append("{id}")
        else:
            out.append("{x}")
        previous = part
    return f"{method.upper()} /{'/'.join(out)}"


def _service(url, kwargs):
    service_type = (kwargs.get("endpoint_filter") or {}).get("service_type") or kwargs.get(
        "service_type"
    )
    if service_type:
        return SERVICES.get(service_type, service_type)
    if "/auth/tokens" in url or urlsplit(url).path.rstrip("/").endswith(("/v3", "/identity")):
        return "keystone"
    return "other"


def instrument_session(session):
    """Count and time every request of this keystoneauth session (once)."""
    if getattr(session, "_magnum_metrics", False):
        return session
    send = session.request

    def request(url, method, **kwargs):
        request_id = REQUEST_ID.get()
        if request_id and not kwargs.get("global_request_id"):
            kwargs["global_request_id"] = request_id
        service = _service(url, kwargs)
        op = operation(method, url)
        started = time.monotonic()
        status = "error"
        try:
            resp = send(url, method, **kwargs)
            status = str(resp.status_code)
            return resp
        except ks_exc.HttpError as e:
            status = str(e.http_status)
            raise
        except (ks_exc.ConnectFailure, ks_exc.ConnectTimeout, ks_exc.SSLError):
            status = "unreachable"
            raise
        finally:
            CLOUD_REQUESTS.labels(service, op, status).inc()
            CLOUD_LATENCY.labels(service, op).observe(time.monotonic() - started)

    session.request = request
    session._magnum_metrics = True
    return session


#: The id of the start (or stop) being run, sent with its cloud calls.  The
#: clients run calls in worker threads with a copy of the caller's context.
REQUEST_ID = contextvars.ContextVar("magnum_spawner_request_id", default=None)


def new_request_id():
    """A fresh ``req-<uuid>`` (the form OpenStack accepts as a global id)."""
    return f"req-{uuid.uuid4()}"


def logfmt(**fields):
    """``key=value`` pairs in order, values quoted when they need it."""
    out = []
    for key, val in fields.items():
        text = "-" if val is None or val == "" else str(val)
        if re.search(r'[\s"=]', text):
            text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        out.append(f"{key}={text}")
    return " ".join(out)


def observe_poller_cycle(kind, seconds, ok):
    POLLER_CYCLE.labels(kind, "ok" if ok else "error").observe(seconds)


def count_spawn_failure(cause):
    SPAWN_FAILURES.labels(cause or "unknown").inc()


class _PollerCollector:
    """Reads the live pollers at scrape time: staleness, containers by status."""

    def __init__(self):
        self.pollers = weakref.WeakSet()
        self.lock = threading.Lock()

    def collect(self):
        staleness = GaugeMetricFamily(
            f"{PREFIX}_poller_staleness_seconds",
            "Seconds since the hub-wide poller's last complete list started "
            "(+Inf before the first)",
            labels=["hub", "place"],
        )
        containers = GaugeMetricFamily(
            f"{PREFIX}_containers",
            "This hub's containers by Zun status, as the poller last listed them",
            labels=["hub", "place", "status"],
        )
        now = time.monotonic()  # the clock of asyncio's loop.time()
        with self.lock:
            pollers = list(self.pollers)
        for poller in self.current(pollers):
            hub, place = str(poller.hub_id), poller.place_label
            updated = poller.updated_at
            staleness.add_metric([hub, place], now - updated if updated is not None else float("inf"))
            counts = {}
            for record in list(poller.containers.values()):
                if record is not None:
                    status = record.get("status") or "unknown"
                    counts[status] = counts.get(status, 0) + 1
            for status, n in sorted(counts.items()):
                containers.add_metric([hub, place, status], n)
        yield staleness
        yield containers

    @staticmethod
    def current(pollers):
        """The running poller of each hub and place, the latest when there are
        several: a stopped one (a reset, a new client) lives on until it is
        collected, and two samples of one series fail the whole scrape."""
        best = {}
        for poller in pollers:
            if poller._task is None:
                continue
            key = (str(poller.hub_id), poller.place_label)
            seen = best.get(key)
            if seen is None or (poller.updated_at or 0) >= (seen.updated_at or 0):
                best[key] = poller
        return list(best.values())

    def describe(self):
        return []


_POLLERS = _PollerCollector()
REGISTRY.register(_POLLERS)


def track_poller(poller):
    with _POLLERS.lock:
        _POLLERS.pollers.add(poller)
