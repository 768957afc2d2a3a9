"""A fake Keystone + Zun in its own process that charges Zun's measured costs.

Serves the recorded Keystone and Zun bodies and the container list/show rules of
``tests/fake_zun.py`` (pages of at most 1,000, ``next`` without filters, marker
404, status filter) on 127.0.0.1, and sleeps what upstream Zun 18 was measured
to spend: ``--per-item`` seconds per container a list returns (1.15 ms) and
``--per-request`` per request (16 ms, a GET).  The sleep is charged per request
thread, so concurrency is the hub's choice, as with a real API.

Control (for the benchmark, not Zun API): ``GET /_fake/stats``,
``POST /_fake/reset``, ``POST /_fake/populate {"n": N, "stopped": K}``,
``POST /_fake/status {"uuids": [...], "status": "Stopped"}``.

    python benchmarks/fake_zun_server.py [--port 0]   # prints "PORT <n>"
"""

import argparse
import json
import pathlib
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fake_zun import FakeZun  # noqa: E402
from tests.recorded import body, future, response  # noqa: E402


def uuid_of(i):
    return f"{i:08d}-0000-4000-8000-000000000000"


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.lists = self.gets = self.items = 0
        self.charged = 0.0

    def as_dict(self):
        return {"lists": self.lists, "gets": self.gets, "items": self.items,
                "charged_s": round(self.charged, 4)}


def serve(port, per_item, per_request):
    zun = FakeZun()
    stats = Stats()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, status, payload, headers=()):
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def read_json(self):
            length = int(self.headers.get("Content-Length", 0))
            return json.loads(self.rfile.read(length) or b"{}")

        def do_POST(self):
            url = urlsplit(self.path)
            data = self.read_json()
            if url.path == "/v3/auth/tokens":
                token = body("keystone-token-password")
                token["token"]["expires_at"] = future()
                for service in token["token"]["catalog"]:
                    for ep in service["endpoints"]:
                        ep["url"] = ep["url"].replace("http://127.0.0.1:9517", base)
                return self.reply(201, token, [("X-Subject-Token", "bench-token")])
            with lock:
                if url.path == "/_fake/reset":
                    stats.reset()
                elif url.path == "/_fake/populate":
                    zun.containers.clear()
                    for i in range(data["n"]):
                        zun.add(uuid_of(i), f"jupyter-user{i}",
                                status="Stopped" if i < data.get("stopped", 0) else "Running")
                elif url.path == "/_fake/status":
                    for u in data["uuids"]:
                        zun.set(u, status=data["status"])
            return self.reply(200, stats.as_dict())

        def do_GET(self):
            url = urlsplit(self.path)
            if url.path.startswith("/v3"):
                return self.reply(200, response("keystone-v3")["body"])
            if url.path == "/":
                return self.reply(200, response("zun-root")["body"])
            if url.path == "/_fake/stats":
                return self.reply(200, stats.as_dict())
            if url.path == "/v1/containers":
                with lock:
                    status, payload = zun.list(parse_qs(url.query))
                    n = len(payload.get("containers", ()))
                    cost = per_request + per_item * n
                    with stats.lock:
                        stats.lists += 1
                        stats.items += n
                        stats.charged += cost
                    data = json.dumps(payload).encode()
                time.sleep(cost)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return None
            with lock:
                status, payload = zun.show(url.path.rsplit("/", 1)[1])
                with stats.lock:
                    stats.gets += 1
                    stats.charged += per_request
            time.sleep(per_request)
            return self.reply(status, payload)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    base = f"http://127.0.0.1:{server.server_address[1]}"
    zun.base = base
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--per-item", type=float, default=0.00115)
    parser.add_argument("--per-request", type=float, default=0.016)
    args = parser.parse_args()
    serve(args.port, args.per_item, args.per_request)


if __name__ == "__main__":
    main()
