"""Flavors on the local cloud: the limits a flavor sets hold, and a real hub
refuses bad choices with a 400 and no container.

Uses the harness of ``tests/e2e/conftest.py`` (``local_spawner``,
``hub_factory``).  Zun's Docker driver applies a container's ``memory`` as its
memory cgroup limit and its ``cpu`` as ``cpu.shares = 1024 * cpu``: a weight
that counts when processes compete for a core.  Run with ``make e2e`` or
``pytest -m localcloud tests/e2e/test_flavors_e2e.py``.
"""

import asyncio
import os
import re
import time

import pytest

from .conftest import DOCKER, local_only

pytestmark = pytest.mark.localcloud

#: A program that waits HOLD seconds (so that start() sees it Running), then
#: allocates ALLOC_MIB MiB in 16 MiB blocks, really touching every page.
ALLOCATE = """
import os, time
time.sleep(float(os.environ["HOLD"]))
blocks = []
for n in range(int(os.environ["ALLOC_MIB"]) // 16):
    blocks.append(b"\\x01" * (16 << 20))
    print("allocated", (n + 1) * 16, "MiB", flush=True)
print("survived", flush=True)
time.sleep(3600)
"""

#: A busy loop pinned to one core for WINDOW seconds from the time written in
#: the file GO (written into each container through Zun's exec); prints the CPU
#: time it got.
BUSY = """
import os, time
os.sched_setaffinity(0, {int(os.environ["CORE"])})
start_at = ""
while not start_at:  # the file may exist before the shell has written it
    time.sleep(0.05)
    if os.path.exists(os.environ["GO"]):
        with open(os.environ["GO"]) as f:
            start_at = f.read().strip()
start_at = float(start_at)
window = float(os.environ["WINDOW"])
while time.time() < start_at:
    time.sleep(0.02)
used = time.process_time()
while time.time() < start_at + window:
    pass
print("cpu_seconds", time.process_time() - used, flush=True)
time.sleep(3600)
"""

FLAVORS = {
    "tiny": {"cpu": 0.5, "memory": 128, "description": "for the memory test"},
    "small": {"cpu": 0.5, "memory": 1024},
    "large": {"cpu": 2, "memory": 1024},
}


def program(local_spawner, username, flavor, script, **env):
    spawner = local_spawner(
        username,
        flavors=FLAVORS,
        cmd=["python", "-c", script],
        environment={k: str(v) for k, v in env.items()},
        home_volume_size=0,  # no Cinder volume: only sizes are under test
        delete_stopped_containers=False,  # the tests read the ended container
    )
    spawner.user_options = {"flavor": flavor}
    return spawner


async def wait_for(predicate, timeout, interval=1.0):
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(interval)


async def test_a_process_past_its_flavors_memory_is_killed_and_poll_says_so(
    local_spawner, local_cloud
):
    killed = program(local_spawner, "flavor-oom", "tiny", ALLOCATE, HOLD=3, ALLOC_MIB=512)
    kept = program(local_spawner, "flavor-roomy", "small", ALLOCATE, HOLD=3, ALLOC_MIB=512)
    await asyncio.gather(killed.start(), kept.start())

    async def stopped():
        return await killed.poll()

    started = time.monotonic()
    status = await wait_for(stopped, timeout=60)
    assert status == 137  # 128 + SIGKILL, from the kernel's OOM killer
    print(f"OOM kill seen by poll {time.monotonic() - started:.1f} s after Running")
    container = local_cloud.container(killed.container_id)  # python-zunclient
    assert container["memory"] == "128"
    assert container["status"] == "Stopped"
    assert "137" in (container.get("status_detail") or "")
    if DOCKER:
        # Zun's Docker driver gives no reason for an OOM kill (status_reason
        # stays empty): Docker's own record says it was the kernel's OOM killer
        from .test_docker_hosts_e2e import docker, host_of

        inspect = docker(host_of(killed.container_id), "inspect", "-f",
                         "{{.State.OOMKilled}}", f"zun-{killed.container_id}")
        assert inspect.stdout.strip() == "true", inspect
    else:
        assert "OOMKilled" in (container.get("status_reason") or "")

    # the same program under a flavor with room for it is not killed
    async def survived():
        return "survived" in local_cloud.logs(kept.container_id, tail=5)

    assert await wait_for(survived, timeout=60)
    assert await kept.poll() is None


