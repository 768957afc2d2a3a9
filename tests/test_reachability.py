"""Reaching the server: floating IPs (Neutron) and exposed ports (Zun).

Neutron answers with the upstream API reference samples
(``fixtures/neutron-api-samples``, see ``fixtures/README.md``); Zun and Keystone
with the recorded exchanges.  Values changed in memory are named where changed.
"""

import asyncio
import re
import threading

import pytest
import requests
from jupyterhub.spawner import SpawnException
from traitlets import TraitError

from magnum_spawner.zun import objects

from .fake_neutron import EXTERNAL_NET, FIPS, JSON, FakeNeutron
from .fake_zun import LifecycleZun
from .helpers import make_spawner
from .recorded import CONTAINER_UUID, CREATE, DELETE, LIST_BY_NAME, PROJECT, SHOW, sample, status
CREATED = sample("neutron-api-samples/floatingips/floatingip-create-response.json")["floatingip"]
PORT = CREATED["port_id"]
DESCRIPTION = "magnum-spawner hub=jupyterhub container=jupyter-alice"  # the mark
FLOATING = {"server_access": "floating_ip", "floating_ip_network": "public"}


def on_neutron_port(body):
    """The recorded container, on the Neutron port of the sample floating IP.

    (The local cloud's driver reports ``fake-port``; Zun's Docker driver reports
    the port's uuid, as in Zun's own ``container-show-resp.json``.)
    """
    status("Running")(body)
    for entries in body["addresses"].values():
        for entry in entries:
            entry["port"] = PORT
            entry["addr"] = CREATED["fixed_ip_address"]


def runs_on_a_port(cloud):
    """A start: no earlier container, the new one Running on ``PORT``; Neutron's IPs."""
    cloud.reply("GET", LIST_BY_NAME, "zun-containers-list-empty")
    cloud.reply("POST", CREATE, "zun-container-create-run")
    cloud.reply("GET", SHOW, "zun-container-show-running", change=on_neutron_port)
    return FakeNeutron().install(cloud)


def deletes_the_container(cloud, started=False):
    """The container's delete; ``started``: shown Running once before (start)."""
    cloud.reply("DELETE", DELETE, "zun-container-delete-stop-true")
    shows = [("zun-container-show-running", on_neutron_port)] if started else []
    cloud.replies("GET", SHOW, *shows, "zun-container-show-after-delete")


def order(cloud):
    """The (method, path) of every Neutron and Zun call, in order."""
    return [
        (r.method, r.path) for r in cloud.m.request_history
        if r.port in (9696, 9517) and r.path not in ("/", "/v1", "/v1/")
    ]


async def test_a_floating_ip_on_the_containers_port_is_the_servers_url(cloud):
    neutron = runs_on_a_port(cloud)
    spawner = make_spawner(config=FLOATING)
    url = await spawner.start()
    (ip,) = neutron.ips.values()
    assert url == f"http://{ip['floating_ip_address']}:8888"
    (sent,) = cloud.requests("POST", "floatingips")
    sent = sent.json()["floatingip"]
    assert (sent["floating_network_id"], sent["port_id"]) == (EXTERNAL_NET, PORT)
    # the hub's mark, and this association's own token
    assert re.fullmatch(DESCRIPTION + r" ip=[0-9a-f]{12}", sent["description"])
    # only after the container is Running (its port exists and is bound)
    calls = order(cloud)
    assert calls.index(("POST", "/v2.0/floatingips")) > calls.index(
        ("GET", f"/v1/containers/{CONTAINER_UUID}"))
    state = spawner.get_state()
    assert (state["floating_ip_id"], state["floating_ip_address"]) == (
        ip["id"], ip["floating_ip_address"])
    # the address is the log's, not the spawn page's
    assert not [e for e in spawner._events if ip["floating_ip_address"] in e["message"]]


