"""A rush of starts: admitted at the pace set, in order, with words for the
waiting, and nobody is thrown away for being slow (common/admission.py,
common/answering.py)."""

import asyncio

import pytest
from jupyterhub.spawner import SpawnException

from magnum_spawner.common import answering
from magnum_spawner.common.admission import StartQueue, waiting_words

from .helpers import answer_http, make_spawner
from .recorded import DELETE, SHOW, creates, status


class Class:
    """Starts that each hold their place until told to finish."""

    def __init__(self, queue, limit):
        self.queue, self.limit = queue, limit
        self.admitted, self.told, self.done = [], {}, {}
        self.most = 0

    async def start(self, who):
        self.told[who] = []
        self.done[who] = asyncio.Event()
        async with self.queue.place(self.limit, self.told[who].append):
            self.admitted.append(who)
            self.most = max(self.most, self.queue.starting)
            await self.done[who].wait()

    def arrive(self, *names):
        return {who: asyncio.ensure_future(self.start(who)) for who in names}


async def settle():
    for _ in range(5):
        await asyncio.sleep(0)


async def test_starts_beyond_the_limit_wait_and_go_in_the_order_they_came():
    room = Class(StartQueue(), limit=2)
    tasks = room.arrive(*"abcdef")
    await settle()
    assert room.admitted == ["a", "b"]
    for who in "abcdef":
        room.done[who].set()
        await settle()
    await asyncio.gather(*tasks.values())
    assert room.admitted == list("abcdef")
    assert room.most == 2
    assert room.queue.starting == 0 and room.queue.waiting == 0


async def test_a_waiter_is_told_how_many_start_before_it_as_the_queue_moves():
    room = Class(StartQueue(), limit=1)
    tasks = room.arrive(*"abcd")
    await settle()
    for who in "abc":
        room.done[who].set()
        await settle()
    room.done["d"].set()
    await asyncio.gather(*tasks.values())
    # one starting, two queued in front: 3, then 2, then 1
    assert room.told["d"] == [3, 2, 1]
    assert room.told["a"] == []  # went straight in: nothing to say
    assert waiting_words(1) == "1 student is starting before you; your server starts in turn"
    assert waiting_words(3).startswith("3 students are starting before you")


async def test_a_cancelled_waiter_leaves_the_queue_and_those_behind_move_up():
    room = Class(StartQueue(), limit=1)
    tasks = room.arrive(*"abc")
    await settle()
    assert room.told["c"] == [2]
    tasks["b"].cancel()
    await settle()
    assert room.told["c"] == [2, 1]
    assert room.queue.waiting == 1
    room.done["a"].set()
    await settle()
    assert room.admitted == ["a", "c"]
    room.done["c"].set()
    await asyncio.gather(tasks["a"], tasks["c"])
    assert room.queue.starting == 0 and room.queue.waiting == 0


async def test_a_start_cancelled_in_its_place_gives_the_place_to_the_next():
    room = Class(StartQueue(), limit=1)
    tasks = room.arrive("a", "b")
    await settle()
    tasks["a"].cancel()  # JupyterHub's start_timeout while a start runs
    await settle()
    assert room.admitted == ["a", "b"] and room.queue.starting == 1
    room.done["b"].set()
    await tasks["b"]
    assert room.queue.starting == 0


async def test_no_limit_admits_everyone_at_once():
    room = Class(StartQueue(), limit=0)
    tasks = room.arrive(*"abcde")
    await settle()
    assert room.admitted == list("abcde")
    for who in "abcde":
        room.done[who].set()
    await asyncio.gather(*tasks.values())


# -- through the spawner --------------------------------------------------------


def spawner(name, **config):
    s = make_spawner(username=name, config={"concurrent_starts": 1, "hub_id": "rush",
                                            **config})
    s._spawn_pending = True
    return s


