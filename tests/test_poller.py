"""The hub-wide poll loop: lists instead of a GET per server, and never wrong."""

import asyncio
import time

import pytest

from magnum_spawner.zun import poller as poller_mod
from magnum_spawner.common.waiting import backoff_delay
from magnum_spawner.zun.poller import ACTION_STATUSES, HubPoller

from .fake_zun import FakeZun
from .helpers import make_spawner


def uuid(i):
    return f"0000{i:04d}-0000-4000-8000-000000000000"


def spawners_with_state(n, **config):
    # What poll() answers from the map; deleting an ended container (with a GET
    # to confirm first) is test_removal.py's.
    config.setdefault("delete_stopped_containers", False)
    out = []
    for i in range(n):
        s = make_spawner(f"user{i}", config={"use_hub_poller": True, "hub_poll_interval": 30,
                                             **config})
        s.load_state({"container_id": uuid(i)})
        out.append(s)
    return out


@pytest.fixture
def zun(cloud):
    return FakeZun().install(cloud.m)


def fill(zun, n, **kwargs):
    for i in range(n):
        zun.add(uuid(i), f"jupyter-user{i}", **kwargs)


def get_count(cloud):
    return len(cloud.requests("GET", r"/v1/containers/[^?]+$"))


def list_queries(cloud):
    return [r.qs for r in cloud.requests("GET", r"/v1/containers(\?|$)")]


async def loaded_poller(spawner, **kwargs):
    poller = HubPoller.for_hub(spawner.zun, "jupyterhub", spawner.hub_poll_interval, **kwargs)
    assert await poller.wait_first_load(5)
    return poller


@pytest.mark.parametrize("status, detail, expected", [
    ("Running", None, None),
    ("Created", None, None),
    ("Creating", None, None),
    ("Restarting", None, None),
    ("Paused", None, None),
    ("Rebuilding", None, None),
    ("Unknown", None, None),  # within unknown_grace_period
    ("Stopped", "Exited(3) 2 seconds ago", 3),
    ("Stopped", "Exited(137) 1 second ago", 137),
    ("Error", None, 1),
    ("Dead", None, 1),
    ("Deleted", None, 0),
])
async def test_poll_answers_every_status_from_the_map_without_a_get(
        cloud, zun, status, detail, expected):
    fill(zun, 1, status=status, status_detail=detail)
    (spawner,) = spawners_with_state(1)
    await loaded_poller(spawner)
    assert await spawner.poll() == expected
    assert get_count(cloud) == 0


async def test_fifty_polls_cost_one_list_and_the_map_holds_no_secret(cloud, zun):
    fill(zun, 50)
    zun.set(uuid(7), status="Stopped", status_detail="Exited(0) 1 second ago")
    spawners = spawners_with_state(50)
    poller = await loaded_poller(spawners[0])
    results = await asyncio.gather(*(s.poll() for s in spawners))
    assert results.count(None) == 49 and results[7] == 0
    assert len(list_queries(cloud)) == 1 and get_count(cloud) == 0
    # only what poll() needs: no environment, so no API token
    assert "secret-" not in repr(poller.containers)
    assert set(poller.containers[uuid(0)]) == {
        "uuid", "name", "status", "status_reason", "status_detail", "task_state",
        "created_at", "restart_policy", "hub", "user", "server", "managed_by", "addresses"}


async def test_other_hubs_containers_are_not_ours(cloud, zun):
    fill(zun, 1)
    zun.add("other-1", hub="other")
    (spawner,) = spawners_with_state(1)
    poller = await loaded_poller(spawner)
    assert set(poller.containers) == {uuid(0)}


async def test_frequent_lists_ask_only_for_statuses_that_need_action(cloud, zun):
    fill(zun, 5)
    (spawner,) = spawners_with_state(1)
    poller = await loaded_poller(spawner, full_interval=3600)
    zun.set(uuid(0), status="Stopped", status_detail="Exited(2) now")
    await poller.cycle()
    query = list_queries(cloud)[-1]
    assert sorted(query["status"]) == sorted(s.lower() for s in ACTION_STATUSES)
    assert zun.items == 5 + 1  # the full list, then only the stopped one
    assert await spawner.poll() == 2
    assert get_count(cloud) == 0


async def test_filters_are_sent_again_with_every_page(cloud, zun):
    fill(zun, 5, status="Error")
    (spawner,) = spawners_with_state(1)
    poller = await loaded_poller(spawner, full_interval=3600, page_size=2)
    await poller.cycle()
    action_pages = list_queries(cloud)[-3:]
    assert all("status" in q for q in action_pages)
    assert "marker" in action_pages[-1]
    assert len([r for r in poller.containers.values() if r["status"] == "Error"]) == 5


