"""devstack/neutron_stub.py --subnet: ports as Zun's network driver makes them
on the Docker path (Neutron's port API: create with an address from the pool,
a chosen address once only, update, delete), over HTTP against the real stub."""

import pathlib
import socket
import subprocess
import sys
import time

import pytest
import requests

STUB = pathlib.Path(__file__).resolve().parents[1] / "devstack" / "neutron_stub.py"
NET = "5c0a1f1e-7d3b-4f4e-9a57-0c1a1b2c3d4e"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_stub(*args):
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(STUB), "--port", str(port), *args],
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v2.0"
    deadline = time.monotonic() + 15
    while True:
        try:
            requests.get(url, timeout=1)
            return proc, url
        except requests.ConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise
            time.sleep(0.05)


@pytest.fixture
def stub():
    # a /28: gateway .1, pool .10 to .14 (five addresses)
    proc, url = start_stub("--subnet", "172.31.250.0/29")
    yield url
    proc.kill()
    proc.wait()


def create(url, **port):
    return requests.post(f"{url}/ports", json={"port": {"network_id": NET, **port}}, timeout=5)


def test_subnet_and_created_port_are_listed(stub):
    subnet = requests.get(f"{stub}/subnets", timeout=5).json()["subnets"][0]
    assert (subnet["cidr"], subnet["gateway_ip"]) == ("172.31.250.0/29", "172.31.250.1")
    r = create(stub, device_id="c1", tenant_id="p1")
    assert r.status_code == 201
    port = r.json()["port"]
    assert port["fixed_ips"][0]["ip_address"] == "172.31.250.2"
    listed = requests.get(f"{stub}/ports", params={"device_id": "c1"}, timeout=5).json()["ports"]
    assert [p["id"] for p in listed] == [port["id"]]
    assert requests.get(f"{stub}/ports/{port['id']}", timeout=5).json()["port"]["device_id"] == "c1"


def test_address_taken_twice_is_refused_and_pool_runs_out(stub):
    assert create(stub, fixed_ips=[{"ip_address": "172.31.250.3"}]).status_code == 201
    r = create(stub, fixed_ips=[{"ip_address": "172.31.250.3"}])
    assert r.status_code == 409
    assert r.json()["NeutronError"]["type"] == "IpAddressAlreadyAllocated"
    got = {create(stub).json()["port"]["fixed_ips"][0]["ip_address"] for _ in range(4)}
    assert got == {"172.31.250.2", "172.31.250.4", "172.31.250.5", "172.31.250.6"}
    r = create(stub)
    assert r.status_code == 409
    assert r.json()["NeutronError"]["type"] == "IpAddressGenerationFailure"


def test_update_and_delete(stub):
    port = create(stub).json()["port"]
    r = requests.put(f"{stub}/ports/{port['id']}", json={"port": {"device_id": "c2"}}, timeout=5)
    assert r.json()["port"]["device_id"] == "c2"
    assert requests.delete(f"{stub}/ports/{port['id']}", timeout=5).status_code == 204
    assert requests.get(f"{stub}/ports/{port['id']}", timeout=5).status_code == 404
    assert requests.delete(f"{stub}/ports/{port['id']}", timeout=5).status_code == 404
    # the released address is not handed out again at once
    assert create(stub).json()["port"]["fixed_ips"][0]["ip_address"] != \
        port["fixed_ips"][0]["ip_address"]


def test_without_subnet_ports_stay_read_only():
    proc, url = start_stub()
    try:
        assert create(url).status_code == 404
    finally:
        proc.kill()
        proc.wait()


def test_a_new_subnet_gets_its_own_gateway_not_the_local_subnets(stub):
    # DevStack's public network made through the API (the plugin's e2e test):
    # Neutron's default gateway is the new subnet's first address
    net = requests.post(f"{stub}/networks", json={"network": {"name": "public"}},
                        timeout=5).json()["network"]
    r = requests.post(f"{stub}/subnets", json={"subnet": {
        "network_id": net["id"], "cidr": "172.24.4.0/24"}}, timeout=5)
    assert r.status_code == 201
    assert r.json()["subnet"]["gateway_ip"] == "172.24.4.1"
