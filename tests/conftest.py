import gc
import json

import pytest
import requests_mock

from magnum_spawner.common import answering, cloud as cloud_context
from magnum_spawner.common.admission import StartQueue
from magnum_spawner.zun.janitor import Janitor

from .recorded import CINDER_ROOT, FIXTURES, KEYSTONE, RecordedCloud

OS_VARS = ("OS_CLOUD", "OS_AUTH_URL", "OS_CLIENT_CONFIG_FILE", "OS_USERNAME",
           "OS_PASSWORD", "OS_PROJECT_NAME", "OS_APPLICATION_CREDENTIAL_ID",
           "OS_APPLICATION_CREDENTIAL_SECRET", "OS_AUTH_TYPE", "OS_REGION_NAME")

PASSWORD_AUTH = {
    "auth_url": f"{KEYSTONE}/v3",
    "username": "jhubuser",
    "password": "s3cret-pw",
    "project_name": "jhub",
    "user_domain_id": "default",
    "project_domain_id": "default",
}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    """The tests that wait seconds by design (marked slow) go first, in the
    order given (shuffled under CI): begun last, one would end make unit's run
    alone on one worker while the other stands idle."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    """No test sees the developer's clouds.yaml, OS_* variables or shared state."""
    for var in OS_VARS:
        monkeypatch.delenv(var, raising=False)
    empty = tmp_path / "no-clouds.yaml"
    empty.write_text("clouds: {}\n")
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(empty))
    monkeypatch.setenv("HOME", str(tmp_path))
    cloud_context.reset()
    yield
    gc.unfreeze()  # hub_gc_freeze: what one test froze is freed for the next
    cloud_context.reset()


@pytest.fixture(autouse=True)
def servers_answer(monkeypatch):
    """A started server answers at once (no server runs at the recorded
    addresses); tests of the wait itself set ``answering.probe`` back."""
    async def answers(url, timeout):
        return True
    monkeypatch.setattr(answering, "probe", answers)
    # each test its own start queues: a start a test abandons keeps its place
    StartQueue._queues.clear()


@pytest.fixture(autouse=True)
def quick_looks(request, monkeypatch):
    """The spawners look at the recorded cloud (and at a server that does not
    answer yet) every few hundredths of a second, not every half second, and
    Zun's client tries a request again after a hundredth: what they see and
    say is the same, sooner.  A real cloud keeps the real pace."""
    if request.node.get_closest_marker("localcloud"):
        return
    from magnum_spawner import ZunSpawner
    from magnum_spawner.magnum import MagnumSpawner
    from magnum_spawner.zun.client import ZunClient

    monkeypatch.setattr(ZunSpawner, "look_interval", 0.02)
    monkeypatch.setattr(ZunSpawner, "max_look_interval", 0.1)
    monkeypatch.setattr(answering.AnsweringMixin, "answer_interval", 0.02)
    monkeypatch.setattr(MagnumSpawner, "event_check_interval", 0.02)
    monkeypatch.setattr(ZunClient, "retry_delay", 0.01)


@pytest.fixture
def cloud():
    with requests_mock.Mocker() as m:
        yield RecordedCloud(m)


@pytest.fixture
def fast_janitor(monkeypatch):
    """Container removals retry in tenths of seconds instead of seconds."""
    monkeypatch.setattr(Janitor, "first_delay", 0.02)
    monkeypatch.setattr(Janitor, "passing_delay", 0.1)
    monkeypatch.setattr(Janitor, "max_delay", 0.2)
    monkeypatch.setattr(Janitor, "lost_create_window", 0.5)


@pytest.fixture
def cinder(cloud):
    """The recorded cloud plus Cinder's version document."""
    rec = json.loads((FIXTURES / "recorded-extra" / "cinder-v3-versions.json").read_text())
    cloud.m.get(f"{CINDER_ROOT}/v3/", json=rec["response"]["body"],
                headers=rec["response"]["headers"])
    return cloud
