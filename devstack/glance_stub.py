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

from urllib.parse import parse_qsl, urlsplit

import stub_server

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


class Handler(stub_server.JSONHandler):
    server_version = "glance-stub/1"
    request_id = "req-glance-stub"

    def not_found_body(self, what):
        return {"code": 404, "title": "Not Found",
                "message": "%s not found" % what}

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


def main():
    stub_server.serve(Handler, __doc__.splitlines()[0], 9292,
                      "glance stub (image %s, %s)" % (IMAGE_NAME, IMAGE_ID))


if __name__ == "__main__":
    main()
