"""A renamed user's home never goes to a new user of the old name (issue 17, item 1).

JupyterHub keeps a renamed user's id and saved state; the old name is free for
someone else.  Against the stateful fake Cinder (recorded bodies, fake_cinder.py).
"""

import datetime
import logging

import pytest
from jupyterhub.spawner import SpawnException

from .fake_cinder import FakeCinder
from .helpers import HUB, FakeUser, make_spawner

ID_KEY = "hub.jupyter.org/user-id"
USER_KEY = "hub.jupyter.org/user"
UNUSED = "hub.jupyter.org/unused"
MADE_HERE = {"hub.jupyter.org/hub": HUB, "hub.jupyter.org/managed-by": "magnum-spawner"}
OWNER_SENTENCE = (
    "A home volume carries your name but the hub cannot tell whether it is yours; "
    "tell your administrator, who decides whose it is (see docs/home-volumes.md).")
JAN = datetime.datetime(2026, 1, 5, 9, 0)  # naive UTC, as JupyterHub stores it


@pytest.fixture
def cinder(cloud):
    yield FakeCinder().install(cloud.m)


def spawner(user, state=None, **config):
    settings = {"hub_id": HUB, "home_volume_size": 1, "home_volume_poll_interval": 0.01,
                "home_volume_timeout": 2.0}
    settings.update(config)
    made = make_spawner(user.name, config=settings, user=user)
    if state:
        made.load_state(state)
    return made


async def home_of(user, state=None, **config):
    """The volume id a start of ``user`` mounts, and the state it leaves."""
    s = spawner(user, state, **config)
    mounts = await s.prepare_home_volume()
    return mounts[0]["source"], s.get_state()


async def test_a_new_user_with_a_renamed_users_old_name_gets_a_home_of_their_own(cinder):
    alice = FakeUser("alice", id=11, created=JAN)
    first, state = await home_of(alice)
    # the administrator renames alice to bob: same id, same saved state
    bob = FakeUser("bob", id=11, created=JAN)
    again, state = await home_of(bob, state)
    assert again == first
    # the rename is recorded on the volume (its name stays home-alice)
    assert cinder.volumes[first]["metadata"][USER_KEY] == "bob"
    # a new person signs up as alice
    new_alice = FakeUser("alice", id=12, created=JAN + datetime.timedelta(days=30))
    theirs, _ = await home_of(new_alice)
    assert theirs != first, "the new alice was given bob's files"
    assert cinder.volumes[theirs]["metadata"][ID_KEY] == "12"
    assert cinder.volumes[first]["metadata"][ID_KEY] == "11"


async def test_a_renamed_user_without_saved_state_is_followed_by_id(cinder):
    alice = FakeUser("alice", id=11, created=JAN)
    first, _ = await home_of(alice)
    # e.g. the state was lost: bob is found by his id, not his (new) name
    bob = FakeUser("bob", id=11, created=JAN)
    found, state = await home_of(bob)
    assert found == first
    assert cinder.creates == 1
    assert state["home_volume_id"] == first


async def test_an_old_home_made_before_the_account_stops_the_start(cinder, caplog):
    # made before ids were recorded, for the alice who is now bob (or who was
    # deleted); the new alice has no saved state that names it
    old = cinder.add(name="home-alice", metadata={**MADE_HERE, USER_KEY: "alice"},
                     created_at="2026-02-01T10:00:00.000000")
    new_alice = FakeUser("alice", id=12, created=datetime.datetime(2026, 3, 1))
    with pytest.raises(SpawnException) as info, caplog.at_level(logging.WARNING):
        await home_of(new_alice)
    assert info.value.message == OWNER_SENTENCE
    assert info.value.reason == "home-volume-owner"
    # the operator's log names the volume, what is wrong, and the id to set
    assert old in info.value.log_message
    assert "made before your account" in info.value.log_message
    assert f"{ID_KEY}=12" in info.value.log_message
    assert cinder.creates == 0
    assert ID_KEY not in cinder.volumes[old]["metadata"]


