"""The spawn page on the Magnum path: the pod's events as plain steps.

The events are real ones (``tests/fixtures/recorded-local/kube-events-*.json``:
kube-scheduler and kubelet 1.20 with containerd, on the local cloud's real
nodes), read through KubeSpawner's own ``progress()`` (its event reflector is
replaced by the recorded list) as JupyterHub reads them.
"""

import asyncio
import json
import pathlib

import pytest

from magnum_spawner.magnum import progress as steps
from magnum_spawner.magnum import spawner as magnum_spawner

from .helpers import assert_forward, follow_progress
from .test_magnum_spawner import make

RECORDED = pathlib.Path(__file__).parent / "fixtures" / "recorded-local"


def recorded(name):
    return json.loads((RECORDED / f"kube-events-{name}.json").read_text())


@pytest.fixture(autouse=True)
def fresh_link():
    magnum_spawner.reset_link()
    yield
    magnum_spawner.reset_link()


class Reflector:
    def __init__(self, events):
        self.events = events


class QuickKubeSpawner:
    """``asyncio`` as KubeSpawner's module sees it, with its waits a hundred
    times shorter: progress() reads the pod's events every 10 ms, not every
    second (the same reads, in the same order)."""

    def __getattr__(self, name):
        return getattr(asyncio, name)

    @staticmethod
    async def sleep(delay, result=None):
        return await asyncio.sleep(delay / 100, result)


@pytest.fixture(autouse=True)
def quick_event_reads(monkeypatch):
    import kubespawner.spawner

    monkeypatch.setattr(kubespawner.spawner, "asyncio", QuickKubeSpawner())


async def watch(events, monkeypatch):
    """progress() of a spawner whose pod has ``events`` (as the hub reads it)."""
    spawner = make("ada")
    spawner.slow_spawn_message_threshold = 0

    async def no_watch(*args, **kwargs):
        return None

    monkeypatch.setattr(spawner, "_start_watching_events", no_watch)
    monkeypatch.setattr(spawner, "ensure_cluster", no_watch)  # the hub's kubeconfig is in use
    key = spawner._get_reflector_key("events")
    reflector = Reflector([])
    monkeypatch.setitem(type(spawner).reflectors, key, reflector)
    for event in events:
        event["involvedObject"]["name"] = spawner.pod_name
    spawner._start_future = asyncio.get_running_loop().create_future()
    seen = []
    reader = follow_progress(spawner, seen)
    # the events arrive while the page listens
    for event in events:
        reflector.events.append(event)
        await asyncio.sleep(0)
    await asyncio.sleep(0.011)  # KubeSpawner's next read of the events (1.1 s)
    spawner._start_future.set_result(None)
    await asyncio.wait_for(reader, 5)
    return seen


async def test_a_start_with_a_pull_reads_as_plain_steps(monkeypatch):
    events = await watch(recorded("pulled"), monkeypatch)
    words = [e["message"] for e in events]
    assert words[0] == "A machine was found for your server"
    assert words[1] == "Downloading the software image"
    assert words[2].startswith("The software image is downloaded (in ")
    assert words[-2:] == ["Your server is set up; starting it", "Your server is running"]
    assert_forward(events)
    assert events[-1]["progress"] == steps.STARTED
    # no raw Kubernetes wording reaches the page
    assert not any("[Normal]" in w or "Successfully" in w for w in words)


async def test_an_image_already_on_the_node_says_so(monkeypatch):
    events = await watch(recorded("present"), monkeypatch)
    words = [e["message"] for e in events]
    assert "The software image is already on the machine" in words
    assert "Downloading the software image" not in words
    assert_forward(events)


async def test_a_missing_image_is_a_sentence_naming_it(monkeypatch):
    raw = recorded("missing-image")
    image = next(e["message"] for e in raw if e["reason"] == "Pulling").split('"')[1]
    events = await watch(raw, monkeypatch)
    failures = [e["message"] for e in events if "could not" in e["message"]
                or "does not exist" in e["message"]]
    assert failures, [e["message"] for e in events]
    assert image in failures[0]
    assert_forward(events)
    # the bar does not pretend the server is on its way
    assert events[-1]["progress"] < steps.PULLED


async def test_an_unschedulable_pod_says_no_machine_has_room(monkeypatch):
    events = await watch(recorded("unschedulable"), monkeypatch)
    assert events, "no event on the page"
    assert events[0]["message"].startswith("No machine has room for your server yet (")
    assert "Insufficient memory" in events[0]["message"]
    assert events[0]["progress"] == 0


async def test_the_pods_events_are_read_once_the_hubs_kubeconfig_is_in_use(monkeypatch):
    """The spawn page opens while the first start signs the hub's certificate: the
    event reflector is made only once the hub's kubeconfig is the clients' (made
    before, it listed nowhere, failed, and no step of the pod reached the page),
    and one that failed so is replaced."""
    spawner = make("ada")
    spawner.slow_spawn_message_threshold = 0
    order = []

    async def ensure(force=None, recheck=True):
        await asyncio.sleep(0.01)  # signing the certificate
        order.append("kubeconfig in use")

    async def start_watching_events(replace=False):
        order.append(("events watched", replace))

    monkeypatch.setattr(spawner, "ensure_cluster", ensure)
    monkeypatch.setattr(spawner, "_start_watching_events", start_watching_events)
    failed = Reflector([])
    failed.first_load_future = asyncio.get_running_loop().create_future()
    failed.first_load_future.set_exception(RuntimeError("listed with no API server"))
    monkeypatch.setitem(type(spawner).reflectors, spawner._get_reflector_key("events"),
                        failed)
    spawner._start_future = asyncio.get_running_loop().create_future()
    spawner._start_future.set_result(None)
    await asyncio.wait_for(follow_progress(spawner, []), 5)
    assert order[:2] == ["kubeconfig in use", ("events watched", True)], order


