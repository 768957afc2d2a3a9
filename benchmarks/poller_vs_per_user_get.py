"""How much one hub-wide list saves over one GET per server, side by side.

For N running servers, one poll round is measured two ways in the same run:
- naive: every spawner asks Zun for its own container (N GETs, as JupyterHub's
  per-server poll timer does with ``use_hub_poller = False``);
- poller: one paginated list of the project's containers (pages of 100) feeds
  every spawner's ``poll()``.

Keystone and Zun are served from a threaded HTTP server on 127.0.0.1 with the
recorded bodies, and every Zun request waits LATENCY seconds (default 0.0226 s: the measured cost of one
authenticated GET /v1/containers on the local upstream Zun, see
shared notes/local-openstack.md).  Requests are counted exactly; times are wall
clock on this machine with ZunSpawner's default 8 API threads.

    python benchmarks/poller_vs_per_user_get.py [N ...] [--latency S]
"""

import argparse
import asyncio
import copy
import pathlib
import sys
import time

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from magnum_spawner.zun.poller import HubPoller  # noqa: E402
from tests.helpers import make_spawner  # noqa: E402
from tests.conftest import PASSWORD_AUTH  # noqa: E402
from tests.recorded import body, future, response  # noqa: E402


def containers(n):
    template = body("zun-containers-list-one")["containers"][0]
    out = []
    for i in range(n):
        c = copy.deepcopy(template)
        c.update(uuid=f"uuid-{i:05d}", name=f"jupyter-user{i}", status="Running")
        c["labels"]["hub.jupyter.org/hub"] = "jupyterhub"
        out.append(c)
    return out


class FakeCloud:
    """Keystone + Zun answers (recorded bodies) from a threaded HTTP server on loopback.

    requests-mock serialises requests, which would hide the naive way's
    concurrency; a real server on 127.0.0.1 does not.
    """

    def __init__(self, n, latency):
        self.everything = containers(n)
        self.by_uuid = {c["uuid"]: c for c in self.everything}
        self.order = [c["uuid"] for c in self.everything]
        self.latency = latency
        self.zun_requests = 0
        self.lock = threading.Lock()
        cloud = self

        class Handler(BaseHTTPRequestHandler):
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

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.reply(201, cloud.token(), [("X-Subject-Token", "bench-token")])

            def do_GET(self):
                url = urlsplit(self.path)
                if url.path.startswith("/v3"):
                    return self.reply(200, response("keystone-v3")["body"])
                if url.path == "/":
                    return self.reply(200, response("zun-root")["body"])
                with cloud.lock:
                    cloud.zun_requests += 1
                time.sleep(cloud.latency)
                if url.path == "/v1/containers":
                    return self.reply(200, cloud.page(parse_qs(url.query)))
                return self.reply(200, cloud.by_uuid[url.path.rsplit("/", 1)[1]])

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self):
        token = body("keystone-token-password")
        token["token"]["expires_at"] = future()
        for service in token["token"]["catalog"]:
            for ep in service["endpoints"]:
                ep["url"] = ep["url"].replace("http://127.0.0.1:9517", self.base)
        return token

    def page(self, qs):
        limit = int(qs.get("limit", ["100"])[0])
        marker = qs.get("marker", [None])[0]
        start = 0 if marker is None else self.order.index(marker) + 1
        page = self.everything[start:start + limit]
        more = start + limit < len(self.everything)
        nxt = f"{self.base}/v1/containers?limit={limit}&marker={page[-1]['uuid']}" if more else None
        return {"containers": page, "next": nxt}

    def close(self):
        self.server.shutdown()
        self.server.server_close()


async def one_round(n, use_poller, keystone):
    spawners = []
    for i in range(n):
        s = make_spawner(f"user{i}", config={
            "use_hub_poller": use_poller, "hub_poll_interval": 3600,
            "auth": {**PASSWORD_AUTH, "auth_url": f"{keystone}/v3"},
        })
        s.load_state({"container_id": f"uuid-{i:05d}"})
        spawners.append(s)
    await spawners[0].zun.ensure_version()
    t0 = time.perf_counter()
    if use_poller:
        poller = HubPoller.for_hub(spawners[0].zun, "jupyterhub", 3600)
        await poller.wait_first_load(600)
    results = await asyncio.gather(*(s.poll() for s in spawners))
    elapsed = time.perf_counter() - t0
    HubPoller.stop_all()
    assert results == [None] * n, "every server should be running"
    return elapsed


def measure(n, latency, use_poller):
    from magnum_spawner.common import cloud as cloud_context

    cloud_context.reset()
    cloud = FakeCloud(n, latency)
    try:
        elapsed = asyncio.run(one_round(n, use_poller, cloud.base))
    finally:
        cloud.close()
    return elapsed, cloud.zun_requests


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[100, 500, 2000])
    parser.add_argument("--latency", type=float, default=0.0226)
    args = parser.parse_args()
    print(f"Zun latency per request: {args.latency * 1000:.1f} ms; 8 API threads")
    print(f"{'servers':>8} | {'naive reqs':>10} {'naive s':>8} | {'poller reqs':>11} "
          f"{'poller s':>8} | {'reqs ratio':>10} {'time ratio':>10}")
    for n in args.sizes:
        naive_s, naive_r = measure(n, args.latency, False)
        poll_s, poll_r = measure(n, args.latency, True)
        print(f"{n:>8} | {naive_r:>10} {naive_s:>8.2f} | {poll_r:>11} {poll_s:>8.2f} | "
              f"{naive_r / poll_r:>9.0f}x {naive_s / poll_s:>9.1f}x")


if __name__ == "__main__":
    main()
