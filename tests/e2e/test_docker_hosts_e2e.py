"""The Docker path of the local cloud: upstream Zun's
docker driver on two compute hosts in two zones, real pulls from the local
registry, and what a user sees when the image cannot be had.

Collected only on that path (tests/e2e/conftest.py deselects them otherwise).
"""

import json
import subprocess
import time
import uuid

import pytest

from .conftest import CLOUD_DIR, IMAGE, LOCAL_CLOUD, LocalCloud, wait_for

pytestmark = [pytest.mark.localcloud, pytest.mark.docker_path]

DOCKER_CLI = "/usr/bin/docker"


def docker_cloud():
    return json.loads((CLOUD_DIR / "docker.json").read_text())


def docker(host, *args, check=True):
    sock = f"unix://{docker_cloud()['docker_dir']}/{host}/docker.sock"
    return subprocess.run([DOCKER_CLI, "-H", sock, *args], check=check,
                          capture_output=True, text=True, timeout=120)


def host_of(container_uuid):
    """The host whose Docker daemon runs the container (Zun names it zun-<uuid>)."""
    for host in docker_cloud()["hosts"]:
        if docker(host, "ps", "-aq", "--filter", f"name=zun-{container_uuid}").stdout.strip():
            return host
    return None


def progress_messages(hub, user, timeout=240):
    """Every message of the spawn page's progress stream, until ready or failed."""
    r = hub.api("GET", f"/users/{user}/server/progress", stream=True)
    messages, deadline = [], time.monotonic() + timeout
    for line in r.iter_lines(decode_unicode=True):
        if line and line.startswith("data:"):
            event = json.loads(line[5:])
            messages.append(event.get("message") or "")
            if event.get("ready") or event.get("failed"):
                return messages, event
        if time.monotonic() > deadline:
            break
    raise AssertionError(f"no end of the progress stream in {timeout} s: {messages}")


def test_two_hosts_in_two_zones_and_a_zone_decides_the_host(local_cloud):
    zun = local_cloud.zunclient
    zones = docker_cloud()["hosts"]
    assert sorted(zones.values()) == ["zone-1", "zone-2"]
    made = []
    try:
        for host, zone in zones.items():
            c = zun.containers.run(name=f"az-{uuid.uuid4().hex[:6]}", image=IMAGE,
                                   command=["sleep", "300"], availability_zone=zone)
            made.append(c.uuid)
            wait_for(lambda: (local_cloud.container(c.uuid) or {}).get("status") == "Running",
                     180, 1, f"a container in {zone} to run")
            # the daemon of the zone's host runs it, with the limits Zun asked for
            assert host_of(c.uuid) == host
    finally:
        for cid in made:
            local_cloud.delete_container(cid)


def test_a_start_on_an_empty_host_pulls_the_image_and_says_so(hub_factory):
    # a pull, a new home volume's mkfs and the server's start on a busy machine
    hub = hub_factory("c.ZunSpawner.start_timeout = 300\n")
    for host in docker_cloud()["hosts"]:
        docker(host, "rmi", "-f", IMAGE, check=False)
    r = hub.request_start("puller")
    assert r.status_code in (201, 202), r.text
    messages, last = progress_messages(hub, "puller", timeout=330)
    assert last.get("ready"), messages
    # Zun's task_state image_pulling, or container_creating (pull and create)
    assert any(m.startswith("Downloading the software image") for m in messages), messages
    container = hub.cloud.containers(**{"hub.jupyter.org/user": "puller"})[0]
    # the image is now on that host, pulled from the local registry
    host = host_of(container["uuid"])
    assert docker(host, "image", "inspect", IMAGE).returncode == 0
    hub.stop_server("puller")


