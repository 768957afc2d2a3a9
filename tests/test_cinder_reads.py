"""Cinder reads that fail once are sent again (fault suite); writes are sent
again only when a look shows Cinder did not do them (test_cinder_faults.py).

The fault burst (tests/e2e/burst.py) lost a third of its spawns to one 5xx or
reset on ``GET /volumes/detail`` while preparing the home volume.
"""

import pytest
import requests
from jupyterhub.spawner import SpawnException

from magnum_spawner.common.sdk import SdkService
from magnum_spawner.zun.cinder import CinderVolumes

from .helpers import spawner_for, volume_mounts
from .recorded import DETAIL, VID, listed, response, serve_lists, zun_starts
from .test_volumes import OURS, zun_creates


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    monkeypatch.setattr(SdkService, "read_retry_delays", (0.01, 0.01))
    monkeypatch.setattr(CinderVolumes, "read_retry_delays", (0.01, 0.01))


def fail_first(cloud, *failures):
    """The first searches fail as given, then the recorded list answers."""
    rec = response("cinder-volumes-detail-filter-name")
    page = dict(rec["body"], volumes=[listed(metadata=OURS)])
    answers = [f if isinstance(f, dict) else {"status_code": f, "json": {
        "computeFault": {"code": f, "message": "Internal Server Error"}}} for f in failures]
    answers.append({"status_code": 200, "json": page, "headers": rec["headers"]})
    cloud.m.get(DETAIL, answers)


@pytest.mark.parametrize("failures", [
    (500,), (503, 502), ({"exc": requests.exceptions.ConnectionError("reset")},),
])
async def test_a_search_that_fails_once_or_twice_is_sent_again(cinder, failures):
    fail_first(cinder, *failures)
    zun_starts(cinder)
    spawner = spawner_for()
    await spawner.start()
    assert volume_mounts(zun_creates(cinder)[0]) == [
        {"source": VID, "destination": "/home/jovyan"}]


async def test_a_search_failing_every_time_stops_the_spawn_with_a_sentence(cinder):
    fail_first(cinder, 500, 500, 500, 500, 500, 500)
    zun_starts(cinder)
    spawner = spawner_for()
    with pytest.raises(SpawnException) as info:
        await spawner.start()
    assert info.value.message.startswith("Could not prepare the home volume")


async def test_every_cinder_call_of_a_start_carries_its_request_id(cinder):
    # The README promises it: Cinder's log names the start (issue 17, item 8).
    # Reads ran on the thread pool without the start's context, so the
    # look-ups went out without the header.
    serve_lists(cinder, by_name=[listed(metadata=OURS)])
    zun_starts(cinder)
    spawner = spawner_for()
    await spawner.start()
    sent = cinder.requests(None, "8776")
    assert [r for r in sent if "/volumes" in r.path], "the start looked for its volume"
    assert {r.headers.get("X-OpenStack-Request-ID") for r in sent} == {spawner._request_id}