async def test_a_container_that_left_the_action_list_is_asked_for(cloud, zun):
    fill(zun, 1, status="Stopped", restart="no")
    (spawner,) = spawners_with_state(1)
    poller = await loaded_poller(spawner, full_interval=3600)
    # started again from outside: no longer in the stopped list, nothing to say why
    zun.set(uuid(0), status="Running")
    await poller.cycle()
    assert await spawner.poll() is None
    assert get_count(cloud) == 1


async def test_disappearance_needs_two_complete_lists(cloud, zun):
    fill(zun, 3)
    spawners = spawners_with_state(3)
    poller = await loaded_poller(spawners[0], full_interval=0.001)
    zun.delete(uuid(1))
    await poller.refresh_full()
    # absent once: not yet "gone"; the server's own GET decides (404 -> stopped)
    assert poller.lookup(uuid(1))[0] == poller_mod.ASK
    await poller.refresh_full()
    assert poller.lookup(uuid(1))[0] == poller_mod.GONE
    gets = get_count(cloud)
    assert await spawners[1].poll() == 0
    assert get_count(cloud) == gets


async def test_a_container_newer_than_every_list_is_asked_for_then_quiet(cloud, zun):
    (spawner,) = spawners_with_state(1)
    poller = await loaded_poller(spawner, full_interval=3600)
    zun.add(uuid(0))
    spawner._created_at = asyncio.get_running_loop().time()
    assert await spawner.poll() is None
    assert get_count(cloud) == 1
    await poller.cycle()  # an action list started after it was created
    assert await spawner.poll() is None
    assert get_count(cloud) == 1


async def test_a_failing_list_falls_back_to_direct_gets(cloud, zun):
    fill(zun, 1)
    (spawner,) = spawners_with_state(1)
    poller = await loaded_poller(spawner, full_interval=3600)
    spawner.zun.read_status_code_retries = 0  # a GET fails at once
    cloud.m.get(f"{zun.base}/v1/containers?status=Stopped", status_code=500, text="")
    poller.updated_at -= poller.stale_after + 1  # and the map is old by now
    await poller.cycle()
    assert poller.last_error is not None and poller.failures == 1
    assert await spawner.poll() is None
    assert get_count(cloud) == 1


async def test_errors_back_off_with_jitter_within_a_bound(cloud, zun):
    (spawner,) = spawners_with_state(1)
    spawner.zun.read_status_code_retries = 0  # a GET fails at once
    cloud.m.get(f"{zun.base}/v1/containers?limit=1000", status_code=503, text="")
    poller = HubPoller(spawner.zun, "jupyterhub", interval=10, max_backoff=100)
    delays = [await poller.cycle() for _ in range(8)]
    assert poller.failures == 8
    bases = [10, 20, 40, 80, 100, 100, 100, 100]
    assert all(b / 2 <= d <= b for d, b in zip(delays, bases)), delays
    assert len(set(delays)) == len(delays)  # jittered
    assert backoff_delay(30, 10, 100, rand=lambda: 1.0) == 100
    # one success ends the backoff
    cloud.m.get(f"{zun.base}/v1/containers?limit=1000", json={"containers": [], "next": None})
    assert await poller.cycle() == poller.period == 10


async def test_a_list_slower_than_the_interval_does_not_turn_polls_into_gets(cloud, zun):
    fill(zun, 3)
    spawners = spawners_with_state(3, hub_poll_interval=0.05)
    poller = await loaded_poller(spawners[0], full_interval=0.05)
    zun.install(cloud.m, before_list=lambda q: time.sleep(0.3))
    # until both kinds of list have been slow once (when the next full list is
    # due depends on how long the first one took on this machine)
    for _ in range(30):
        await poller.cycle()
        if min(poller.full_seconds, poller.action_seconds) >= 0.3:
            break
    assert poller.period >= 4 * 0.3 and poller.full_period >= 4 * 0.3
    assert await asyncio.gather(*(s.poll() for s in spawners)) == [None] * 3
    assert get_count(cloud) == 0


async def test_a_container_deleted_at_a_page_boundary_does_not_fail_the_list(cloud, zun):
    fill(zun, 7)
    spawners = spawners_with_state(7)
    pages = []

    def delete_the_marker(query):
        pages.append(query)
        if len(pages) == 2:  # between page 1 and page 2: the marker goes away
            zun.delete(query["marker"][0])
    zun.install(cloud.m, before_list=delete_the_marker)
    poller = await loaded_poller(spawners[0], page_size=3)
    # every container is listed once (the deleted one was, on page 1)
    assert set(poller.containers) == {uuid(i) for i in range(7)}
    # one 404 cost one extra page request, not a restart and not a GET per server
    assert len(pages) == 4
    assert [q.get("marker") for q in pages] == [None, [uuid(2)], [uuid(1)], [uuid(5)]]
    results = await asyncio.gather(*(s.poll() for s in spawners))
    assert results == [None] * 7 and get_count(cloud) == 0