async def test_a_start_beyond_the_limit_waits_with_words_and_sends_nothing(cloud, monkeypatch):
    """alice's server is still starting (it does not answer yet): bob waits his
    turn, and the cloud hears nothing of bob until alice's server answers."""
    StartQueue._queues.pop("rush", None)
    answered = asyncio.Event()
    alices_tries = []

    async def probe(url, timeout):
        if "/user/alice/" in url:
            alices_tries.append(url)
        return "/user/bob/" in url or answered.is_set()

    monkeypatch.setattr(answering, "probe", probe)
    creates(cloud, status("Running"))
    alice, bob = spawner("alice"), spawner("bob")
    first = asyncio.ensure_future(alice.start())
    while not alice._events or "answer" not in alice._events[-1]["message"]:
        await asyncio.sleep(0.05)
    creates(cloud, status("Running"), name="jupyter-bob")
    second = asyncio.ensure_future(bob.start())
    # bob waits while alice's server is tried again and again
    tried = len(alices_tries)
    while len(alices_tries) < tried + 5:
        await asyncio.sleep(0.01)
    assert [e["message"] for e in bob._events] == [
        "1 student is starting before you; your server starts in turn"]
    assert len(cloud.requests("POST", "containers")) == 1
    answered.set()
    await asyncio.wait_for(asyncio.gather(first, second), 10)
    assert len(cloud.requests("POST", "containers")) == 2
    # the page keeps the wait and goes on from it
    said = [e["message"] for e in bob._events]
    assert said[0].startswith("1 student is starting") and said[1:3] == [
        "Asking the cloud for a server", "Your server is running"]
    assert StartQueue.for_hub("rush").starting == 0


async def test_a_wait_for_a_turn_past_start_timeout_says_so_and_leaves(cloud, monkeypatch):
    StartQueue._queues.pop("rush", None)
    queue = StartQueue.for_hub("rush")
    await queue.enter(1)  # someone else's start holds the only place
    late = spawner("bob", start_timeout=3)
    with pytest.raises(SpawnException) as info:
        await late.start()
    assert info.value.message == (
        "The server did not start within 3 s (the hub was still waiting for its turn "
        "(1 student is starting before you; your server starts in turn)); try again "
        "in a few minutes.")
    assert queue.waiting == 0 and queue.starting == 1
    assert not cloud.requests("POST", "containers")


async def test_a_turn_too_late_for_any_recent_start_is_given_up_with_words(cloud):
    """On an overloaded cloud a turn may come with less time left than even the
    fastest start of late took: that start gives up at once, with the reason,
    and sends nothing, so the place goes to a student who can still make it."""
    StartQueue._queues.pop("rush", None)
    queue = StartQueue.for_hub("rush")
    for seconds in (40, 30, 35):
        queue.record(seconds)
    await queue.enter(1)  # someone else's start holds the only place
    late = spawner("bob", start_timeout=20)
    start = asyncio.ensure_future(late.start())
    await asyncio.sleep(0.3)
    queue.leave()  # bob's turn, with some 15 s left
    with pytest.raises(SpawnException) as info:
        await asyncio.wait_for(start, 5)
    assert info.value.message.startswith(
        "The server did not start within 20 s (the hub was still waiting for its turn "
        "(it came with 15 s left, and a start takes 30 s or more now)")
    assert queue.waiting == 0 and queue.starting == 0
    assert not cloud.requests("POST", "containers")
    assert not cloud.requests("POST", "volumes")


