"""One hub over two places (issue 21), against recorded Keystone, Zun and Cinder.

Place "north" is the recorded cloud (127.0.0.1); place "south" is a second
cloud whose Keystone, Zun and Cinder answer the same recorded exchanges at
127.0.0.2 (the catalog's addresses changed, values only).  Each place has its
own stateful Zun (tests/fake_zun.py) and Cinder (tests/fake_cinder.py).
"""

import json

import pytest
import requests
from jupyterhub.spawner import SpawnException
from prometheus_client import REGISTRY
from traitlets import TraitError

from magnum_spawner.common import options_form
from magnum_spawner.zun import places as places_module
from magnum_spawner.zun.cinder import CinderVolumes

from .conftest import PASSWORD_AUTH
from .fake_cinder import FakeCinder
from .fake_zun import LifecycleZun
from .helpers import FakeUser, make_spawner, user_id
from .recorded import CINDER, KEYSTONE, ZUN, future, response

SOUTH_HOST = "127.0.0.2"
SOUTH_KEYSTONE = KEYSTONE.replace("127.0.0.1", SOUTH_HOST)
SOUTH_ZUN = ZUN.replace("127.0.0.1", SOUTH_HOST)
SOUTH_CINDER = CINDER.replace("127.0.0.1", SOUTH_HOST)
SOUTH_AUTH = dict(PASSWORD_AUTH, auth_url=f"{SOUTH_KEYSTONE}/v3")
PLACES = [{"name": "north"}, {"name": "south", "auth": SOUTH_AUTH}]
HUB = "hub-1"

ZUN_QUOTA = "Quota exceeded for resources: ['containers']"
NO_HOST = "There are not enough hosts available."


def ours(name="alice"):
    return {
        "hub.jupyter.org/hub": HUB,
        "hub.jupyter.org/user": name,
        "hub.jupyter.org/user-id": str(user_id(name)),
        "hub.jupyter.org/managed-by": "magnum-spawner",
    }


def south_keystone(cloud):
    """Keystone of the second cloud: the recorded answers, its own addresses."""
    root = json.loads(json.dumps(response("keystone-v3")["body"]).replace(
        "127.0.0.1", SOUTH_HOST))
    cloud.m.get(f"{SOUTH_KEYSTONE}/v3", json=root)

    def token(request, context):
        rec = response("keystone-token-password")
        text = json.dumps(rec["body"]).replace("127.0.0.1", SOUTH_HOST)
        context.status_code = rec["status"]
        context.headers.update(rec["headers"])
        context.headers["X-Subject-Token"] = "gAAAAA-south-token"
        body = json.loads(text)
        body["token"]["expires_at"] = future()
        return body

    cloud.m.post(f"{SOUTH_KEYSTONE}/v3/auth/tokens", json=token)
    body = response("zun-root")["body"]
    cloud.m.get(f"{SOUTH_ZUN}/", json=json.loads(
        json.dumps(body).replace("127.0.0.1", SOUTH_HOST)))


class NoHostZun(LifecycleZun):
    """Zun whose scheduler finds no host: a create is accepted, then Error."""

    def __init__(self, base=ZUN):
        super().__init__(script=("Creating", "Error"), base=base)

    def create(self, sent):
        made = super().create(sent)
        made["status_reason"] = NO_HOST
        return made


class Place:
    def __init__(self, cloud, zun, cinder):
        self.cloud, self.zun, self.cinder = cloud, zun, cinder

    def containers(self):
        return [c["name"] for c in self.zun.alive()]

    def homes(self):
        return [v["name"] for v in self.cinder.live()]

    def refuse_creates_over_quota(self):
        def quota(b):
            b["errors"][0]["detail"] = ZUN_QUOTA
        self.cloud.reply("POST", f"{self.zun.base}/v1/containers?run=true",
                         "zun-container-delete-force-as-member", change=quota)

    def refuse_volumes_over_quota(self):
        self.cloud.reply("POST", f"{self.cinder.base}/volumes", "cinder-volume-create-over-quota")


@pytest.fixture
def two(cloud, fast_janitor):
    """``(north, south)``, each a Zun and a Cinder that make and delete."""
    south_keystone(cloud)
    made = {}

    def build(north_zun=None, south_zun=None):
        north = Place(cloud, (north_zun or LifecycleZun()).install(cloud.m),
                      FakeCinder().install(cloud.m))
        south = Place(cloud, (south_zun or LifecycleZun(base=SOUTH_ZUN)).install(cloud.m),
                      FakeCinder(SOUTH_CINDER).install(cloud.m))
        made["places"] = (north, south)
        return north, south
    return build


