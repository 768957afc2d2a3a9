"""A small asynchronous client for the Zun REST API.

It sits on a keystoneauth1 ``Adapter`` (service type ``container``), so endpoint
lookup, token renewal and connection retries are keystoneauth's.  Every request
carries ``OpenStack-API-Version: container <version>``: without it Zun assumes 1.1.

keystoneauth is synchronous; every call runs on a bounded thread pool so that the
hub's event loop never waits on the network.
"""

import asyncio
import contextvars
import contextlib
import gc
import json
import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from keystoneauth1 import adapter as ks_adapter
from keystoneauth1 import exceptions as ks_exc

from ..common.errors import (
    CloudError,
    NotFound,
    Unreachable,
    VersionError,
    error_for_status,
    from_keystoneauth,
)
from ..common.waiting import wait_until
from . import objects
from .objects import error_detail, negotiate_version

#: answers after which any request is sent again (keystoneauth retries)
RETRY_STATUSES = (502, 503, 504)
#: and those after which a read is
READ_RETRY_STATUSES = [500, *RETRY_STATUSES]

log = logging.getLogger(__name__)

#: The microversion the spawner is written and tested against.
DEFAULT_API_VERSION = "1.40"
#: The oldest microversion that still has every feature the spawner uses:
#: ``command`` as a list (1.20), ``mounts`` (1.11), ``cpu_policy`` (1.28 - the
#: flavors may ask for pinned cores).
MIN_API_VERSION = "1.28"


#: How many of the last listed uuids a listing keeps to resume after a lost marker.
MARKER_FALLBACKS = 8
#: Lost markers one listing survives before it gives up (a deletion storm).
MAX_MARKER_RECOVERIES = 50

_gc_lock = threading.Lock()
_gc_pausers = 0
_gc_state = {"enabled": True}


@contextlib.contextmanager
def gc_paused():
    """Keep the cyclic collector from running while a parsed page is alive.

    Reference counting frees the page; a collection in the middle would promote
    its objects and soon make a full collection of the whole hub's heap (a stall
    of hundreds of milliseconds at a few thousand users).  Counted, so that
    overlapping pages in several threads re-enable it only at the end.
    """
    global _gc_pausers
    with _gc_lock:
        if _gc_pausers == 0:
            was_enabled = gc.isenabled()
            gc.disable()
            _gc_state["enabled"] = was_enabled
        _gc_pausers += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0 and _gc_state["enabled"]:
                gc.enable()



_decode = json.JSONDecoder().raw_decode
_skip_space = re.compile(r"[ \t\n\r]*").match


def _whole(container):
    return container


def parse_page(text, keep):
    """``([(keep(container), uuid), ...], next)`` from a Zun list page.

    Walks the top-level object itself and decodes one value at a time, so no
    single call holds the interpreter lock for the whole page.
    """
    kept, nxt = [], None
    i = _skip_space(text, 0).end()
    if text[i] != "{":
        raise ValueError("a Zun list page is a JSON object")
    i += 1
    while True:
        i = _skip_space(text, i).end()
        if text[i] == "}":
            return kept, nxt
        key, i = _decode(text, i)
        i = _skip_space(text, i).end()
        if text[i] != ":":
            raise ValueError(f"expected ':' at {i}")
        i = _skip_space(text, i + 1).end()
        if key == "containers" and text[i] == "[":
            i = _skip_space(text, i + 1).end()
            while text[i] != "]":
                container, i = _decode(text, i)
                kept.append((keep(container), container.get("uuid")))
                i = _skip_space(text, i).end()
                if text[i] == ",":
                    i = _skip_space(text, i + 1).end()
            i += 1
        else:
            value, i = _decode(text, i)
            if key == "next":
                nxt = value
        i = _skip_space(text, i).end()
        if text[i] == ",":
            i += 1


class ForeignLink(CloudError):
    """A ``next`` link that is not Zun's container list: never followed."""


def _next_page(link, query):
    """Zun's ``next`` link as the next request on the catalog's endpoint.

    Zun builds the link from the host it believes it has (behind a proxy, not
    the catalog's) plus ``/v1/containers`` and keeps only marker, limit and
    sort: the request goes to the catalog's endpoint with the link's query and
    our filters again, so the hub's token never travels to a host the link
    names.  A link to anything but the container list is refused.
    """
    parts = urlsplit(link)
    if not parts.path.rstrip("/").endswith("/v1/containers"):
        log.error("Zun's container list gave a 'next' link to %s, which is not "
                  "Zun's container list; not following it (the listing fails)", link)
        raise ForeignLink(f"refused a 'next' link to {link} (not Zun's container list)")
    params = dict(parse_qsl(parts.query))
    params.update(query)
    return "/containers", params