async def test_an_earlier_spawns_leaked_ip_is_released_before_the_new_one_is_made(cloud):
    neutron = runs_on_a_port(cloud)
    # the hub died after associating an IP and before saving it: the IP stayed
    # (one from before association tokens, one with a token)
    old = neutron.add(DESCRIPTION)
    older = neutron.add(DESCRIPTION + " ip=0123456789ab")
    spawner = make_spawner(config=FLOATING)
    await spawner.start()
    assert old not in neutron.ips and older not in neutron.ips
    calls = order(cloud)
    assert calls.index(("DELETE", f"/v2.0/floatingips/{old}")) < calls.index(
        ("POST", "/v2.0/floatingips"))
    assert list(neutron.ips) == [spawner.floating_ip_id]


async def test_stop_releases_the_floating_ip_before_deleting_the_container(cloud):
    neutron = FakeNeutron().install(cloud)
    ours = neutron.add(DESCRIPTION + " ip=0123456789ab", port_id=PORT)
    deletes_the_container(cloud)
    spawner = make_spawner(config=FLOATING)
    spawner.load_state({"container_id": CONTAINER_UUID, "container_name": "jupyter-alice",
                        "floating_ip_id": ours, "floating_ip_address": "172.24.4.1"})
    await spawner.stop()
    calls = order(cloud)
    # the port (and with it the IP's association) goes with the container
    assert calls.index(("DELETE", f"/v2.0/floatingips/{ours}")) < calls.index(
        ("DELETE", f"/v1/containers/{CONTAINER_UUID}"))
    assert neutron.ips == {}
    assert "floating_ip_id" not in spawner.get_state()


async def test_a_floating_ip_the_state_lost_is_still_found_by_its_mark(cloud):
    neutron = FakeNeutron().install(cloud)
    # the IP's container is long gone: Neutron shows it with no port
    lost = neutron.add(DESCRIPTION + " ip=0123456789ab")
    # look-alikes the hub did not make for this server: all stay
    others = [
        neutron.add("magnum-spawner hub=jupyterhub container=jupyter-alice2 ip=0123456789ab"),
        neutron.add("magnum-spawner hub=other container=jupyter-alice"),
        neutron.add(DESCRIPTION + " (kept by the admin)"),
        neutron.add("for test"),
    ]
    cloud.reply("GET", LIST_BY_NAME, "zun-containers-list-empty")
    spawner = make_spawner(config=FLOATING)
    await spawner.stop()
    assert lost not in neutron.ips
    assert sorted(neutron.ips) == sorted(others)
    # only the hub's own project is listed (an admin's token sees every project's)
    (listed,) = cloud.requests("GET", "floatingips")
    assert listed.qs == {"project_id": [PROJECT]}


async def test_a_retried_start_reuses_the_ip_already_on_the_port(cloud):
    neutron = runs_on_a_port(cloud)
    ours = neutron.add(DESCRIPTION + " ip=0123456789ab", port_id=PORT)
    spawner = make_spawner(config=FLOATING)
    cloud.m.get(re.compile(r"floatingips\?project_id"), json={"floatingips": []})
    assert await spawner.start() == f"http://{neutron.ips[ours]['floating_ip_address']}:8888"
    assert cloud.requests("POST", "floatingips") == []


async def test_an_administrators_ip_on_the_port_is_used_and_never_released(cloud, caplog):
    neutron = runs_on_a_port(cloud)
    spawner = make_spawner(config=FLOATING)
    hers = neutron.add("the admin's address for alice's demo")

    def associate_hers(request, context):
        # the administrator puts her IP on the new container's port
        neutron.ips[hers]["port_id"] = PORT
        context.status_code = 200
        return {"floatingips": [neutron.ips[hers]]}

    cloud.m.get(f"{FIPS}?port_id={PORT}", json=associate_hers)
    assert await spawner.start() == f"http://{neutron.ips[hers]['floating_ip_address']}:8888"
    assert cloud.requests("POST", "floatingips") == []
    assert "not made by the hub" in caplog.text
    deletes_the_container(cloud)
    await spawner.stop()
    assert hers in neutron.ips
    assert cloud.requests("DELETE", "floatingips") == []