@local_only  # the containers share the host's clock and cores
async def test_busy_containers_share_a_core_in_proportion_to_their_cpu(
    local_spawner, local_cloud
):
    core = max(os.sched_getaffinity(0))
    window = 12
    # the start signal: a file each container gets through Zun's exec, in its /tmp
    go = "/tmp/go"
    env = {"CORE": core, "GO": go, "WINDOW": window}
    small = program(local_spawner, "flavor-cpu-small", "small", BUSY, **env)
    large = program(local_spawner, "flavor-cpu-large", "large", BUSY, **env)
    await asyncio.gather(small.start(), large.start())
    start_at = time.time() + 6
    for spawner in (small, large):
        local_cloud.zunclient.containers.execute(
            spawner.container_id, command=f"sh -c 'echo {start_at!r} > {go}'", run=True)
    await asyncio.sleep(start_at + window + 2 - time.time())

    async def cpu_seconds(spawner):
        logs = local_cloud.logs(spawner.container_id, tail=5)
        match = re.search(r"cpu_seconds ([0-9.]+)", logs)
        assert match, f"no measurement in the logs: {logs!r}"
        return float(match.group(1))

    got_small, got_large = await cpu_seconds(small), await cpu_seconds(large)
    # cpu.shares 512 against 2048: the large flavor gets four times the time
    assert got_small + got_large > 0.5 * window, (got_small, got_large)
    ratio = got_large / got_small
    print(f"cpu seconds in {window} s on one core: small {got_small:.2f}, large {got_large:.2f}")
    assert 2.8 < ratio < 5.5, (got_small, got_large)


STAFF_HUB = """
c.ZunSpawner.home_volume_size = 0
c.ZunSpawner.allowed_flavors = ["small", "standard"]
c.ZunSpawner.group_overrides = {
    "staff": {"groups": ["staff"],
              "spawner_override": {"allowed_flavors": ["small", "standard", "large"]}},
}
c.JupyterHub.load_groups = {"staff": {"users": ["flavor-boss"]}}
"""


def containers_of(hub, user):
    return hub.cloud.containers(**{
        "hub.jupyter.org/hub": hub.hub_id, "hub.jupyter.org/user": user,
    })


@pytest.mark.parametrize("options, message", [
    ({"flavor": "large"}, "The flavor 'large' is not available to you; choose one of: small, standard"),
    ({"flavor": {"cpu": 16, "memory": 8192}}, "must be the name of a flavor (a string), not a JSON object"),
    ({"memory": "8192"}, "Unknown option 'memory'"),
    ({"flavor": "x" * 10000}, "The flavor option is 10000 characters long"),
])
def test_the_hub_answers_bad_choices_with_400_and_makes_no_container(hub_factory, options, message):
    hub = hub_factory(STAFF_HUB)
    r = hub.request_start("flavor-pat", options={"user_options": options})
    assert r.status_code == 400, r.text
    assert message in r.json()["message"]
    assert containers_of(hub, "flavor-pat") == []


def test_staff_get_the_large_flavor_and_the_hub_shows_the_choice(hub_factory):
    hub = hub_factory(STAFF_HUB)
    server = hub.start_server("flavor-boss", options={"user_options": {"flavor": "large"}})
    assert server["user_options"] == {"flavor": "large", "profile": "large"}
    (container,) = containers_of(hub, "flavor-boss")
    assert (container["cpu"], container["memory"]) == (2.0, "4096")
    assert container["labels"]["hub.jupyter.org/flavor"] == "large"
    state = hub.api("GET", "/users/flavor-boss").json()["servers"][""]["state"]
    assert state["flavor"] == "large"
    hub.stop_server("flavor-boss")
