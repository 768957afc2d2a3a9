"""Reaching the server: floating IPs (Neutron) and exposed ports (Zun).

Neutron answers with the upstream API reference samples
(``fixtures/neutron-api-samples``, see ``fixtures/README.md``); Zun and Keystone
with the recorded exchanges.  Values changed in memory are named where changed.
"""

import asyncio
import threading

import pytest
import requests
from jupyterhub.spawner import SpawnException
from traitlets import TraitError

from magnum_spawner.zun import objects

from .helpers import make_spawner
from .recorded import CONTAINER_UUID, CREATE, DELETE, LIST_BY_NAME, NEUTRON, SHOW, sample, status
FIPS = f"{NEUTRON}/v2.0/floatingips"

CREATED = sample("neutron-api-samples/floatingips/floatingip-create-response.json")["floatingip"]
PORT = CREATED["port_id"]
EXTERNAL_NET = CREATED["floating_network_id"]
FIP_ID = CREATED["id"]
FIP_ADDR = CREATED["floating_ip_address"]
DESCRIPTION = "magnum-spawner hub=jupyterhub container=jupyter-alice"
JSON = {"Content-Type": "application/json"}
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


def fips_list(*ours):
    """Neutron's list sample holding only ``ours`` (the sample's first entry)."""
    body = sample("neutron-api-samples/floatingips/floating-ips-list-response.json")
    first = body["floatingips"][0]
    body["floatingips"] = [dict(first, **change) for change in ours]
    return body


def external_network(cloud):
    """``public`` is looked up by id (404), then by name (the list sample, renamed)."""
    cloud.neutron_root()
    cloud.m.get(f"{NEUTRON}/v2.0/networks/public", status_code=404, headers=JSON, json={
        "NeutronError": {"type": "NetworkNotFound", "detail": "",
                         "message": "Network public could not be found."}})
    body = sample("neutron-api-samples/networks/networks-list-response.json")
    net = dict(body["networks"][0], name="public", id=EXTERNAL_NET)
    net["router:external"] = True
    cloud.m.get(f"{NEUTRON}/v2.0/networks?name=public", json={"networks": [net]})


def created_fip(description=DESCRIPTION):
    body = sample("neutron-api-samples/floatingips/floatingip-create-response.json")
    body["floatingip"]["description"] = description
    return body


def ours_once_posted(cloud):
    """List by description: empty until a floating IP create was sent, then ours."""
    def answer(request, context):
        posted = cloud.requests("POST", "floatingips")
        return fips_list({"description": DESCRIPTION}) if posted else fips_list()
    cloud.m.get(f"{FIPS}?description={DESCRIPTION}", json=answer)


def runs_on_a_port(cloud, earlier_ips=()):
    """A start: no earlier container; ``earlier_ips`` still carry our description."""
    cloud.m.get(f"{FIPS}?description={DESCRIPTION}", [
        {"json": fips_list(*earlier_ips)}, {"json": fips_list()}])
    cloud.reply("GET", LIST_BY_NAME, "zun-containers-list-empty")
    cloud.reply("POST", CREATE, "zun-container-create-run")
    cloud.reply("GET", SHOW, "zun-container-show-running", change=on_neutron_port)
    external_network(cloud)
    cloud.m.get(f"{FIPS}?port_id={PORT}", json=fips_list())


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
    runs_on_a_port(cloud)
    cloud.m.post(FIPS, status_code=201, json=created_fip())
    spawner = make_spawner(config=FLOATING)
    url = await spawner.start()
    assert url == f"http://{FIP_ADDR}:8888"
    (sent,) = cloud.requests("POST", "floatingips")
    assert sent.json() == {"floatingip": {
        "floating_network_id": EXTERNAL_NET, "port_id": PORT, "description": DESCRIPTION,
    }}
    # only after the container is Running (its port exists and is bound)
    calls = order(cloud)
    assert calls.index(("POST", "/v2.0/floatingips")) > calls.index(
        ("GET", f"/v1/containers/{CONTAINER_UUID}"))
    state = spawner.get_state()
    assert (state["floating_ip_id"], state["floating_ip_address"]) == (FIP_ID, FIP_ADDR)
    # the address is the log's, not the spawn page's
    assert not [e for e in spawner._events if FIP_ADDR in e["message"]]


async def test_an_earlier_spawns_leaked_ip_is_released_before_the_new_one_is_made(cloud):
    # the hub died after associating an IP and before saving it: the IP stayed
    old = {"id": "61cea855-49cb-4846-997d-801b70c71bdd", "description": DESCRIPTION,
           "port_id": None}
    runs_on_a_port(cloud, earlier_ips=[old])
    cloud.m.delete(f"{FIPS}/{old['id']}", status_code=204)
    cloud.m.post(FIPS, status_code=201, json=created_fip())
    spawner = make_spawner(config=FLOATING)
    assert await spawner.start() == f"http://{FIP_ADDR}:8888"
    calls = order(cloud)
    assert calls.index(("DELETE", f"/v2.0/floatingips/{old['id']}")) < calls.index(
        ("POST", "/v2.0/floatingips"))


