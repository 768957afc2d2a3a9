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


@pytest.fixture(scope="module")
def api_stub():
    # one stub for the tests below, which each make their own networks
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


def post(url, coll, **doc):
    single = {"security-groups": "security_group", "security-group-rules":
              "security_group_rule"}.get(coll, coll[:-1])
    return requests.post(f"{url}/{coll}", json={single: doc}, timeout=5)


def test_a_subnet_made_without_gateway_has_none(api_stub):
    # zun-tempest-plugin's test_run_container_with_no_gateway_subnet
    net = post(api_stub, "networks", name="n").json()["network"]
    subnet = post(api_stub, "subnets", network_id=net["id"], cidr="10.1.0.0/24",
                  gateway_ip=None).json()["subnet"]
    assert subnet["gateway_ip"] is None
    assert subnet["allocation_pools"] == [{"start": "10.1.0.1", "end": "10.1.0.254"}]


def test_ports_on_a_project_network_get_its_v4_and_v6_addresses(api_stub):
    # test_run_container_with_port_in_dual_net: subnets from subnet pools
    net = post(api_stub, "networks", name="dual", project_id="p1").json()["network"]
    pools = [post(api_stub, "subnetpools", name=f"pool{v}", prefixes=[prefix],
                  min_prefixlen=length).json()["subnetpool"]
             for v, prefix, length in ((4, "10.11.12.0/24", "28"), (6, "2001:db8:3::/48", "64"))]
    v4, v6 = (post(api_stub, "subnets", network_id=net["id"], subnetpool_id=pool["id"],
                   ip_version=v, project_id="p1").json()["subnet"]
              for v, pool in zip((4, 6), pools))
    assert (v4["cidr"], v4["gateway_ip"]) == ("10.11.12.0/28", "10.11.12.1")
    assert v6["cidr"] == "2001:db8:3::/64"
    port = create(api_stub, network_id=net["id"]).json()["port"]
    assert [(ip["subnet_id"], ip["ip_address"]) for ip in port["fixed_ips"]] == [
        (v4["id"], "10.11.12.2"), (v6["id"], "2001:db8:3::2")]
    port = create(api_stub, network_id=net["id"],
                  fixed_ips=[{"subnet_id": v4["id"]}]).json()["port"]
    assert [ip["ip_address"] for ip in port["fixed_ips"]] == ["10.11.12.3"]
    # the next subnet from the pool is the next free prefix
    net2 = post(api_stub, "networks", name="n2").json()["network"]
    assert post(api_stub, "subnets", network_id=net2["id"], subnetpool_id=pools[0]["id"]
                ).json()["subnet"]["cidr"] == "10.11.12.16/28"
    # a network's ports go with it
    assert requests.delete(f"{api_stub}/networks/{net['id']}", timeout=5).status_code == 204
    assert requests.get(f"{api_stub}/ports", params={"network_id": net["id"]},
                        timeout=5).json()["ports"] == []


def test_an_overlapping_subnet_is_refused(api_stub):
    # what tempest's dynamic credentials expect to step to the next CIDR
    net = post(api_stub, "networks", name="n").json()["network"]
    assert post(api_stub, "subnets", network_id=net["id"], cidr="10.100.0.0/28").status_code == 201
    r = post(api_stub, "subnets", network_id=net["id"], cidr="10.100.0.0/28")
    assert r.status_code == 400
    assert "overlaps with another subnet" in r.json()["NeutronError"]["message"]
    # nor the local subnet's range
    assert post(api_stub, "subnets", network_id=net["id"], cidr="172.31.250.0/24").status_code == 400


def test_a_project_sees_its_own_network_and_the_shared_one(api_stub):
    # Zun's get_available_network: ?tenant_id=<project>&shared=False first
    mine = post(api_stub, "networks", name="mine", project_id="p1").json()["network"]
    post(api_stub, "networks", name="theirs", project_id="p2")
    found = requests.get(f"{api_stub}/networks", params={"tenant_id": "p1", "shared": "False"},
                         timeout=5).json()["networks"]
    assert [n["id"] for n in found] == [mine["id"]]
    found = requests.get(f"{api_stub}/networks", params={"tenant_id": "p3", "shared": "True"},
                         timeout=5).json()["networks"]
    assert [n["id"] for n in found] == [NET]


def test_security_groups_and_rules_are_kept(api_stub):
    group = post(api_stub, "security-groups", name="web", project_id="p1").json()["security_group"]
    rule = post(api_stub, "security-group-rules", security_group_id=group["id"],
                direction="ingress", protocol="tcp", port_range_min=80,
                port_range_max=80).json()["security_group_rule"]
    got = requests.get(f"{api_stub}/security-groups/{group['id']}",
                       timeout=5).json()["security_group"]
    assert got["name"] == "web"
    assert rule["id"] in [r["id"] for r in got["security_group_rules"]]
    found = requests.get(f"{api_stub}/security-groups", params={"name": "web", "tenant_id": "p1"},
                         timeout=5).json()["security_groups"]
    assert [g["id"] for g in found] == [group["id"]]
    assert requests.delete(f"{api_stub}/security-groups/{group['id']}", timeout=5).status_code == 204
    assert requests.get(f"{api_stub}/security-groups/{group['id']}", timeout=5).status_code == 404


def test_a_port_bound_to_a_host_and_unbound_again(api_stub):
    # test_run_container_with_port: Zun binds a port made beforehand, and
    # unbinds it (host None) when the container goes; Zun takes only a port
    # that is not ACTIVE
    port = create(api_stub).json()["port"]
    assert (port["binding:host_id"], port["binding:vif_type"], port["status"]) == (
        "", "unbound", "DOWN")
    bound = requests.put(f"{api_stub}/ports/{port['id']}", json={"port": {
        "device_id": "c1", "device_owner": "compute:kuryr", "binding:host_id": "compute-1"}},
        timeout=5).json()["port"]
    assert bound["binding:vif_type"] not in ("unbound", "binding_failed")
    assert bound["status"] == "ACTIVE"
    unbound = requests.put(f"{api_stub}/ports/{port['id']}", json={"port": {
        "device_id": "", "device_owner": "", "binding:host_id": None}},
        timeout=5).json()["port"]
    assert (unbound["binding:host_id"], unbound["binding:vif_type"], unbound["status"]) == (
        "", "unbound", "DOWN")


def test_a_projects_default_security_group_is_its_own(api_stub):
    # tempest deletes each test project's default group with the project; the
    # stub's own (every port's default) stays
    query = {"name": "default", "project_id": "p1"}
    (group,) = requests.get(f"{api_stub}/security-groups", params=query,
                            timeout=5).json()["security_groups"]
    assert group["project_id"] == "p1"
    assert requests.delete(f"{api_stub}/security-groups/{group['id']}", timeout=5).status_code == 204
    port = create(api_stub).json()["port"]
    (default,) = port["security_groups"]
    assert requests.get(f"{api_stub}/security-groups/{default}",
                        timeout=5).json()["security_group"]["name"] == "default"