async def test_start_returns_only_once_the_server_answers_http(cloud, monkeypatch):
    """A server whose process is alive but slow is waited for, not given up:
    start() returns when it answers what JupyterHub will ask, not before."""
    monkeypatch.setattr(answering, "probe", answering.http_probe)
    creates(cloud, status("Running"))
    seen = []
    ready = asyncio.Event()
    refused = []

    async def slow(reader, writer):
        if not ready.is_set():  # JupyterLab still loading: connection refused-like
            refused.append(writer)
            writer.close()
            return
        await answer_http(200, seen)(reader, writer)

    server = await asyncio.start_server(slow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    s = spawner("alice", port=port, concurrent_starts=0)
    try:
        start = asyncio.ensure_future(s.start())
        while len(refused) < 5:  # tried again and again, not given up
            await asyncio.sleep(0.01)
        assert not start.done()
        ready.set()
        url = await asyncio.wait_for(start, 10)
    finally:
        server.close()
    assert url == f"http://127.0.0.1:{port}"
    assert seen == ["GET /user/alice/api HTTP/1.1"]


async def start_that_stops(cloud, monkeypatch, answer_logs):
    """A start whose container runs, never answers HTTP, then stops; its logs
    are what ``answer_logs(url)`` installs.  Returns the start's failure and the
    spawner."""
    monkeypatch.setattr(answering, "probe", answering.http_probe)
    creates(cloud, status("Running"), status("Running"), status("Stopped"),
            "zun-container-show-after-delete")
    answer_logs(f"{SHOW}/logs?stdout=true&stderr=true&tail=200")
    cloud.reply("DELETE", DELETE, "zun-container-delete-stop-true")
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    s = spawner("alice", port=server.sockets[0].getsockname()[1], concurrent_starts=0)
    s.answer_check_interval = 0.1
    try:
        with pytest.raises(SpawnException) as info:
            await asyncio.wait_for(s.start(), 10)
    finally:
        server.close()
    return info.value, s


async def test_a_server_that_stops_while_not_answering_fails_the_start(cloud, fast_janitor,
                                                                       monkeypatch):
    failure, s = await start_that_stops(
        cloud, monkeypatch, lambda url: cloud.reply("GET", url, "zun-container-show-404"))
    assert failure.message == "Your server stopped while starting (it is Stopped)."
    assert cloud.requests("DELETE", "containers")
    assert s.container_id is None


#: the end of what jupyterhub-singleuser writes when the hub's API is out of its
#: reach (its last try of five, then it exits), as Zun's logs API answers it: a
#: JSON string (the controller is exposed as 'json'; seen so in a real run)
NO_HUB_LOGS = (
    "[E 2026-12-02 18:44:27.991 ServerApp] Failed to connect to my Hub at "
    "http://10.0.0.5:8081/hub/api (attempt 5/5). Is it running?\n"
    "    Traceback (most recent call last):\n"
    + "".join(f"      File \"/opt/notebook/aiohttp/connector.py\", line {n}, in connect\n"
              for n in range(30))
    + "    aiohttp.client_exceptions.ClientConnectorError: Cannot connect to host "
    "10.0.0.5:8081 ssl:default [Connect call failed ('10.0.0.5', 8081)]\n"
)


async def test_a_server_that_cannot_reach_the_hub_names_the_hubs_address(
        cloud, fast_janitor, monkeypatch):
    failure, _ = await start_that_stops(
        cloud, monkeypatch, lambda url: cloud.m.get(url, json=NO_HUB_LOGS))
    # the student learns that trying again will not help, and whom to tell
    assert failure.message == (
        "Your server stopped while starting: it could not reach the hub at "
        "http://10.0.0.5:8081/hub/api. Trying again will not help; please tell the "
        "hub's administrators.")
    # the operator reads the remedy and the server's last lines, as lines
    logged = failure.log_message
    assert "c.JupyterHub.hub_connect_url" in logged
    assert logged.endswith("[Connect call failed ('10.0.0.5', 8081)]")
    assert "\n      File \"/opt/notebook/aiohttp/connector.py\", line 29, in connect" in logged
    assert "line 9," not in logged  # the last 20 lines only
    assert cloud.requests("DELETE", "containers")


async def test_a_server_that_never_answers_names_the_phase(cloud, fast_janitor, monkeypatch):
    async def never(url, timeout):
        return False

    monkeypatch.setattr(answering, "probe", never)
    creates(cloud, status("Running"), "zun-container-show-after-delete")
    cloud.reply("GET", f"{SHOW}/logs?stdout=true&stderr=true&tail=200", "zun-container-show-404")
    cloud.reply("DELETE", DELETE, "zun-container-delete-stop-true")
    s = spawner("alice", start_timeout=4, concurrent_starts=0)
    with pytest.raises(SpawnException) as info:
        await s.start()
    assert "(the hub was still waiting for the server to answer)" in info.value.message
    assert cloud.requests("DELETE", "containers")


async def test_without_the_answer_wait_start_returns_once_the_container_runs(cloud, monkeypatch):
    async def never(url, timeout):
        return False

    monkeypatch.setattr(answering, "probe", never)
    creates(cloud, status("Running"))
    s = spawner("alice", wait_for_answer=False, concurrent_starts=0)
    assert await asyncio.wait_for(s.start(), 5) == "http://127.0.0.1:8888"
