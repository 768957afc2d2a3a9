#!/usr/bin/env python3
"""A fault-injecting HTTP proxy between a client and OpenStack services.

One listener per upstream service (``--route NAME=LISTEN_PORT=UPSTREAM_URL``).
Every response body and ``Location`` header has each upstream's origin replaced
by its listener's origin, so the Keystone catalog in a token (and Zun's absolute
``next`` links) send every later call through the proxy too: point a client's
``auth_url`` at the Keystone route and all its Zun and Cinder calls pass here.

A seeded random choice (``--seed``) picks, for a ``--rate`` fraction of the
calls of the faulty routes (``--faulty``), one of the ``--kinds``:

``error``       answer 500 or 503 without forwarding
``delay``       wait 0.5-``--max-delay`` s, then forward
``reset``       close the connection (TCP reset) without forwarding
``lost``        forward, then reset: the service did the work, the answer is lost
``late-error``  forward, then answer 502 or 504: the work is done, the client
                sees an error (a gateway that timed out)

``GET /__faults__`` on any listener returns the settings and what was injected;
``POST /__faults__`` with JSON ``{"rate": 0.0}`` (or ``seed``, ``kinds``) changes
them while running.  Standard library only.
"""

import argparse
import http.client
import json
import random
import re
import socket
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

KINDS = ("error", "delay", "reset", "lost", "late-error")
# Hop-by-hop headers (RFC 9110 7.6.1) and what the proxy itself recomputes.
_SKIP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
         "trailer", "transfer-encoding", "upgrade", "content-length", "accept-encoding",
         "host"}


class Faults:
    """The shared settings, the seeded choice and the tally."""

    def __init__(self, rate, seed, kinds, max_delay, faulty):
        self.lock = threading.Lock()
        self.rate = rate
        self.seed = seed
        self.kinds = list(kinds)
        self.max_delay = max_delay
        self.faulty = set(faulty)
        self.random = random.Random(seed)
        self.calls = 0
        self.injected = {}
        self.log = []

    def choose(self, route, method, path):
        with self.lock:
            self.calls += 1
            if route not in self.faulty or self.random.random() >= self.rate:
                return None, 0.0
            kind = self.random.choice(self.kinds)
            extra = self.random.random()
            self.injected[kind] = self.injected.get(kind, 0) + 1
            self.log.append((round(time.time(), 3), route, kind, method, path))
            return kind, extra

    def report(self):
        with self.lock:
            return {
                "rate": self.rate, "seed": self.seed, "kinds": self.kinds,
                "faulty": sorted(self.faulty), "calls": self.calls,
                "injected": dict(self.injected),
                "last": [list(entry) for entry in self.log[-20:]],
            }

    def update(self, changes):
        with self.lock:
            if "rate" in changes:
                self.rate = float(changes["rate"])
            if "seed" in changes:
                self.seed = changes["seed"]
                self.random = random.Random(self.seed)
            if "kinds" in changes:
                self.kinds = [k for k in changes["kinds"] if k in KINDS]


class Route:
    def __init__(self, name, listen_port, upstream):
        self.name = name
        self.listen_port = int(listen_port)
        self.upstream = upstream.rstrip("/")
        parts = urlsplit(self.upstream)
        self.host, self.port = parts.hostname, parts.port or 80
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.proxy_origin = f"http://127.0.0.1:{self.listen_port}"


def rewrite(data, routes):
    """Each upstream origin in ``data`` (bytes) replaced by its proxy's, in one pass
    (a port is never read as the prefix of a longer one)."""
    by_origin = {r.origin.encode(): r.proxy_origin.encode() for r in routes}
    pattern = re.compile(b"(" + b"|".join(map(re.escape, by_origin)) + rb")(?!\d)")
    return pattern.sub(lambda m: by_origin[m.group(1)], data)


def make_handler(route, routes, faults):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # quiet: the tally says what happened
            pass

        def finish(self):
            try:
                super().finish()
            except OSError:
                pass  # the connection was reset on purpose

        def _reset(self):
            # SO_LINGER 0: close() sends a TCP reset, as a dropped connection does
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()

        def _answer(self, status, headers, body):
            self.send_response(status)
            for key, value in headers:
                if key.lower() not in _SKIP:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status):
            body = json.dumps({"errors": [{
                "status": status, "code": "fault-proxy",
                "title": http.client.responses.get(status, "Error"),
                "detail": f"injected by the fault proxy ({route.name})",
            }]}).encode()
            self._answer(status, [("Content-Type", "application/json")], body)

        def _control(self, body):
            if self.command == "POST":
                faults.update(json.loads(body or b"{}"))
            self._answer(200, [("Content-Type", "application/json")],
                         json.dumps(faults.report()).encode())

        def _forward(self, body):
            conn = http.client.HTTPConnection(route.host, route.port, timeout=300)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _SKIP}
                headers["Host"] = f"{route.host}:{route.port}"
                if body:
                    headers["Content-Length"] = str(len(body))
                conn.request(self.command, self.path, body=body or None, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                out = []
                for key, value in resp.getheaders():
                    if key.lower() == "location":
                        value = rewrite(value.encode(), routes).decode()
                    out.append((key, value))
                return resp.status, out, rewrite(data, routes)
            finally:
                conn.close()

        def _handle(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.path.startswith("/__faults__"):
                return self._control(body)
            kind, extra = faults.choose(route.name, self.command, self.path.split("?")[0])
            if kind == "error":
                return self._error(500 if extra < 0.5 else 503)
            if kind == "reset":
                return self._reset()
            if kind == "delay":
                time.sleep(0.5 + extra * max(faults.max_delay - 0.5, 0))
            try:
                status, headers, data = self._forward(body)
            except OSError:
                return self._error(502)
            if kind == "lost":
                return self._reset()
            if kind == "late-error":
                return self._error(504 if extra < 0.5 else 502)
            self._answer(status, headers, data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that went away, or a reset we made


def serve(routes, faults):
    servers = []
    for route in routes:
        server = _Server(("127.0.0.1", route.listen_port),
                                     make_handler(route, routes, faults))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    return servers


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--route", action="append", required=True,
                        help="NAME=LISTEN_PORT=UPSTREAM_URL (repeatable)")
    parser.add_argument("--faulty", action="append", default=None,
                        help="route names that get faults (default: all but keystone)")
    parser.add_argument("--rate", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--max-delay", type=float, default=3.0)
    args = parser.parse_args(argv)
    routes = []
    for spec in args.route:
        name, port, upstream = spec.split("=", 2)
        routes.append(Route(name, port, upstream))
    faulty = args.faulty or [r.name for r in routes if r.name != "keystone"]
    kinds = [k for k in args.kinds.split(",") if k in KINDS]
    faults = Faults(args.rate, args.seed, kinds, args.max_delay, faulty)
    serve(routes, faults)
    print("fault proxy: " + ", ".join(f"{r.name} {r.proxy_origin} -> {r.upstream}"
                                      for r in routes), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
