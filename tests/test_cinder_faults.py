"""A start goes through a transient Cinder fault; a volume is never made twice
or lost (issue 17, "every spawn through the fault storm").

The fault burst lost spawns to "Could not prepare the home volume: cannot reach
the Cinder API (the connection was reset)".  Here the stateful fake Cinder
injects the fault proxy's kinds into single calls: ``error`` and ``reset`` (not
done), ``lost`` and ``late-error`` (done, then no answer or a 502).
"""

import pytest
from jupyterhub.spawner import SpawnException

from magnum_spawner.zun.cinder import CinderVolumes

from .fake_cinder import FakeCinder
from .helpers import spawner_for
from .test_volumes import OURS, UNUSED

CREATE = r"/volumes$"
ONE = r"/volumes/[^/]+$"
ACTION = r"/volumes/[^/]+/action$"
ALL_KINDS = ["error", "reset", "lost", "late-error"]


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    monkeypatch.setattr(CinderVolumes, "read_retry_delays", (0.01,) * 4)
    monkeypatch.setattr(CinderVolumes, "write_retry_delays", (0.01,) * 4, raising=False)


@pytest.fixture
def cinder(cloud):
    yield FakeCinder().install(cloud.m)


async def mounted(**config):
    mounts = await spawner_for(**config).prepare_home_volume()
    return mounts[0]["source"]


@pytest.mark.parametrize("kind", ALL_KINDS)
async def test_a_create_that_fails_on_the_way_makes_exactly_one_volume(cinder, kind):
    cinder.fail("POST", CREATE, kind)
    vid = await mounted()
    assert [v["id"] for v in cinder.live()] == [vid], "one volume, the one mounted"
    # Cinder did the work for lost and late-error: that volume is adopted
    assert cinder.creates == 1
    assert cinder.volumes[vid]["metadata"][UNUSED] == "no"


async def test_creates_failing_several_times_in_a_row_still_make_one_volume(cinder):
    cinder.fail("POST", CREATE, "reset", "error", "late-error")
    vid = await mounted()
    assert [v["id"] for v in cinder.live()] == [vid]


async def test_a_create_refused_every_time_stops_with_a_sentence_and_no_stray(cinder):
    cinder.fail("POST", CREATE, *["error"] * 5)
    with pytest.raises(SpawnException) as info:
        await mounted()
    assert info.value.message.startswith("Could not prepare the home volume")
    assert cinder.live() == []


@pytest.mark.parametrize("kind", ALL_KINDS)
async def test_a_metadata_update_that_fails_on_the_way_is_sent_again(cinder, kind):
    cinder.fail("PUT", ONE, kind)
    vid = await mounted()
    assert cinder.volumes[vid]["metadata"][UNUSED] == "no"


@pytest.mark.parametrize("kind", ALL_KINDS)
async def test_an_extend_that_fails_on_the_way_grows_the_volume_once(cinder, kind):
    vid = cinder.add(metadata=OURS)
    cinder.fail("POST", ACTION, kind)
    assert await mounted(home_volume_size=3) == vid
    assert cinder.volumes[vid]["size"] == 3
    assert cinder.extends == 1


@pytest.mark.parametrize("kind", ALL_KINDS)
async def test_reads_that_fail_on_the_way_are_sent_again(cinder, kind):
    vid = cinder.add(metadata=OURS)
    cinder.fail("GET", r"/volumes/detail", kind, kind)
    cinder.fail("GET", ONE, kind)
    assert await mounted() == vid
    assert cinder.creates == 0


async def test_a_spare_delete_that_fails_on_the_way_is_not_an_error(cinder):
    used = cinder.add(metadata=OURS)
    spare = cinder.add(metadata={**OURS, UNUSED: "yes"})
    cinder.fail("DELETE", ONE, "lost")
    assert await mounted() == used
    assert cinder.deleted == [spare]


async def test_a_volume_cinder_is_slow_to_make_is_awaited_within_start_timeout(cinder):
    # the burst on two busy cores: ten volumes at once were still "creating"
    # after home_volume_timeout; Cinder working is progress, not a stuck volume
    cinder.creating_looks = 15
    vid = await mounted(home_volume_timeout=0.1, home_volume_poll_interval=0.02)
    assert [v["id"] for v in cinder.live()] == [vid]
    assert cinder.volumes[vid]["status"] == "available"


async def test_a_previous_container_that_keeps_the_volume_still_times_out(cinder):
    cinder.add(metadata=OURS, status="in-use")
    with pytest.raises(SpawnException) as info:
        await mounted(home_volume_timeout=0.1, home_volume_poll_interval=0.02)
    assert "was still in-use after 0.1 s" in info.value.message