def spawner(name="alice", state=None, **config):
    settings = {"hub_id": HUB, "places": PLACES, "home_volume_size": 1,
                "home_volume_poll_interval": 0.01, "home_volume_timeout": 2.0,
                "place_policy": "fill"}
    settings.update(config)
    made = make_spawner(name, config=settings, user=FakeUser(name))
    if state:
        made.load_state(state)
    return made


# -- the setting ---------------------------------------------------------------------


@pytest.mark.parametrize("value, text", [
    ([{"cloud": "x"}], "place 1 has no name"),
    ([{"name": "a"}, {"name": "a"}], "two places are named 'a'"),
    ([{"name": "a", "zone": "z"}], "unknown keys \\['zone'\\]"),
    ([{"name": "a", "cloud": "x", "auth": {"auth_url": "y"}}], "both cloud and auth"),
])
def test_a_wrong_places_setting_is_refused_with_a_reason(value, text):
    with pytest.raises(TraitError, match=text):
        make_spawner(config={"places": value})


async def test_without_places_the_state_is_as_before(cloud, fast_janitor):
    zun = LifecycleZun().install(cloud.m)
    s = make_spawner(config={"hub_id": HUB})
    await s.start()
    assert [c["name"] for c in zun.alive()] == ["jupyter-alice"]
    assert "place" not in s.get_state()
    assert "availability_zone" not in cloud.requests("POST", "containers")[0].json()


async def test_places_of_one_project_share_one_session_and_client(cloud):
    zones = [{"name": "a", "availability_zone": "az-a"},
             {"name": "b", "availability_zone": "az-b"}]
    s = make_spawner(config={"places": zones})
    a, b = s.all_places()
    assert s.context_of(a) is s.context_of(b)
    assert s.zun_of(a) is s.zun_of(b)


async def test_a_place_zone_goes_into_the_create(cloud, fast_janitor):
    zun = LifecycleZun().install(cloud.m)
    s = make_spawner(config={"hub_id": HUB, "places": [
        {"name": "a", "availability_zone": "az-a"}]})
    await s.start()
    assert cloud.requests("POST", "containers")[0].json()["availability_zone"] == "az-a"
    assert s.get_state()["place"] == "a"
    assert zun.alive()


# -- the policies ----------------------------------------------------------------------


async def test_fill_starts_new_users_in_the_first_place(two):
    north, south = two()
    for name in ("alice", "bob"):
        await spawner(name).start()
    assert sorted(north.containers()) == ["jupyter-alice", "jupyter-bob"]
    assert south.containers() == [] and south.homes() == []


async def test_spread_starts_each_new_user_in_the_least_used_place(two):
    north, south = two()
    running = []
    for name in ("alice", "bob", "carol"):
        s = spawner(name, place_policy="spread")
        await s.start()
        running.append(s)
    assert sorted(north.containers()) == ["jupyter-alice", "jupyter-carol"]
    assert south.containers() == ["jupyter-bob"]
    assert [s.get_state()["place"] for s in running] == ["north", "south", "north"]


async def test_spread_counts_the_servers_a_restarted_hub_reattached(two):
    north, south = two()
    reattached = []  # (the hub keeps its users' spawners)
    for name in ("bob", "dan"):
        uuid = north.zun.server(f"jupyter-{name}")
        reattached.append(spawner(name, state={
            "container_id": uuid, "container_name": f"jupyter-{name}", "place": "north"}))
    s = spawner("alice", place_policy="spread")
    await s.start()
    assert south.containers() == ["jupyter-alice"]


# -- spilling over -------------------------------------------------------------------------


async def test_a_zun_quota_refusal_sends_a_new_user_to_the_next_place(two):
    north, south = two()
    north.refuse_creates_over_quota()
    s = spawner()
    await s.start()
    assert south.containers() == ["jupyter-alice"]
    assert south.homes() == ["home-alice"]
    # the home made in north for this start is gone: never a second home
    assert north.homes() == [] and north.containers() == []
    assert s.get_state()["place"] == "south"