async def test_stop_releases_the_floating_ip_before_deleting_the_container(cloud):
    cloud.neutron_root()
    cloud.m.get(f"{FIPS}?description={DESCRIPTION}",
                json=fips_list({"description": DESCRIPTION}))
    cloud.m.delete(f"{FIPS}/{FIP_ID}", status_code=204)
    deletes_the_container(cloud)
    spawner = make_spawner(config=FLOATING)
    spawner.load_state({"container_id": CONTAINER_UUID, "container_name": "jupyter-alice",
                        "floating_ip_id": FIP_ID, "floating_ip_address": FIP_ADDR})
    await spawner.stop()
    calls = order(cloud)
    # the port (and with it the IP's association) goes with the container
    assert calls.index(("DELETE", f"/v2.0/floatingips/{FIP_ID}")) < calls.index(
        ("DELETE", f"/v1/containers/{CONTAINER_UUID}"))
    assert "floating_ip_id" not in spawner.get_state()


async def test_a_floating_ip_the_state_lost_is_still_found_by_its_description(cloud):
    cloud.neutron_root()
    # the IP's container is long gone: Neutron shows it with no port
    cloud.m.get(f"{FIPS}?description={DESCRIPTION}",
                json=fips_list({"description": DESCRIPTION, "port_id": None}))
    cloud.m.delete(f"{FIPS}/{FIP_ID}", status_code=204)
    cloud.reply("GET", LIST_BY_NAME, "zun-containers-list-empty")
    spawner = make_spawner(config=FLOATING)
    await spawner.stop()
    assert len(cloud.requests("DELETE", f"floatingips/{FIP_ID}")) == 1


async def test_a_retried_start_reuses_the_ip_already_on_the_port(cloud):
    runs_on_a_port(cloud)
    cloud.m.get(f"{FIPS}?port_id={PORT}", json=fips_list({"description": DESCRIPTION}))
    spawner = make_spawner(config=FLOATING)
    assert await spawner.start() == f"http://{FIP_ADDR}:8888"
    assert cloud.requests("POST", "floatingips") == []


async def test_neutrons_refusal_fails_the_start_with_its_reason_and_leaves_nothing(cloud):
    runs_on_a_port(cloud)
    message = (f"External network {EXTERNAL_NET} is not reachable from subnet "
               f"a3162b3e-2f02-432e-a18c-78fe2774d026.  Therefore, cannot associate "
               f"Port {PORT} with a Floating IP.")  # neutron_lib ExternalGatewayForFloatingIPNotFound
    cloud.m.post(FIPS, status_code=404, headers=JSON,
                 json={"NeutronError": {"type": "ExternalGatewayForFloatingIPNotFound",
                                        "message": message, "detail": ""}})
    cloud.m.get(f"{FIPS}?description={DESCRIPTION}", json=fips_list())
    deletes_the_container(cloud, started=True)
    spawner = make_spawner(config=FLOATING)
    with pytest.raises(SpawnException) as e:
        await spawner.start()
    assert e.value.message == f"Could not give the server a floating IP: {message}"
    assert len(cloud.requests("DELETE", CONTAINER_UUID)) == 1
    assert spawner.container_id is None


async def test_a_create_with_no_answer_releases_what_neutron_may_have_made(cloud):
    runs_on_a_port(cloud)
    cloud.m.post(FIPS, exc=requests.exceptions.ConnectionError("connection reset"))
    ours_once_posted(cloud)  # Neutron did make it before the connection broke
    cloud.m.delete(f"{FIPS}/{FIP_ID}", status_code=204)
    deletes_the_container(cloud, started=True)
    spawner = make_spawner(config=FLOATING)
    with pytest.raises(SpawnException):
        await spawner.start()
    assert len(cloud.requests("DELETE", f"floatingips/{FIP_ID}")) == 1
    calls = order(cloud)
    assert calls.index(("DELETE", f"/v2.0/floatingips/{FIP_ID}")) < calls.index(
        ("DELETE", f"/v1/containers/{CONTAINER_UUID}"))


async def test_a_start_cancelled_during_the_create_releases_the_ip_when_it_arrives(cloud):
    runs_on_a_port(cloud)
    posted, answer = threading.Event(), threading.Event()

    def slow_create(request, context):
        posted.set()
        answer.wait(10)
        context.status_code = 201
        return created_fip()

    cloud.m.post(FIPS, json=slow_create)
    ours_once_posted(cloud)
    cloud.m.delete(f"{FIPS}/{FIP_ID}", status_code=204)
    spawner = make_spawner(config=FLOATING)
    start = asyncio.ensure_future(spawner.start())
    while not posted.is_set():
        await asyncio.sleep(0.01)
    start.cancel()  # JupyterHub's start timeout
    with pytest.raises(asyncio.CancelledError):
        await start
    assert cloud.requests("DELETE", "floatingips") == []
    answer.set()  # Neutron answers after all: the IP exists now
    for _ in range(500):
        if cloud.requests("DELETE", f"floatingips/{FIP_ID}"):
            break
        await asyncio.sleep(0.01)
    assert len(cloud.requests("DELETE", f"floatingips/{FIP_ID}")) == 1


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
