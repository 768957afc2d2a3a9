"""Nothing orphaned, nothing duplicated: ended, failed, cancelled and unstoppable
containers against a stateful fake Zun (issue 8, items 1, 2, 3 and 5).

The hub's side of the same stories (JupyterHub's own User.spawn/User.stop) is in
test_hub_lifecycle.py.
"""

import asyncio
import logging
import re
import threading
import time

import pytest
from jupyterhub.spawner import SpawnException

from magnum_spawner.common import answering

from .fake_zun import LifecycleZun
from .helpers import make_spawner

pytestmark = pytest.mark.usefixtures("fast_janitor")


async def eventually(condition, timeout=5.0):
    """Wait until ``condition()`` holds (the janitor works in the background)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not within the time limit"
        await asyncio.sleep(0.02)


def after_hub_stop(spawner, **config):
    """What JupyterHub does after stop(): clear and store the state; a new spawner."""
    spawner.clear_state()
    state = spawner.get_state()
    fresh = make_spawner(config=config)
    fresh.load_state(state)
    return fresh, state


# -- item 1: poll() removes what ended ---------------------------------------------


async def test_a_crashed_server_is_deleted_by_poll_and_its_exit_code_reported(cloud):
    zun = LifecycleZun().install(cloud.m)
    spawner = make_spawner()
    uuid = zun.server("jupyter-alice", "Stopped")
    zun.containers[uuid]["status_detail"] = "Exited(137) 2 seconds ago"
    spawner.load_state({"container_id": uuid, "container_name": "jupyter-alice"})
    assert await spawner.poll() == 137
    await eventually(lambda: not zun.alive())
    # JupyterHub then calls poll() again in User.stop(): the same answer, no stop()
    assert await spawner.poll() == 137
    _, state = after_hub_stop(spawner)
    assert "container_id" not in state


async def test_with_delete_stopped_containers_off_the_container_stays(cloud):
    zun = LifecycleZun().install(cloud.m)
    spawner = make_spawner(config={"delete_stopped_containers": False})
    uuid = zun.server("jupyter-alice", "Stopped")
    spawner.load_state({"container_id": uuid})
    assert await spawner.poll() == 0
    assert not cloud.requests("DELETE")


async def test_an_unknown_container_is_kept_in_state_and_removed_when_zun_allows(cloud, caplog):
    zun = LifecycleZun().install(cloud.m)
    spawner = make_spawner(config={"unknown_grace_period": 60})
    uuid = zun.server("jupyter-alice", "Unknown")
    spawner.load_state({"container_id": uuid})
    assert await spawner.poll() is None
    spawner._unknown_since -= 61
    with caplog.at_level(logging.WARNING):
        assert await spawner.poll() == 1
    # Zun refuses (409 for Unknown): the container is not forgotten
    assert f"container {uuid} is Unknown" in caplog.text
    fresh, state = after_hub_stop(spawner)
    assert state["to_remove"] == [{"id": uuid, "name": "jupyter-alice"}]
    # the next start says why it cannot go on; it makes no second container
    with pytest.raises(SpawnException) as info:
        await fresh.start()
    assert "in Zun's status Unknown" in info.value.message
    assert zun.made == [uuid]
    # the host is back: the container is removed, and the server starts
    zun.set(uuid, status="Stopped")
    url = await fresh.start()
    assert url == "http://127.0.0.1:8888"
    assert uuid not in zun.containers
    assert len(zun.alive()) == 1 and not zun.overlaps


async def test_poll_finds_and_removes_a_container_no_start_recorded(cloud):
    # The hub was killed between the create and the end of start(): its database
    # says a server was starting, the state knows no container.
    zun = LifecycleZun().install(cloud.m)
    spawner = make_spawner()
    uuid = zun.server("jupyter-alice", "Running")
    assert await spawner.poll() == 0
    await eventually(lambda: uuid not in zun.containers)


# -- item 2: a start that timed out while Zun was still creating -------------------


async def test_a_start_timed_out_while_creating_leaves_no_container_behind(cloud):
    zun = LifecycleZun(script=["Creating"] * 12 + ["Running"]).install(cloud.m)
    spawner = make_spawner(config={"start_timeout": 3})
    # the script counts Zun's answers: at the real pace of looks, the start
    # sees Creating until its deadline (a second), the janitor the rest
    spawner.look_interval = 0.5
    with pytest.raises(SpawnException) as info:
        await spawner.start()
    assert info.value.reason == "timeout"
    (uuid,) = zun.made
    # Zun refuses to delete a Creating container: it stays recorded...
    fresh, state = after_hub_stop(spawner)
    assert {"id": uuid, "name": "jupyter-alice"} in state["to_remove"]
    assert zun.containers[uuid]["status"] == "Creating"
    # ...and is deleted as soon as Zun lets it go, without anyone starting again
    await eventually(lambda: uuid not in zun.containers)
    assert not zun.running()


# -- item 3: cancellation ------------------------------------------------------------


async def cancelled_start(spawner, after):
    """Start, then cancel as JupyterHub does at start_timeout."""
    task = asyncio.ensure_future(spawner.start())
    await asyncio.sleep(after)
    task.cancel()
    # the cancellation reads as the spawner's sentence (JupyterHub 5.2+ shows it)
    with pytest.raises(SpawnException, match="did not start within"):
        await task


async def test_a_start_cancelled_during_the_create_leaves_no_orphan(cloud):
    zun = LifecycleZun(script=["Creating", "Running"]).install(cloud.m)
    zun.create_gate = threading.Event()  # the POST is on its way when JupyterHub gives up
    spawner = make_spawner()
    task = asyncio.ensure_future(spawner.start())
    await eventually(lambda: zun.creates_held)
    task.cancel()
    with pytest.raises(SpawnException, match="did not start within"):
        await task
    assert not zun.made
    zun.create_gate.set()
    await eventually(lambda: zun.made)  # the create lands after the cancellation
    await eventually(lambda: not zun.alive())


async def test_a_start_cancelled_while_reading_a_stopped_servers_logs_leaves_nothing(
        cloud, monkeypatch):
    """JupyterHub's start_timeout may come while the start reads the logs of a
    server that stopped: the container is still the spawner's, and the stop
    JupyterHub then sends removes it."""
    async def never(url, timeout):  # the server never answers
        return False

    monkeypatch.setattr(answering, "probe", never)
    zun = LifecycleZun(script=["Creating", "Running", "Stopped"]).install(cloud.m)
    reading, release = threading.Event(), threading.Event()

    def slow_logs(request, context):
        reading.set()
        release.wait(timeout=30)
        return '""'

    cloud.m.get(re.compile(re.escape(zun.base) + r"/v1/containers/[^/?]+/logs"), text=slow_logs)
    spawner = make_spawner(config={"concurrent_starts": 0})
    spawner.answer_check_interval = 0.05
    task = asyncio.ensure_future(spawner.start())
    await eventually(reading.is_set)
    task.cancel()
    with pytest.raises(SpawnException, match="did not start within"):
        await task
    release.set()
    assert zun.alive(), "the stopped container is there until the hub's stop"
    await spawner.stop()  # what JupyterHub does after a start that failed
    await eventually(lambda: not zun.alive())


async def test_an_immediate_retry_after_a_cancelled_create_gives_one_container(cloud):
    zun = LifecycleZun(script=["Creating", "Running"]).install(cloud.m)
    zun.create_delay = 0.5
    spawner = make_spawner()
    await cancelled_start(spawner, 0.2)
    zun.create_delay = 0
    fresh, _ = after_hub_stop(spawner)
    assert await fresh.start() == "http://127.0.0.1:8888"
    assert not zun.overlaps, "a create was sent while the cancelled one's container lived"
    assert [c["uuid"] for c in zun.alive()] == [fresh.container_id]


async def test_a_start_cancelled_while_creating_is_removed_before_the_retry(cloud):
    zun = LifecycleZun(script=["Creating"] * 15 + ["Running"]).install(cloud.m)
    spawner = make_spawner()
    await cancelled_start(spawner, 0.3)
    (first,) = zun.made
    fresh, _ = after_hub_stop(spawner)
    zun.script = ["Running"]
    assert await fresh.start() == "http://127.0.0.1:8888"
    assert first not in zun.containers
    assert not zun.overlaps
    assert [c["uuid"] for c in zun.alive()] == [fresh.container_id]


async def test_every_phase_before_the_create_is_bounded_by_starts_deadline(cloud):
    zun = LifecycleZun().install(cloud.m)
    zun.list_delay = 4.0  # the look for leftovers hangs
    spawner = make_spawner(config={"start_timeout": 3})
    began = time.monotonic()
    with pytest.raises(SpawnException) as info:
        await spawner.start()
    assert time.monotonic() - began < 3
    assert info.value.reason == "timeout"
    assert "removing the previous server" in info.value.message
    zun.list_delay = 0
    assert not zun.made


# -- item 5: a stop that fails ------------------------------------------------------


@pytest.mark.slow
async def test_stop_retries_a_delete_answered_500(cloud):
    zun = LifecycleZun().install(cloud.m)
    spawner = make_spawner()
    uuid = zun.server("jupyter-alice", "Running")
    spawner.load_state({"container_id": uuid})
    zun.fail("DELETE", uuid, 500, times=3)
    await spawner.stop()
    assert uuid not in zun.containers
    assert len(cloud.requests("DELETE", uuid)) == 4
    assert "to_remove" not in spawner.get_state()


async def test_a_stop_that_cannot_finish_keeps_the_container_and_finishes_later(cloud, caplog):
    zun = LifecycleZun().install(cloud.m)
    spawner = make_spawner(config={"delete_timeout": 1})
    uuid = zun.server("jupyter-alice", "Running")
    spawner.load_state({"container_id": uuid})
    zun.fail("DELETE", uuid, 500, times=1000)
    with caplog.at_level(logging.ERROR):
        await spawner.stop()  # does not raise: JupyterHub would clear the state anyway
    assert "the hub keeps deleting it" in caplog.text
    fresh, state = after_hub_stop(spawner)
    assert state["to_remove"] == [{"id": uuid, "name": "jupyter-alice"}]
    assert uuid in zun.containers
    zun.faults.clear()  # Zun recovers
    await eventually(lambda: uuid not in zun.containers)


async def test_a_removal_recorded_in_state_is_finished_by_the_next_start(cloud):
    # e.g. the hub restarted between a failed stop and the next start, and
    # the name template changed meanwhile
    zun = LifecycleZun(script=["Running"]).install(cloud.m)
    spawner = make_spawner()
    old = zun.server("jupyterhub-alice", "Running", labels=spawner.own_labels)
    spawner.load_state({"to_remove": [{"id": old, "name": "jupyterhub-alice"}]})
    assert await spawner.start() == "http://127.0.0.1:8888"
    assert old not in zun.containers and not zun.overlaps