async def test_neutrons_refusal_fails_the_start_with_its_reason_and_leaves_nothing(cloud):
    neutron = runs_on_a_port(cloud)
    message = (f"External network {EXTERNAL_NET} is not reachable from subnet "
               f"a3162b3e-2f02-432e-a18c-78fe2774d026.  Therefore, cannot associate "
               f"Port {PORT} with a Floating IP.")  # neutron_lib ExternalGatewayForFloatingIPNotFound
    cloud.m.post(FIPS, status_code=404, headers=JSON,
                 json={"NeutronError": {"type": "ExternalGatewayForFloatingIPNotFound",
                                        "message": message, "detail": ""}})
    deletes_the_container(cloud, started=True)
    spawner = make_spawner(config=FLOATING)
    with pytest.raises(SpawnException) as e:
        await spawner.start()
    assert e.value.message == f"Could not give the server a floating IP: {message}"
    assert len(cloud.requests("DELETE", CONTAINER_UUID)) == 1
    assert spawner.container_id is None
    assert neutron.ips == {}


async def test_a_create_with_no_answer_releases_what_neutron_may_have_made(cloud):
    neutron = runs_on_a_port(cloud)

    def made_then_reset(request, context):
        # Neutron did make it before the connection broke
        neutron.add(request.json()["floatingip"]["description"], PORT)
        raise requests.exceptions.ConnectionError("connection reset")

    cloud.m.post(FIPS, text=made_then_reset)
    deletes_the_container(cloud, started=True)
    spawner = make_spawner(config=FLOATING)
    with pytest.raises(SpawnException):
        await spawner.start()
    assert neutron.ips == {}
    calls = order(cloud)
    assert calls.index(("DELETE", "/v2.0/floatingips/f1f1f1f1-0000-4000-8000-000000000001")
                       ) < calls.index(("DELETE", f"/v1/containers/{CONTAINER_UUID}"))


def slow_first_ip_create(spawner, monkeypatch):
    """Neutron takes its time over the first floating IP create: it makes the IP
    when ``answer`` is set.  (The wait is in the request's thread: requests-mock
    answers one request at a time, and the other calls must go on meanwhile.)"""
    network = spawner.neutron.conn.network
    create_ip = network.create_ip
    sent, answer = threading.Event(), threading.Event()

    def slow(**attrs):
        if not sent.is_set():
            sent.set()
            answer.wait(10)
        return create_ip(**attrs)

    monkeypatch.setattr(network, "create_ip", slow)
    return sent, answer


async def cancel_during_the_ip_create(spawner, monkeypatch):
    sent, answer = slow_first_ip_create(spawner, monkeypatch)
    start = asyncio.ensure_future(spawner.start())
    while not sent.is_set():
        await asyncio.sleep(0.01)
    start.cancel()  # JupyterHub's start timeout
    with pytest.raises(SpawnException, match="did not start within"):
        await start
    return answer


async def released(cloud, count):
    for _ in range(500):
        if len(cloud.requests("DELETE", "floatingips")) >= count:
            return
        await asyncio.sleep(0.01)


async def test_a_start_cancelled_during_the_create_releases_the_ip_when_it_arrives(
        cloud, monkeypatch):
    neutron = runs_on_a_port(cloud)
    spawner = make_spawner(config=FLOATING)
    answer = await cancel_during_the_ip_create(spawner, monkeypatch)
    assert cloud.requests("DELETE", "floatingips") == []
    answer.set()  # Neutron answers after all: the IP exists now
    await released(cloud, 1)
    assert neutron.ips == {}


async def test_a_late_answer_of_a_cancelled_start_releases_only_its_own_ip(cloud, monkeypatch):
    """Start #1 is cancelled while Neutron is slow; JupyterHub stops the server;
    start #2 succeeds with its own IP; then Neutron answers #1.  #2's IP, with
    the same server's mark, stays: the running server remains reachable."""
    neutron = runs_on_a_port(cloud)
    first = make_spawner(config=FLOATING)
    slow = await cancel_during_the_ip_create(first, monkeypatch)
    deletes_the_container(cloud)
    await first.stop()
    cloud.reply("GET", SHOW, "zun-container-show-running", change=on_neutron_port)
    second = make_spawner(config=FLOATING)
    url = await second.start()
    mine = second.floating_ip_id
    slow.set()  # Neutron answers #1 at last
    await released(cloud, 1)
    await asyncio.sleep(0.2)
    assert list(neutron.ips) == [mine]
    assert url == f"http://{neutron.ips[mine]['floating_ip_address']}:8888"
    assert len(cloud.requests("DELETE", "floatingips")) == 1


