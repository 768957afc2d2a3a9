"""Zun's container API behaves as the spawner relies on, where a hub or a user
notices (written to hold the retired process driver to Zun's Docker driver; the
local cloud now runs that driver itself).

Each test talks to the real Zun API of the local cloud (``local_cloud``
fixture) with the hub's project: a container created without a command runs
the image's default command; an image that does not exist ends in Error with
Zun's reason; a stop without a timeout waits Docker's 10 s for
a pid 1 that ignores SIGTERM; a container reads its own memory limit; top
lists ``ps -ef``'s columns; stats reports CPU and I/O; put_archive/get_archive
move a tar in and out.  Run with ``make e2e`` or
``pytest -m localcloud tests/e2e/test_driver_parity_e2e.py``.
"""

import base64
import io
import tarfile
import time
import uuid

import pytest
from keystoneauth1 import adapter

from .conftest import IMAGE, wait_for

pytestmark = pytest.mark.localcloud

HEADERS = {"OpenStack-API-Version": "container 1.40"}


@pytest.fixture
def zun(local_cloud):
    # the hub project's keystoneauth session (openstacksdk's), not the spawner's
    region = local_cloud.region
    api = adapter.Adapter(session=region.get_session(), service_type="container",
                          region_name=region.get_region_name("container"), interface="public")
    made = []

    def request(method, path, **kw):
        r = api.request(path, method, headers=HEADERS, raise_exc=False, **kw)
        if method == "POST" and path.startswith("/containers?") and r.status_code == 202:
            made.append(r.json()["uuid"])
        return r

    yield request
    for cid in made:
        request("DELETE", f"/containers/{cid}?stop=true")
    for cid in made:
        wait_for(lambda: request("GET", f"/containers/{cid}").status_code == 404, 60,
                 what=f"container {cid} deleted")


def run(zun, memory=None, **body):
    body = dict(name=f"parity-{uuid.uuid4().hex[:8]}", image=IMAGE, **body)
    if memory:
        body["memory"] = str(memory)
    r = zun("POST", "/containers?run=true", json=body)
    assert r.status_code == 202, r.text
    cid = r.json()["uuid"]
    wait_for(lambda: zun("GET", f"/containers/{cid}").json()["status"] in ("Running", "Error"),
             60, what="Running")
    container = zun("GET", f"/containers/{cid}").json()
    assert container["status"] == "Running", container["status_reason"]
    return container


def execute(zun, cid, command):
    r = zun("POST", f"/containers/{cid}/execute?run=true", json={"command": command})
    assert r.status_code == 200, r.text
    return r.json()


def test_a_container_without_a_command_runs_the_images_default_command(zun):
    container = run(zun)
    assert container["command"][:2] == ["jupyter", "lab"]
    # (right after the start the image's command may still be exec'ing its entry point)
    seen = {}

    def jupyter_runs():
        seen["top"] = zun("GET", f"/containers/{container['uuid']}/top").json()
        # Zun's top cuts the command to 32 characters: JupyterLab's is the
        # notebook venv's interpreter running the jupyter script
        return any("jupyter" in row[-1] or row[-1].startswith("/opt/notebook/bin/python /opt/no")
                   for row in seen["top"]["Processes"])

    try:
        wait_for(jupyter_runs, 60, 2, "JupyterLab in the container's processes")
    except AssertionError:
        raise AssertionError("processes: %r" % (seen["top"]["Processes"],)) from None


def test_an_unknown_image_ends_in_error_with_a_reason(zun):
    r = zun("POST", "/containers?run=true",
            json={"name": f"parity-{uuid.uuid4().hex[:8]}", "image": "no/such-image",
                  "command": ["true"]})
    assert r.status_code == 202, r.text
    cid = r.json()["uuid"]
    wait_for(lambda: zun("GET", f"/containers/{cid}").json()["status"] == "Error", 30,
             what="Error")
    assert zun("GET", f"/containers/{cid}").json()["status_reason"]


