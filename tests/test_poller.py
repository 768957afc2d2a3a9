"""The hub-wide poll loop: one list for all servers instead of one GET each."""

import asyncio

from magnum_spawner.poller import HubPoller

from .helpers import make_spawner
from .recorded import ZUN, body


def listing(n, hub_id="jupyterhub", other_hub=0, statuses=None):
    template = body("zun-containers-list-one")["containers"][0]
    containers = []
    for i in range(n + other_hub):
        c = dict(template, uuid=f"uuid-{i}", name=f"jupyter-user{i}")
        c["labels"] = dict(c["labels"], **{"hub.jupyter.org/hub": hub_id if i < n else "other"})
        c["status"] = (statuses or {}).get(i, "Running")
        containers.append(c)
    return {"containers": containers, "next": None}


def spawners_with_state(n, **config):
    out = []
    for i in range(n):
        s = make_spawner(f"user{i}", config={"use_hub_poller": True, "hub_poll_interval": 30, **config})
        s.load_state({"container_id": f"uuid-{i}"})
        out.append(s)
    return out


async def test_fifty_polls_cost_one_list_and_no_gets(cloud):
    cloud.m.get(f"{ZUN}/v1/containers?limit=100", json=listing(50, statuses={7: "Stopped"}))
    spawners = spawners_with_state(50)
    poller = HubPoller.for_hub(spawners[0].zun, "jupyterhub", 30)
    await poller.wait_first_load(5)
    results = await asyncio.gather(*(s.poll() for s in spawners))
    assert results.count(None) == 49 and results[7] == 0
    assert len(cloud.requests("GET", "/v1/containers\\?")) == 1
    assert not cloud.requests("GET", "/v1/containers/uuid-")


async def test_other_hubs_containers_are_not_ours(cloud):
    cloud.m.get(f"{ZUN}/v1/containers?limit=100", json=listing(1, other_hub=2))
    (spawner,) = spawners_with_state(1)
    poller = HubPoller.for_hub(spawner.zun, "jupyterhub", 30)
    await poller.wait_first_load(5)
    assert set(poller.containers) == {"uuid-0"}


async def test_a_container_missing_from_the_list_is_asked_for_directly(cloud):
    cloud.m.get(f"{ZUN}/v1/containers?limit=100", json=listing(0))
    cloud.reply("GET", f"{ZUN}/v1/containers/uuid-0", "zun-container-show-after-delete")
    (spawner,) = spawners_with_state(1)
    await HubPoller.for_hub(spawner.zun, "jupyterhub", 30).wait_first_load(5)
    assert await spawner.poll() == 0
    assert len(cloud.requests("GET", "/v1/containers/uuid-0")) == 1


async def test_a_failing_list_falls_back_to_direct_gets(cloud):
    cloud.m.get(f"{ZUN}/v1/containers?limit=100", status_code=500, text="")
    cloud.reply("GET", f"{ZUN}/v1/containers/uuid-0", "zun-container-show-running")
    (spawner,) = spawners_with_state(1)
    spawner.zun.adapter.status_code_retries = 0
    poller = HubPoller.for_hub(spawner.zun, "jupyterhub", 30)
    await asyncio.sleep(0.2)
    assert poller.last_error is not None
    # the recorded container is "Created": still starting, so running
    assert await spawner.poll() is None
    assert len(cloud.requests("GET", "/v1/containers/uuid-0")) == 1


async def test_a_dead_poller_is_restarted_not_handed_out(cloud):
    cloud.m.get(f"{ZUN}/v1/containers?limit=100", json=listing(1))
    (spawner,) = spawners_with_state(1)
    poller = HubPoller.for_hub(spawner.zun, "jupyterhub", 30)
    await poller.wait_first_load(5)
    poller._task.cancel()
    await asyncio.sleep(0)
    again = HubPoller.for_hub(spawner.zun, "jupyterhub", 30)
    assert again is poller and not poller._task.done()


async def test_a_snapshot_older_than_a_new_container_is_not_trusted(cloud):
    cloud.m.get(f"{ZUN}/v1/containers?limit=100", json=listing(0))
    cloud.reply("GET", f"{ZUN}/v1/containers/uuid-0", "zun-container-show-running")
    (spawner,) = spawners_with_state(1)
    poller = HubPoller.for_hub(spawner.zun, "jupyterhub", 30)
    await poller.wait_first_load(5)
    # the container was created after the last listing
    spawner._created_at = asyncio.get_running_loop().time() + 1
    known, _ = poller.lookup("uuid-0", spawner._created_at)
    assert not known
    assert await spawner.poll() is None