async def test_a_restart_policy_stop_is_confirmed_before_it_is_reported(cloud, zun):
    fill(zun, 1, status="Stopped", status_detail="Exited(1) now", restart="always")
    zun.add(uuid(1), status="Stopped", status_detail="Exited(1) now", restart="no")
    spawners = spawners_with_state(2)
    await loaded_poller(spawners[0])
    # Zun's database said Stopped at the last sync; the host restarted it since
    zun.set(uuid(0), status="Running")
    assert await spawners[0].poll() is None
    assert get_count(cloud) == 1
    # without a restart policy the listed stop stands, no GET
    assert await spawners[1].poll() == 1
    assert get_count(cloud) == 1


async def test_a_restarted_hub_reattaches_with_one_list_not_a_get_each(cloud, zun):
    fill(zun, 40)
    zun.install(cloud.m, before_list=lambda q: time.sleep(0.2))  # a slow first list
    spawners = spawners_with_state(40)
    results = await asyncio.gather(*(s.poll() for s in spawners))
    assert results == [None] * 40
    assert len(list_queries(cloud)) == 1 and get_count(cloud) == 0


async def test_a_failed_first_list_does_not_hold_polls_up(cloud, zun):
    fill(zun, 1)
    cloud.m.get(f"{zun.base}/v1/containers?limit=1000", status_code=500, text="")
    (spawner,) = spawners_with_state(1)
    spawner.zun.read_status_code_retries = 0  # a GET fails at once
    started = time.monotonic()
    assert await spawner.poll() is None
    assert time.monotonic() - started < 5  # not FIRST_LOAD_WAIT
    assert get_count(cloud) == 1


async def test_a_first_list_that_hangs_is_waited_for_a_bounded_time(cloud, zun, monkeypatch):
    fill(zun, 1)
    monkeypatch.setattr(poller_mod, "FIRST_LOAD_WAIT", 0.3)
    (spawner,) = spawners_with_state(1)

    async def hanging_list(**kwargs):  # (requests-mock answers one call at a time)
        await asyncio.sleep(30)
    monkeypatch.setattr(spawner.zun, "list", hanging_list)
    started = time.monotonic()
    assert await spawner.poll() is None
    assert time.monotonic() - started < 2  # the GET answered, not the list
    assert get_count(cloud) == 1


async def test_a_dead_poller_is_restarted_not_handed_out(cloud, zun):
    fill(zun, 1)
    (spawner,) = spawners_with_state(1)
    poller = await loaded_poller(spawner)
    poller._task.cancel()
    await asyncio.sleep(0)
    again = HubPoller.for_hub(spawner.zun, "jupyterhub", 30)
    assert again is poller and not poller._task.done()


async def test_records_are_left_alone_by_the_garbage_collector(cloud, zun):
    import gc
    fill(zun, 3)
    (spawner,) = spawners_with_state(1)
    poller = await loaded_poller(spawner)
    # untracked: thousands of them never make a full collection of the hub's heap
    assert not any(gc.is_tracked(r) for r in poller.containers.values())
    assert poller.containers[uuid(0)]["addresses"] == (
        "6f3f6b6c-5a0c-4b5e-9a3e-1f0b9c1d2e3f=127.0.0.1")


async def test_the_first_poller_freezes_the_heap_once(cloud, zun, monkeypatch):
    import gc
    fill(zun, 1)
    freezes = []
    monkeypatch.setattr(gc, "freeze", lambda: freezes.append(1))
    (spawner,) = spawners_with_state(1)
    await spawner.poll()
    await spawner.poll()
    assert freezes == [1]
    (other,) = spawners_with_state(1, hub_gc_freeze=False)
    HubPoller.stop_all()
    await other.poll()
    assert freezes == [1]


async def test_the_first_start_freezes_the_heap_before_any_cloud_call(cloud, monkeypatch):
    """A burst of starts comes before the first poll: the heap JupyterHub built is
    frozen at the first start, once (benchmarks/spawn_burst_gc.py measures why)."""
    import gc

    from .fake_zun import LifecycleZun
    LifecycleZun().install(cloud.m)
    monkeypatch.setattr(poller_mod, "_heap_frozen", False)
    freezes = []
    monkeypatch.setattr(gc, "freeze", lambda: freezes.append(len(cloud.m.request_history)))
    await make_spawner("ada", config={"hub_gc_freeze": False}).start()
    assert freezes == []
    calls = len(cloud.m.request_history)
    await make_spawner("bob").start()
    await make_spawner("cy").start()
    assert freezes == [calls]