def test_repeated_warnings_are_said_once():
    raw = recorded("missing-image")
    said = [steps.step(e) for e in raw + raw]
    assert all(s is None or isinstance(s[1], str) for s in said)


async def test_a_missing_image_ends_the_start_at_once_and_removes_the_pod(monkeypatch):
    from jupyterhub.spawner import SpawnException
    from kubespawner import KubeSpawner

    raw = recorded("missing-image")
    image = next(e["message"] for e in raw if e["reason"] == "Pulling").split('"')[1]
    spawner = make("ada", home_volume_size=0)
    key = spawner._get_reflector_key("events")
    for event in raw:
        event["involvedObject"]["name"] = spawner.pod_name
    monkeypatch.setitem(type(spawner).reflectors, key, Reflector(raw))
    stopped = []

    async def ensure(force=None, recheck=True):
        return None

    async def kube_start(self):
        await asyncio.sleep(3600)  # the kubelet retries the pull until start_timeout

    async def kube_stop(self, now=False):
        stopped.append(now)

    monkeypatch.setattr(spawner, "ensure_cluster", ensure)
    monkeypatch.setattr(KubeSpawner, "start", kube_start)
    monkeypatch.setattr(KubeSpawner, "stop", kube_stop)
    with pytest.raises(SpawnException) as e:
        await asyncio.wait_for(spawner.start(), 10)
    assert image in e.value.message
    assert stopped == [True]


async def test_the_queue_words_reach_the_spawn_page_then_the_pods_steps(monkeypatch):
    """A start beyond concurrent_starts: the spawn page says how many start
    before it (as on the Zun path), then the pod's steps follow, the bar forward."""
    from kubespawner import KubeSpawner

    from magnum_spawner.common import answering
    from magnum_spawner.common.admission import StartQueue

    StartQueue._queues.pop("magnum-page", None)
    queue = StartQueue.for_hub("magnum-page")
    spawner = make("ada", hub_id="magnum-page", concurrent_starts=1, home_volume_size=0)
    spawner._spawn_pending = True  # as JupyterHub sets it around start()
    raw = recorded("pulled")
    for event in raw:
        event["involvedObject"]["name"] = spawner.pod_name
    reflector = Reflector([])
    monkeypatch.setitem(type(spawner).reflectors, spawner._get_reflector_key("events"),
                        reflector)

    async def nothing(*args, **kwargs):
        return None

    async def answers(url, timeout):
        return True

    def kube_start(self):  # as KubeSpawner's: a future, the pod's events as it starts
        async def pod():
            for event in raw:
                reflector.events.append(event)
                await asyncio.sleep(0)
            return "http://10.0.0.9:8888"

        self._start_future = asyncio.ensure_future(pod())
        return self._start_future

    monkeypatch.setattr(spawner, "_start_watching_events", nothing)
    monkeypatch.setattr(spawner, "ensure_cluster", nothing)
    monkeypatch.setattr(KubeSpawner, "start", kube_start)
    monkeypatch.setattr(KubeSpawner, "poll", nothing)
    monkeypatch.setattr(answering, "probe", answers)
    await queue.enter(1)  # another student's start holds the only place
    start = asyncio.ensure_future(spawner.start())
    seen = []

    async def read():  # the spawn page
        async for event in spawner.progress():
            seen.append(event)

    reader = asyncio.ensure_future(read())
    await asyncio.sleep(0.5)
    assert [e["message"] for e in seen] == [
        "1 student is starting before you; your server starts in turn"]
    queue.leave()
    assert await asyncio.wait_for(start, 5) == "http://10.0.0.9:8888"
    await asyncio.sleep(0.1)  # KubeSpawner's last read of the events (10 ms here)
    spawner._spawn_pending = False
    await asyncio.wait_for(reader, 5)
    words = [e["message"] for e in seen]
    assert words[0].startswith("1 student is starting before you")
    assert words[1] == "A machine was found for your server"
    assert words[-1] == "Your server is running"
    assert_forward(seen)


def test_a_home_folder_still_attaching_reads_as_a_step_that_is_tried_again():
    # the kubelet's event when it looks before the volume is mounted on its node
    # (the local cluster's first seconds, a Cinder attach still under way)
    event = {"type": "Warning", "reason": "FailedMount", "message": (
        'MountVolume.SetUp failed for volume "pvc-4f1c" : hostPath type check failed: '
        '/var/lib/magnum-local/claims/pvc-4f1c is not a directory')}
    progress, words = steps.step(event)
    assert progress is None  # the bar stays where it was: nothing has failed yet
    assert words.startswith("Attaching your home folder; the machine tries again (")
    assert "not attached" not in words and "failed" not in words.split("(")[0]