async def test_with_fixed_ips_no_neutron_call_is_made(cloud):
    cloud.reply("GET", LIST_BY_NAME, "zun-containers-list-empty")
    cloud.reply("POST", CREATE, "zun-container-create-run")
    deletes_the_container(cloud, started=True)
    spawner = make_spawner()
    assert await spawner.start() == "http://10.0.0.3:8888"
    await spawner.stop()
    assert [r for r in cloud.m.request_history if r.port == 9696] == []


async def test_exposed_ports_are_sent_in_zuns_shape(cloud):
    cloud.reply("GET", LIST_BY_NAME, "zun-containers-list-empty")
    cloud.reply("POST", CREATE, "zun-container-create-run")
    cloud.reply("GET", SHOW, "zun-container-show-running", change=status("Running"))
    spawner = make_spawner(config={"exposed_ports": [8888, "9000/udp"]})
    await spawner.start()
    body = cloud.requests("POST", "containers")[0].json()
    # zun.common.utils.build_exposed_ports: "<port>/<protocol>" keys (1.24+)
    assert body["exposed_ports"] == {"8888/tcp": {}, "9000/udp": {}}
    assert "security_groups" not in body


@pytest.mark.parametrize("ports", [["http"], [0], ["8888/sctp"], [70000]])
def test_bad_exposed_ports_are_refused_at_configuration(ports):
    with pytest.raises(TraitError, match="exposed port"):
        make_spawner(config={"exposed_ports": ports})


async def test_exposed_ports_with_security_groups_is_refused_before_any_create(cloud):
    cloud.reply("GET", LIST_BY_NAME, "zun-containers-list-empty")
    spawner = make_spawner(config={"exposed_ports": [8888], "security_groups": ["web"]})
    with pytest.raises(SpawnException) as e:
        await spawner.start()
    assert "misconfigured" in e.value.message
    assert "not both" in e.value.log_message
    assert cloud.requests("POST", "containers") == []


def test_server_access_must_be_one_of_the_two():
    with pytest.raises(TraitError, match="fixed_ip"):
        make_spawner(config={"server_access": "public_ip"})


def test_the_port_is_read_from_the_chosen_network():
    container = {"addresses": {
        "net-a": [{"addr": "10.0.0.5", "version": 4, "port": "port-a"}],
        "net-b": [{"addr": "fd00::5", "version": 6, "port": "port-b6"},
                  {"addr": "10.1.0.5", "version": 4, "port": "port-b"}],
    }}
    assert objects.container_port(container, "net-b") == "port-b"
    assert objects.container_port(container) == "port-a"
    assert objects.container_port({"addresses": {}}) is None


async def test_a_hub_killed_after_the_association_leaves_no_ip_once_poll_removes_the_container(
        cloud, fast_janitor):
    """The hub was killed after the IP was associated and before start() returned:
    nothing was saved.  The restarted hub's poll removes the container, and with
    it the IP (not only at this server's next start)."""
    zun = LifecycleZun().install(cloud.m)
    neutron = FakeNeutron().install(cloud)
    uuid = zun.server("jupyter-alice", "Running")
    made = neutron.add(DESCRIPTION + " ip=0123456789ab", port_id=PORT)
    someone_elses = neutron.add("magnum-spawner hub=jupyterhub container=jupyter-bob ip=1")
    spawner = make_spawner(config=FLOATING)  # the restarted hub's: no state
    assert await spawner.poll() == 0
    for _ in range(250):
        if uuid not in zun.containers:
            break
        await asyncio.sleep(0.02)
    assert uuid not in zun.containers
    assert made not in neutron.ips
    assert someone_elses in neutron.ips