async def test_no_valid_host_sends_a_new_user_to_the_next_place(two):
    north, south = two(north_zun=NoHostZun())
    s = spawner()
    await s.start()
    assert south.containers() == ["jupyter-alice"]
    assert south.homes() == ["home-alice"]
    # the Error container and the home made for it are removed from north
    assert north.zun.made, "north was tried first"
    assert north.containers() == [] and north.homes() == []


async def test_a_cinder_quota_refusal_sends_a_new_user_to_the_next_place(two):
    north, south = two()
    north.refuse_volumes_over_quota()
    s = spawner()
    await s.start()
    assert south.containers() == ["jupyter-alice"] and south.homes() == ["home-alice"]
    assert north.containers() == [] and north.homes() == []
    assert north.zun.made == []


async def test_every_place_full_says_so_and_leaves_nothing(two):
    north, south = two(south_zun=NoHostZun(base=SOUTH_ZUN))
    north.refuse_creates_over_quota()
    s = spawner()
    with pytest.raises(SpawnException) as info:
        await s.start()
    assert info.value.message == (
        "No place has room for your server (north: the container quota is full "
        "(containers); south: the cloud has no host with room for it). Try again "
        "later, or tell your administrator.")
    await s.janitor_of_place("south").wait(list(s.janitor_of_place("south").jobs.values()), 5)
    for place in (north, south):
        assert place.containers() == [] and place.homes() == []


async def test_a_refusal_that_is_not_for_room_does_not_spill_over(two):
    north, south = two()
    north.zun.fail("POST", r"/v1/containers\?run=true", 400)
    with pytest.raises(SpawnException) as info:
        await spawner().start()
    assert info.value.message.startswith("Could not create the server's container")
    assert south.zun.made == [] and south.homes() == []


# -- homes decide ---------------------------------------------------------------------------


async def test_a_user_with_a_home_starts_in_the_homes_place(two):
    north, south = two()
    home = south.cinder.add("home-alice", ours())
    s = spawner()  # fill would choose north
    await s.start()
    assert south.containers() == ["jupyter-alice"]
    assert north.containers() == [] and north.homes() == []
    assert s.get_state()["home_volume_id"] == home


async def test_a_renamed_users_home_is_followed_by_the_owner_id(two):
    north, south = two()
    south.cinder.add("home-alice", ours("alice"))
    bob = FakeUser("bob", id=user_id("alice"))  # alice renamed to bob: same id
    s = make_spawner("bob", user=bob, config={
        "hub_id": HUB, "places": PLACES, "home_volume_size": 1, "place_policy": "fill",
        "home_volume_poll_interval": 0.01})
    await s.start()
    assert south.containers() == ["jupyter-bob"]
    assert north.homes() == []


async def test_a_full_home_place_says_which_place_and_never_makes_a_second_home(two):
    north, south = two()
    south.cinder.add("home-alice", ours())
    south.refuse_creates_over_quota()
    with pytest.raises(SpawnException) as info:
        await spawner().start()
    assert info.value.message.startswith(
        "Your server cannot start in south, where your home folder is: the container "
        "quota is full (containers) (Quota exceeded for resources: ['containers']).")
    assert north.zun.made == [] and north.homes() == []
    assert south.homes() == ["home-alice"]


async def test_no_host_in_the_homes_place_names_zuns_reason(two):
    north, south = two(south_zun=NoHostZun(base=SOUTH_ZUN))
    south.cinder.add("home-alice", ours())
    s = spawner()
    with pytest.raises(SpawnException) as info:
        await s.start()
    assert info.value.message.startswith(
        "Your server cannot start in south, where your home folder is: the cloud has no "
        f"host with room for it ({NO_HOST})")
    janitor = s.janitor_of_place("south")
    await janitor.wait(list(janitor.jobs.values()), 5)
    assert south.containers() == [] and south.homes() == ["home-alice"]
    assert north.zun.made == [] and north.homes() == []


async def test_deleting_the_user_deletes_the_home_in_its_place(two):
    north, south = two()
    south.cinder.add("home-alice", ours())
    north.cinder.add("home-alice", {**ours(), "hub.jupyter.org/hub": "another-hub"})
    await spawner(delete_home_volume_on_delete=True).delete_forever()
    assert south.homes() == [] and north.homes() == ["home-alice"]


async def test_homes_in_two_places_stop_the_start_for_the_administrator(two):
    north, south = two()
    north.cinder.add("home-alice", ours())
    south.cinder.add("home-alice", ours())
    with pytest.raises(SpawnException) as info:
        await spawner().start()
    assert info.value.message == ("You have home folders in more than one place; tell "
                                  "your administrator, who should keep one of them.")
    assert "north: home-alice" in info.value.log_message
    assert north.zun.made == [] and south.zun.made == []


