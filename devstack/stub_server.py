"""What the local cloud's read-only API stubs share (stdlib only).

``neutron_stub.py`` and ``glance_stub.py`` answer JSON on 127.0.0.1, log each
request to stderr with a time, and answer what they do not know with a 404
logged as ``UNHANDLED`` (that is how a missing call shows up in their logs).
"""

import argparse
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class JSONHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    request_id = "req-stub"

    def log_message(self, fmt, *args):  # noqa: D102 - to stderr with a time
        sys.stderr.write("%s %s\n" % (time.strftime("%H:%M:%S"), fmt % args))
        sys.stderr.flush()

    def _send(self, status, body):
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Openstack-Request-Id", self.request_id)
        self.end_headers()
        self.wfile.write(data)

    def not_found_body(self, what):
        """The service's own 404 document."""
        raise NotImplementedError

    def _not_found(self, what):
        self.log_message("UNHANDLED %s %s", self.command, self.path)
        self._send(404, self.not_found_body(what))

    def _read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)

    def _unsupported(self):
        self._read_body()
        self._not_found(self.path)

    do_POST = do_PUT = do_PATCH = do_DELETE = _unsupported  # noqa: N815


def serve(handler, description, default_port, banner, add_options=None):
    """Parse --host/--port (and what *add_options(parser)* adds; the parsed
    options become ``handler.options``) and serve *handler* until interrupted."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=default_port)
    if add_options is not None:
        add_options(parser)
    args = parser.parse_args()
    handler.options = args
    server = ThreadingHTTPServer((args.host, args.port), handler)
    server.daemon_threads = True
    sys.stderr.write("%s on http://%s:%d/\n" % (banner, args.host, args.port))
    sys.stderr.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