@pytest.mark.parametrize("case", ["missing-image", "registry-down"])
def test_an_image_that_cannot_be_had_is_a_clear_sentence_and_leaves_nothing(
        hub_factory, local_cloud, case):
    if case == "missing-image":
        image = IMAGE.rsplit(":", 1)[0] + ":no-such-tag"
    else:  # nothing listens on this registry port
        image = "127.0.0.1:5059/" + IMAGE.split("/", 1)[1]
    h = hub_factory(f"c.ZunSpawner.image = {image!r}\nc.ZunSpawner.start_timeout = 180\n")
    before = {c["uuid"] for c in local_cloud.containers()}
    r = h.request_start("nopull")
    if r.status_code in (201, 202):
        messages, last = progress_messages(h, "nopull")
        assert last.get("failed"), messages
        text = last.get("message", "")
    else:  # the image refused within the hub's first seconds: the answer says why
        text = r.json()["message"]
    # Zun's docker image driver's own reason, passed on by the spawner.  For a
    # missing tag Zun 18 garbles it ("unsupported format character ..."; its
    # message is %-formatted with the registry's answer in it): see
    # devstack/README.md, "Zun 18 facts found on this path".
    assert "jupyter-nopull is Error" in text and "Cannot download image" in text, text
    # nothing of this spawn is left in the cloud
    wait_for(lambda: {c["uuid"] for c in local_cloud.containers()} <= before, 60, 1,
             "the failed container to be removed")
    print(f"{case}: {text}")



def compute(action, host):
    """Stop or start one host's zun-compute only (its Docker daemon and
    containers stay up, as when the service dies on a real compute host)."""
    subprocess.run([str(LOCAL_CLOUD), "compute", action, host], check=True, timeout=60)


def test_a_lost_compute_host_keeps_its_servers_and_new_starts_go_elsewhere(
        hub_factory, local_cloud, monkeypatch):
    # What Zun 18 really does when a zun-compute stops (docs/operator-guide.md,
    # "A lost compute host"): it never shows the containers Unknown; they keep
    # their last status.  An operator marks the service down (force_down), as
    # Zun's own docs say to, and Zun's scheduler then leaves the host out.
    # (the unit tests' fixture points OS_CLIENT_CONFIG_FILE at an empty file)
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(local_cloud.clouds_yaml))
    admin = LocalCloud(local_cloud.clouds_yaml, "local-admin").zunclient
    # the hub gives up waiting for a refused delete after 10 s (not 120)
    hub = hub_factory("c.ZunSpawner.delete_timeout = 10\n")
    hub.start_server("ludo")
    lost = local_cloud.containers(**{"hub.jupyter.org/hub": hub.hub_id})[0]
    lost_host = host_of(lost["uuid"])
    other = next(h for h in docker_cloud()["hosts"] if h != lost_host)
    compute("stop", lost_host)
    try:
        admin.services.force_down(lost_host, "zun-compute", True)
        services = {s.host: s.state for s in admin.services.list()
                    if s.binary == "zun-compute"}
        assert services == {lost_host: "down", other: "up"}, services
        # Zun keeps showing the container's last status: Running, not Unknown
        t0 = time.monotonic()
        assert local_cloud.container(lost["uuid"])["status"] == "Running"
        assert time.monotonic() - t0 < 10  # no RPC to the lost host once it is down
        # Docker on that host still runs it: the hub keeps the server, and it answers
        time.sleep(6)  # a few of the hub's polls (poll_interval 5, hub poll 2)
        assert (hub.server("ludo") or {}).get("ready"), hub.log_tail()
        assert hub.server_api("GET", "ludo", "api/status").status_code == 200
        # a new start goes to the host that reports
        hub.start_server("nadia")
        placed = local_cloud.containers(**{"hub.jupyter.org/user": "nadia",
                                           "hub.jupyter.org/hub": hub.hub_id})[0]
        assert host_of(placed["uuid"]) == other
        # stopping the lost host's server: the hub lets it go at once, but Zun
        # refuses the delete ("host is not up", a 500) until the host is back
        hub.stop_server("ludo")
        time.sleep(5)
        assert local_cloud.container(lost["uuid"]) is not None
    finally:
        compute("start", lost_host)
        admin.services.force_down(lost_host, "zun-compute", False)
    # back: the spawner's clean-up removes the container (its retries back off
    # to a minute while Zun refuses)
    wait_for(lambda: local_cloud.container(lost["uuid"]) is None, 180, 2,
             "the lost host's container to be removed once the host is back")
    hub.stop_server("nadia")