async def test_a_place_that_cannot_be_asked_for_homes_stops_a_start(two, monkeypatch):
    monkeypatch.setattr(CinderVolumes, "read_retry_delays", (0.01,))
    north, south = two()
    cloud = north.cloud
    cloud.m.get(f"{SOUTH_CINDER}/volumes/detail", exc=requests.exceptions.ConnectionError)
    with pytest.raises(SpawnException) as info:
        await spawner().start()
    assert "cannot look for your home folder in south" in info.value.message
    assert north.zun.made == [] and north.homes() == []


# -- a restarted hub, a place that is down, what a killed hub left --------------------------


async def test_a_restarted_hub_polls_each_server_in_its_own_place(two):
    north, south = two()
    uuid = south.zun.server("jupyter-alice")
    s = spawner(state={"container_id": uuid, "container_name": "jupyter-alice",
                       "place": "south"})
    assert await s.poll() is None
    south.zun.set(uuid, status="Stopped", status_detail="Exited(3) 1 second ago")
    assert await s.poll() == 3
    assert north.zun.gets == 0 and south.zun.gets >= 2


async def test_a_server_from_before_places_is_polled_in_the_hubs_own_project(two):
    north, south = two()
    uuid = north.zun.server("jupyter-alice")
    # places added to a running hub, its own project not first
    s = spawner(places=[PLACES[1], PLACES[0]],
                state={"container_id": uuid, "container_name": "jupyter-alice"})
    assert await s.poll() is None
    assert south.zun.gets == 0 and north.zun.gets == 1


async def test_a_place_that_is_down_never_reports_its_servers_stopped(two):
    north, south = two()
    uuid = south.zun.server("jupyter-alice")
    s = spawner(state={"container_id": uuid, "container_name": "jupyter-alice",
                       "place": "south"})
    north.cloud.m.get(f"{SOUTH_ZUN}/v1/containers/{uuid}",
                      exc=requests.exceptions.ConnectionError)
    assert await s.poll() is None


async def test_what_a_killed_hub_left_in_a_refusing_place_is_removed(two):
    north, south = two()
    # the hub died after south's create and before its removal; the server
    # record says a start was under way, with nothing recorded
    south.zun.server("jupyter-alice", labels={**ours(), "hub.jupyter.org/server": ""})
    s = spawner()  # (its own place: north, the first)
    assert await s.poll() == 0
    janitor = s.janitor_of_place("south")
    await janitor.wait(list(janitor.jobs.values()), 5)
    assert south.containers() == [] and north.containers() == []


def test_the_places_are_forgotten_with_the_cloud_contexts():
    from magnum_spawner.common import cloud as cloud_context
    places_module._in_use[("h", "1", "")] = None
    cloud_context.reset()
    assert places_module._in_use == {}


async def test_each_place_has_its_own_list_and_metrics_label(two):
    north, south = two()
    servers = []
    for name, place in (("alice", north), ("bob", south)):
        labels = {**ours(name), "hub.jupyter.org/server": ""}
        uuid = place.zun.server(f"jupyter-{name}", labels=labels)
        servers.append(spawner(name, use_hub_poller=True, state={
            "container_id": uuid, "container_name": f"jupyter-{name}",
            "place": "north" if place is north else "south"}))
    # a restarted hub reattaches both from one list in each place, no GET
    assert [await s.poll() for s in servers] == [None, None]
    assert north.zun.lists == 1 and south.zun.lists == 1
    assert north.zun.gets == 0 and south.zun.gets == 0
    for place in ("north", "south"):
        assert REGISTRY.get_sample_value("magnum_spawner_containers", {
            "hub": HUB, "place": place, "status": "Running"}) == 1


async def test_the_options_form_says_where_the_server_will_run(two):
    north, south = two()
    html = await options_form.render_options_form(spawner(flavors={}))
    assert ("Your server will run in north, or in the next place with room (south) "
            "if north is full.") in html
    south.cinder.add("home-alice", ours())
    html = await options_form.render_options_form(spawner(flavors={}))
    assert "Your server runs in south, where your home folder is." in html
    # one place: no form just for that
    assert await options_form.render_options_form(make_spawner(config={"flavors": {}})) == ""