async def test_an_old_home_with_only_a_name_is_not_guessed(cinder):
    # an administrator's volume (no hub marks at all), no state names it
    cinder.add(name="home-alice", metadata={}, created_at="2026-04-01T10:00:00.000000")
    with pytest.raises(SpawnException) as info:
        await home_of(FakeUser("alice", id=12, created=JAN))
    assert info.value.message == OWNER_SENTENCE
    assert "records no owner id" in info.value.log_message
    assert cinder.creates == 0


async def test_an_old_home_the_hub_recorded_for_this_user_is_adopted(cinder):
    # the upgrade: a volume made before ids were recorded, named in the state
    old = cinder.add(name="home-alice", metadata={**MADE_HERE, USER_KEY: "alice"},
                     created_at="2026-02-01T10:00:00.000000")
    alice = FakeUser("alice", id=11, created=JAN)
    found, _ = await home_of(alice, {"home_volume_id": old})
    assert found == old
    assert cinder.volumes[old]["metadata"][ID_KEY] == "11"
    # adopted: later starts need no state, and a later alice does not get it
    assert (await home_of(alice))[0] == old
    later = FakeUser("alice", id=13, created=datetime.datetime(2026, 6, 1))
    assert (await home_of(later))[0] != old


async def test_a_renamed_users_old_home_recorded_in_state_is_adopted(cinder):
    # renamed before the upgrade: the volume says alice, the hub's record says bob's
    old = cinder.add(name="home-alice", metadata={**MADE_HERE, USER_KEY: "alice"},
                     created_at="2026-02-01T10:00:00.000000")
    bob = FakeUser("bob", id=11, created=JAN)
    assert (await home_of(bob, {"home_volume_id": old}))[0] == old
    assert cinder.volumes[old]["metadata"][ID_KEY] == "11"
    assert cinder.volumes[old]["metadata"][USER_KEY] == "bob"


async def test_a_home_recorded_in_state_with_another_users_id_stops_the_start(cinder):
    theirs = cinder.add(name="home-alice", metadata={**MADE_HERE, USER_KEY: "alice",
                                                     ID_KEY: "11"})
    with pytest.raises(SpawnException) as info:
        await home_of(FakeUser("alice", id=12, created=JAN), {"home_volume_id": theirs})
    assert info.value.message == OWNER_SENTENCE
    assert "belongs to user id 11" in info.value.log_message
    assert cinder.creates == 0


async def test_an_unsure_old_home_does_not_block_a_user_who_has_their_own(cinder, caplog):
    mine = cinder.add(name="home-alice", metadata={**MADE_HERE, USER_KEY: "alice",
                                                   ID_KEY: "12"})
    cinder.add(name="home-alice", metadata={}, created_at="2025-12-01T10:00:00.000000")
    with caplog.at_level(logging.WARNING):
        found, _ = await home_of(FakeUser("alice", id=12, created=JAN))
    assert found == mine
    assert "made before your account" in caplog.text


async def test_delete_forever_of_a_new_user_never_deletes_the_renamed_users_home(cinder):
    bobs = cinder.add(name="home-alice", metadata={**MADE_HERE, USER_KEY: "bob",
                                                   ID_KEY: "11"})
    new_alice = spawner(FakeUser("alice", id=12, created=JAN),
                        delete_home_volume_on_delete=True)
    await new_alice.delete_forever()
    assert cinder.deleted == []
    bob = spawner(FakeUser("bob", id=11, created=JAN), delete_home_volume_on_delete=True)
    await bob.delete_forever()
    assert cinder.deleted == [bobs]


def test_clock_slack_between_the_hub_and_cinder():
    from magnum_spawner.common import owners

    owner = owners.Owner(HUB, "12", "alice", owners._utc(JAN))
    a_minute_early = (JAN - datetime.timedelta(minutes=1)).isoformat()
    an_hour_early = (JAN - datetime.timedelta(hours=1)).isoformat()
    assert not owner.made_before_account(a_minute_early)
    assert owner.made_before_account(an_hour_early)
    assert owner.made_before_account(an_hour_early + "Z")
    assert not owners.Owner(HUB, "12", "alice").made_before_account(an_hour_early)