class ZunClient:
    """Asynchronous Zun API client on one keystoneauth session."""

    #: Seconds between keystoneauth's tries of a request that got no answer or
    #: a 502-504 (None: keystoneauth's own, from 0.5 s doubling each try).
    retry_delay = None
    #: How often a read (GET) answered 500 or 502-504 is asked again; other
    #: requests get ``status_code_retries``.
    read_status_code_retries = 4

    def __init__(
        self,
        session,
        *,
        region_name=None,
        interface=None,
        api_version=DEFAULT_API_VERSION,
        min_api_version=MIN_API_VERSION,
        max_workers=8,
        connect_retries=3,
        status_code_retries=2,
        retry_delay=None,
        endpoint_override=None,
        timeout=60,
    ):
        self.session = session
        self.wanted_version = api_version
        self.min_api_version = min_api_version
        self.api_version = None
        self.timeout = timeout
        if retry_delay is None:
            retry_delay = type(self).retry_delay
        self._adapter_args = dict(
            session=session,
            service_type="container",
            interface=interface,
            region_name=region_name,
            endpoint_override=endpoint_override,
            connect_retries=connect_retries,
            status_code_retries=status_code_retries,
            retriable_status_codes=list(RETRY_STATUSES),
            connect_retry_delay=retry_delay,
            status_code_retry_delay=retry_delay,
        )
        self.adapter = self._make_adapter(api_version)
        self._executor = ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="zun-api"
        )
        self._version_lock = asyncio.Lock()
        #: hosts named by ``next`` links that are not the catalog's (logged once)
        self._foreign_hosts = set()

    def _make_adapter(self, version):
        return ks_adapter.Adapter(default_microversion=version, **self._adapter_args)

    # -- plumbing -----------------------------------------------------------

    async def _run(self, func, *args, **kwargs):
        loop = asyncio.get_running_loop()
        # The caller's context goes along (the start's request id, metrics.py).
        context = contextvars.copy_context()
        return await loop.run_in_executor(
            self._executor, lambda: context.run(func, *args, **kwargs))

    def _request_sync(self, method, url, *, idempotent=True, **kwargs):
        kwargs.setdefault("raise_exc", False)
        kwargs.setdefault("timeout", self.timeout)
        if not idempotent:
            # A POST that reached the server but whose answer was lost must not be
            # sent again: it could make a second container.
            kwargs["connect_retries"] = 0
            kwargs["status_code_retries"] = 0
        elif method == "GET":
            # A read changes nothing, so a 500 (Zun's answer to a database or
            # message-bus hiccup) is worth asking again too, and more often than
            # a write: a 200-spawn fault burst lost a start to one look that met
            # 504, 503, a reset and a 500 in a row.  A real fault answers 500
            # every time and still reaches the caller after the retries (the
            # last ~7 s later with keystoneauth's doubling delay).
            kwargs.setdefault("retriable_status_codes", READ_RETRY_STATUSES)
            kwargs.setdefault("status_code_retries", self.read_status_code_retries)
        # keystoneauth's own request log (log=True) prints whole bodies at DEBUG:
        # a create body and every container view carry what the hub passes to the
        # server.  One line per call without bodies instead.
        kwargs["log"] = False
        resp = self._send(method, url, **kwargs)
        if resp.status_code == 401:
            # The token was refused (revoked server-side, say).  keystoneauth
            # re-authenticates and resends only in the thread whose invalidate()
            # dropped the cached token; a request that raced it comes back 401
            # although a fresh token is (or is about to be) there.  A 401 did
            # nothing, so even a create is safe to send once more.  (Without a
            # second invalidate: a fresh token refused again is a real refusal.)
            log.info("Zun refused the token for %s %s; retrying with a new one", method, url)
            resp = self._send(method, url, allow_reauth=False, **kwargs)
        if resp.status_code >= 400:
            detail, request_id = error_detail(resp)
            raise error_for_status(resp.status_code, detail, request_id=request_id)
        return resp

    def _send(self, method, url, **kwargs):
        started = time.monotonic()
        try:
            resp = self.adapter.request(url, method, **kwargs)
        except ks_exc.ClientException as e:
            raise from_keystoneauth(e, "zun") from None
        log.debug(
            "%s %s: %s in %.2f s (request %s)", method, resp.url, resp.status_code,
            time.monotonic() - started, resp.headers.get("X-Openstack-Request-Id", "-"),
        )
        return resp

    async def _request(self, method, url, **kwargs):
        await self.ensure_version()
        return await self._run(self._request_sync, method, url, **kwargs)

    def _root_url(self):
        endpoint = self.adapter.get_endpoint()
        if not endpoint:
            raise Unreachable("no 'container' endpoint in the Keystone catalog")
        parts = urlsplit(endpoint)
        # The catalog names .../v1; the version range is on the service root.
        path = re.sub(r"/v1/?$", "/", parts.path) or "/"
        return urlunsplit((parts.scheme, parts.netloc, path, "", ""))

    def _read_versions_sync(self):
        try:
            root = self._root_url()
        except ks_exc.EndpointNotFound as e:
            raise from_keystoneauth(e, "zun") from None
        except ks_exc.ClientException as e:
            # finding the endpoint may mean logging in first
            raise from_keystoneauth(e, "keystone") from None
        try:
            resp = self.session.get(
                root, authenticated=False, raise_exc=False, timeout=self.timeout,
                connect_retries=self._adapter_args["connect_retries"],
            )
        except ks_exc.ClientException as e:
            raise from_keystoneauth(e, "zun", where=f"the Zun API at {root}") from None
        if resp.status_code >= 400:
            detail, request_id = error_detail(resp)
            raise error_for_status(resp.status_code, detail, request_id=request_id)
        body = resp.json()
        versions = [v for v in body.get("versions", []) if v.get("id") == "v1"]
        doc = versions[0] if versions else body.get("default_version") or {}
        if not doc.get("max_version"):
            raise VersionError(f"the Zun root {root} has no version range")
        return doc.get("min_version") or "1.1", doc["max_version"]

    async def ensure_version(self):
        """Read the server's version range once and settle on a microversion."""
        if self.api_version is not None:
            return self.api_version
        async with self._version_lock:
            if self.api_version is None:
                smin, smax = await self._run(self._read_versions_sync)
                chosen = negotiate_version(
                    self.wanted_version, self.min_api_version, smin, smax
                )
                if chosen != self.wanted_version:
                    log.warning(
                        "Zun supports microversions up to %s; using %s instead of %s",
                        smax, chosen, self.wanted_version,
                    )
                    self.adapter = self._make_adapter(chosen)
                self.api_version = chosen
        return self.api_version

    # -- containers ---------------------------------------------------------

    async def create(self, body, run=True):
        """``POST /containers`` (202, asynchronous). Never retried blindly."""
        params = {"run": "true"} if run else None
        try:
            resp = await self._request(
                "POST", "/containers", json=body, params=params, idempotent=False
            )
        except CloudError as e:
            # Zun's schema errors quote the value they refuse, secrets included.
            e.detail = objects.redact(e.detail, objects.secret_values(body))
            e.args = (str(e),)
            raise
        return resp.json()

    async def get(self, ident):
        """``GET /containers/<uuid>``; raises :class:`NotFound` when it is gone."""
        resp = await self._request("GET", f"/containers/{ident}")
        return resp.json()

    def _note_foreign_host(self, link):
        """Log (once per host) a ``next`` link naming a host not the catalog's."""
        host = urlsplit(link).netloc
        if host in self._foreign_hosts:
            return
        catalog = urlsplit(self.adapter.get_endpoint() or "").netloc
        if host and host != catalog:
            self._foreign_hosts.add(host)
            log.warning(
                "Zun's list pages name host %s in their 'next' links, not the catalog's "
                "%s: paging on the catalog's endpoint (Zun's idea of its own address "
                "differs: a proxy in front of it?)", host, catalog)

    def _page_sync(self, url, params, keep):
        """One page, parsed in the worker thread, container by container.

        A page of 1,000 containers is ~1.2 MB of JSON: one ``json.loads`` of it
        holds the interpreter lock (the event loop waits) for 15-45 ms here.
        Decoding one container at a time lets the loop in every few ms, and each
        container is dropped as soon as ``keep`` has taken what it needs; the
        collector stays paused meanwhile (see :func:`gc_paused`).
        """
        resp = self._request_sync("GET", url, params=params)
        keep = keep or _whole
        with gc_paused():
            kept, nxt = parse_page(resp.content.decode("utf-8"), keep)
        tail = [uuid for _, uuid in kept[-MARKER_FALLBACKS:]]
        if nxt:
            self._note_foreign_host(nxt)
        return kept, tail, nxt

    async def list(self, name=None, limit=100, keep=None, **filters):
        """Every container of the project, following Zun's ``next`` links.

        ``filters`` are Zun's query filters (a list value is sent repeated, which
        Zun reads as "any of"); ``next`` links keep only the marker, limit and
        sort, so the filters are sent again with every page.  ``keep(container)``
        runs in the worker thread on each container and its result is returned
        instead (``None`` results are dropped): the caller keeps only what it needs.

        A paging marker that names a container deleted meanwhile is a 404 in
        Zun; the listing then continues from the container before it, so one
        deletion never fails (or restarts) a listing of thousands.
        """
        await self.ensure_version()
        query = {k: v for k, v in filters.items() if v is not None}
        if name is not None:
            query["name"] = name
        out = []
        seen = set()
        markers = []  # the last uuids listed, newest last: fallbacks for a lost marker
        recoveries = 0
        params = {"limit": limit, **query}
        url = "/containers"
        while True:
            try:
                kept, tail, nxt = await self._run(self._page_sync, url, params, keep)
            except NotFound:
                marker = (params or {}).get("marker")
                recoveries += 1
                if marker is None or recoveries > MAX_MARKER_RECOVERIES:
                    raise
                # continue after the container listed just before the lost one
                # (a second deletion walks further back; none left: start over)
                while markers and markers[-1] == marker:
                    markers.pop()
                params = {"limit": limit, **query}
                if markers:
                    params["marker"] = markers.pop()
                url = "/containers"
                log.debug("Paging marker %s is gone; continuing the listing", marker)
                continue
            for item, uuid in kept:
                if uuid not in seen:
                    seen.add(uuid)
                    if item is not None:
                        out.append(item)
            markers.extend(tail)
            del markers[:-MARKER_FALLBACKS]
            if not (nxt and kept):
                return out
            url, params = _next_page(nxt, query)

    async def find_by_name(self, name):
        """Containers whose name is exactly ``name`` (Zun allows duplicates)."""
        return [c for c in await self.list(name=name) if c.get("name") == name]

    async def start(self, ident):
        await self._request("POST", f"/containers/{ident}/start")

    async def stop(self, ident, timeout=10):
        await self._request(
            "POST", f"/containers/{ident}/stop", params={"timeout": int(timeout)}
        )

    async def delete(self, ident):
        """Stop and delete (``?stop=true``); ``force`` is admin-only and never used."""
        await self._request("DELETE", f"/containers/{ident}", params={"stop": "true"})

    async def logs(self, ident, tail=50):
        resp = await self._request(
            "GET",
            f"/containers/{ident}/logs",
            params={"stdout": "true", "stderr": "true", "tail": str(tail)},
        )
        # Zun answers the logs as JSON (pecan's 'json' exposure): one string,
        # quoted, its newlines escaped
        try:
            text = resp.json()
        except ValueError:
            return resp.text
        return text if isinstance(text, str) else resp.text

    async def delete_and_wait(self, ident, timeout=60, interval=1.0):
        """Delete and wait until Zun answers 404 for the container."""
        deadline = time.monotonic() + timeout
        busy = None

        async def deleted():
            nonlocal busy
            try:
                await self.delete(ident)
            except NotFound:
                return "gone"
            except CloudError as e:
                # 409 while Zun is still busy with it (creating, stopping...)
                if e.status != 409:
                    raise
                busy = e
                return None
            return "sent"

        async def gone():
            try:
                await self.get(ident)
            except NotFound:
                return True
            return None

        try:
            if await wait_until(deleted, deadline=deadline, interval=interval) == "gone":
                return
        except TimeoutError:
            raise busy from None
        try:
            await wait_until(gone, deadline=deadline, interval=interval)
        except TimeoutError:
            raise CloudError(f"container {ident} was not gone after {timeout} s") from None

    def close(self):
        self._executor.shutdown(wait=False)
