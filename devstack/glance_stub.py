#!/usr/bin/env python3
"""A tiny read-only Glance for the local cloud's Magnum (stdlib only).

Magnum looks a cluster template's image up in Glance and reads its
``os_distro`` (``magnum.api.attr_validator.validate_image`` and
``magnum.api.validation.enforce_driver_supported``, both through
openstacksdk's ``image.find_image``: ``GET /v2/images/<id>``, or
``GET /v2/images?name=<name>`` for a name).  The local cluster driver
(``devstack/magnum_local_driver``) boots nothing, so one image is all there
is: ``IMAGE_NAME`` with ``os_distro`` = ``OS_DISTRO``, the distro the driver
declares in its ``provides``.  Unknown paths answer 404 and are logged
(``UNHANDLED`` in ``logs/glance.log``).

No authentication is checked: it listens on 127.0.0.1 only.

Usage: glance_stub.py [--host 127.0.0.1] [--port 9292]
"""

import argparse
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

IMAGE_ID = "8d0f3e0a-6c3b-4f39-9a1e-4c1b5a7e2d10"
IMAGE_NAME = "k8s-local-v1.20.2"
OS_DISTRO = "ubuntu"
CREATED = "2026-01-01T00:00:00Z"

IMAGE = {
    "id": IMAGE_ID,
    "name": IMAGE_NAME,
    "status": "active",
    "visibility": "public",
    "protected": False,
    "os_hidden": False,
    "os_distro": OS_DISTRO,
    "os_version": "22.04",
    "kube_version": "v1.20.2",
    "disk_format": "raw",
    "container_format": "bare",
    "size": 0,
    "virtual_size": None,
    "min_disk": 0,
    "min_ram": 0,
    "checksum": None,
    "os_hash_algo": None,
    "os_hash_value": None,
    "owner": "00000000000000000000000000000000",
    "tags": [],
    "created_at": CREATED,
    "updated_at": CREATED,
    "self": "/v2/images/%s" % IMAGE_ID,
    "file": "/v2/images/%s/file" % IMAGE_ID,
    "schema": "/v2/schemas/image",
}
IMAGES = [IMAGE]


def _matches(image, query):
    for key, values in query.items():
        if key in ("limit", "marker", "sort", "sort_key", "sort_dir"):
            continue
        if key not in image:
            return False
        if not any(str(image[key]) == v for v in values):
            return False
    return True


class Handler(BaseHTTPRequestHandler):
    server_version = "glance-stub/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # noqa: D102 - to stderr with a time
        sys.stderr.write("%s %s\n" % (time.strftime("%H:%M:%S"), fmt % args))
        sys.stderr.flush()

    def _send(self, status, body):
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Openstack-Request-Id", "req-glance-stub")
        self.end_headers()
        self.wfile.write(data)

    def _not_found(self, what):
        self.log_message("UNHANDLED %s %s", self.command, self.path)
        self._send(404, {"code": 404, "title": "Not Found",
                         "message": "%s not found" % what})

    def do_GET(self):  # noqa: N802
        url = urlsplit(self.path)
        path = url.path.rstrip("/")
        host = "http://%s:%d" % self.server.server_address[:2]
        if path in ("", "/versions"):
            return self._send(200, {"versions": [{
                "id": "v2.16", "status": "CURRENT",
                "links": [{"rel": "self", "href": host + "/v2/"}]}]})
        if path == "/v2/images":
            query = {}
            for key, value in parse_qsl(url.query, keep_blank_values=True):
                query.setdefault(key, []).append(value)
            found = [i for i in IMAGES if _matches(i, query)]
            return self._send(200, {"images": found, "schema":
                                    "/v2/schemas/images",
                                    "first": "/v2/images"})
        if path.startswith("/v2/images/"):
            ident = path[len("/v2/images/"):]
            for image in IMAGES:
                if image["id"] == ident:
                    return self._send(200, image)
            return self._not_found("image %s" % ident)
        return self._not_found(path)

    def _unsupported(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self._not_found(self.path)

    do_POST = do_PUT = do_PATCH = do_DELETE = _unsupported  # noqa: N815


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9292)
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    sys.stderr.write("glance stub on http://%s:%d/ image %s (%s)\n"
                     % (args.host, args.port, IMAGE_NAME, IMAGE_ID))
    sys.stderr.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