def test_stop_without_a_timeout_waits_dockers_10_s(zun):
    # pid 1 of a pid namespace without a SIGTERM handler ignores SIGTERM, so
    # the stop waits its timeout and then kills (Docker's default: 10 s).
    container = run(zun, command=["sleep", "600"])
    t0 = time.monotonic()
    r = zun("POST", f"/containers/{container['uuid']}/stop")
    assert r.status_code == 202, r.text
    wait_for(lambda: zun("GET", f"/containers/{container['uuid']}").json()["status"]
             == "Stopped", 90, interval=0.2, what="Stopped")
    assert 9 <= time.monotonic() - t0 < 30


def test_a_container_sees_its_own_memory_limit(zun):
    container = run(zun, memory=256, command=["sleep", "600"])
    # cgroup v2 (Docker on Ubuntu 24.04) or v1 (Docker on this machine)
    out = execute(zun, container["uuid"],
                  "sh -c 'cat /sys/fs/cgroup/memory.max 2>/dev/null"
                  " || cat /sys/fs/cgroup/memory/memory.limit_in_bytes'")
    assert out["exit_code"] == 0
    assert int(out["output"].strip()) == 256 * 1024 * 1024


def test_top_and_stats_show_what_docker_shows(zun):
    busy = "python3 -c 'import time; t=time.time()\nwhile time.time()-t<3: pass\n" \
           "open(\"/tmp/parity-io\",\"wb\").write(b\"x\"*(4<<20)); time.sleep(600)'"
    container = run(zun, memory=256, command=["sh", "-c", busy])
    cid = container["uuid"]
    top = zun("GET", f"/containers/{cid}/top").json()
    assert top["Titles"] == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert top["Processes"] and all(len(row) == 8 for row in top["Processes"])
    time.sleep(4)
    stats = zun("GET", f"/containers/{cid}/stats").json()
    assert stats["CPU %"] > 0
    assert stats["MEM LIMIT(MiB)"] == 256
    assert "BLOCK I/O(B)" in stats and "/" in stats["BLOCK I/O(B)"]


def test_put_archive_then_get_archive(zun):
    container = run(zun, command=["sleep", "600"], workdir="/tmp")
    cid = container["uuid"]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = b"hello from put_archive\n"
        info = tarfile.TarInfo(f"parity-{cid[:8]}.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    r = zun("POST", f"/containers/{cid}/put_archive",
            json={"path": "/tmp", "data": base64.b64encode(buf.getvalue()).decode()})
    assert r.status_code == 200, r.text
    out = execute(zun, cid, f"cat /tmp/parity-{cid[:8]}.txt")
    assert out["output"] == "hello from put_archive\n"
    r = zun("GET", f"/containers/{cid}/get_archive?path=/tmp/parity-{cid[:8]}.txt")
    assert r.status_code == 200, r.text
    got = tarfile.open(fileobj=io.BytesIO(base64.b64decode(r.json()["data"])))
    assert got.extractfile(f"parity-{cid[:8]}.txt").read() == b"hello from put_archive\n"
    assert r.json()["stat"]["size"] == len(b"hello from put_archive\n")
    execute(zun, cid, f"rm -f /tmp/parity-{cid[:8]}.txt")


def test_a_containers_port_is_found_in_neutron_by_id_and_device(zun, local_cloud):
    container = run(zun, command=["sleep", "600"])
    ((network_id, (entry,)),) = container["addresses"].items()
    region = local_cloud.region
    neutron = adapter.Adapter(session=region.get_session(), service_type="network",
                              region_name=region.get_region_name("network"),
                              interface="public")
    r = neutron.get(f"/v2.0/ports?device_id={container['uuid']}", raise_exc=False)
    assert r.status_code == 200, r.text
    (port,) = r.json()["ports"]
    assert port["id"] == entry["port"] and port["network_id"] == network_id
    assert port["fixed_ips"][0]["ip_address"] == entry["addr"]
    r = neutron.get(f"/v2.0/ports/{entry['port']}", raise_exc=False)
    assert r.status_code == 200 and r.json()["port"]["device_id"] == container["uuid"]
