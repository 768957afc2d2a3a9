"""devstack/fault_proxy.py: the proxy the fault suite puts between hub and cloud."""

import importlib.util
import json
import pathlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]

spec = importlib.util.spec_from_file_location(
    "fault_proxy", REPO_ROOT / "devstack" / "fault_proxy.py")
fault_proxy = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fault_proxy)


@pytest.fixture
def upstream():
    calls = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            calls.append(self.path)
            port = self.server.server_address[1]
            body = json.dumps({
                "next": f"http://127.0.0.1:{port}/v1/containers?marker=x",
                "longer_port": f"http://127.0.0.1:{port}0/",
            }).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server.server_address[1], calls
    server.shutdown()
    server.server_close()


def start_proxy(upstream_port, rate, kinds, seed=1):
    route = fault_proxy.Route("zun", 0, f"http://127.0.0.1:{upstream_port}")
    faults = fault_proxy.Faults(rate, seed, kinds, 0.6, ["zun"])
    server = fault_proxy._Server(("127.0.0.1", 0), fault_proxy.make_handler(
        route, [route], faults))
    route.listen_port = server.server_address[1]
    route.proxy_origin = f"http://127.0.0.1:{route.listen_port}"
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server, route.proxy_origin


def test_links_in_answers_lead_back_through_the_proxy(upstream):
    port, calls = upstream
    server, origin = start_proxy(port, 0.0, fault_proxy.KINDS)
    try:
        body = requests.get(f"{origin}/v1/containers", timeout=5).json()
    finally:
        server.shutdown()
    assert body["next"] == f"{origin}/v1/containers?marker=x"
    assert body["longer_port"] == f"http://127.0.0.1:{port}0/"  # another port: untouched
    assert calls == ["/v1/containers"]


def test_faults_hit_the_configured_fraction_and_a_seed_repeats_them(upstream):
    port, calls = upstream

    def outcomes(seed):
        server, origin = start_proxy(port, 0.3, ["error", "reset", "late-error"], seed)
        seen = []
        try:
            for _ in range(60):
                try:
                    seen.append(requests.get(f"{origin}/x", timeout=5).status_code)
                except requests.ConnectionError:
                    seen.append("reset")
        finally:
            server.shutdown()
        return seen

    first = outcomes(5)
    assert first == outcomes(5)
    faulty = [o for o in first if o != 200]
    assert 8 <= len(faulty) <= 30
    assert {500, 503, 502, 504, "reset"} & set(faulty)
    # a late error reached the service first: the work was done, the answer lost
    assert len(calls) > first.count(200)
