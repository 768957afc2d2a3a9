"""Cinder home volumes, against recorded Cinder and Zun answers.

Cinder's answers are the recordings in fixtures/recorded-local (values changed
where a test needs another status, size, id or metadata; never the shape).
openstacksdk first reads Cinder's version document: fixtures/recorded-extra.
"""

import asyncio
import json
import logging
import re
import time
from urllib.parse import urlsplit

import pytest
from jupyterhub.spawner import SpawnException

from magnum_spawner.common import names

from .fake_cinder import FakeCinder
from .helpers import HUB, make_spawner, spawner_for, user_id, volume_mounts
from .recorded import (
    CINDER,
    DETAIL,
    VID,
    VOLUME,
    ZUN_UUID,
    body,
    listed,
    response,
    sample,
    searches,
    serve_lists,
    volume_change,
    zun_starts,
)

OTHER_VID = "0b9f4a4e-5c3d-4f7e-8a1b-2c3d4e5f6a7b"
OTHER = f"{CINDER}/volumes/{OTHER_VID}"
CREATE = f"{CINDER}/volumes"

OURS = {
    "hub.jupyter.org/hub": HUB,
    "hub.jupyter.org/user": "alice",
    "hub.jupyter.org/user-id": str(user_id("alice")),
    "hub.jupyter.org/managed-by": "magnum-spawner",
}
UNUSED = "hub.jupyter.org/unused"
QUOTA_SENTENCE = "The storage quota of this hub's cloud project is full; tell your administrator."


def accept_updates(cloud):
    """Answer volume updates (PUT) with Cinder's api-ref sample; returns a reader."""
    rec = sample("cinder-api-samples/volume-update-response.json")
    cloud.m.put(re.compile(re.escape(CREATE) + "/[^/]+$"), json=rec)
    return lambda: cloud.requests("PUT", "/volumes/")


def zun_creates(cloud):
    return [r.json() for r in cloud.requests("POST", "/v1/containers")]


def cinder_requests(cloud, method=None):
    return [r for r in cloud.requests(method, "127.0.0.1:8776/v3/a")]


# -- names, pure ------------------------------------------------------------------


def test_volume_names_never_collide_between_users_or_servers():
    name = names.volume_name
    assert name("home-{username}", "alice") == "home-alice"
    assert name("home-{username}", "Alice") != name("home-{username}", "alice")
    assert name("home-{username}", "a.b@x.org") != name("home-{username}", "a.b-x.org")
    assert name("home-{user_server}", "alice", "gpu") == "home-alice--gpu"
    # "alice--gpu" as a user name is not plain, so it is escaped, never equal
    assert name("home-{user_server}", "alice--gpu") != name("home-{user_server}", "alice", "gpu")


def test_a_bad_template_is_refused_at_config_time():
    with pytest.raises(Exception, match="home_volume_name_template 'home-{nobody}'"):
        make_spawner(config={"home_volume_name_template": "home-{nobody}"})


# -- off ------------------------------------------------------------------------


async def test_size_zero_means_no_cinder_call_and_no_mounts(cinder):
    zun_starts(cinder)
    spawner = spawner_for(home_volume_size=0)
    await spawner.start()
    assert not cinder.requests(None, "8776")
    body_sent = zun_creates(cinder)[0]
    assert volume_mounts(body_sent) == []
    assert "CHOWN_HOME" not in body_sent["environment"]
    assert not [a for a in body_sent["command"] if "hide_globs" in a]
    assert "home_volume_id" not in spawner.get_state()


async def test_a_per_user_size_callable_may_turn_volumes_off(cinder):
    zun_starts(cinder)

    async def size(spawner):
        return None if spawner.user.name == "alice" else 5

    await spawner_for(home_volume_size=size).start()
    assert not cinder.requests(None, "8776")
    assert volume_mounts(zun_creates(cinder)[0]) == []


# -- finding ----------------------------------------------------------------------


async def test_start_mounts_the_volume_found_by_name(cinder):
    serve_lists(cinder, by_name=[listed(metadata=OURS)])
    zun_starts(cinder)
    spawner = spawner_for()
    await spawner.start()
    sent = zun_creates(cinder)[0]
    assert volume_mounts(sent) == [{"source": VID, "destination": "/home/jovyan"}]
    assert sent["environment"]["CHOWN_HOME"] == "yes"
    assert sent["environment"]["CHOWN_HOME_OPTS"] == "-R"
    # ext4's lost+found stays on the volume but not in the file browser.
    assert "--ContentsManager.hide_globs=lost+found" in sent["command"]
    assert "--ContentsManager.hide_globs=__pycache__" in sent["command"]
    assert spawner.get_state()["home_volume_id"] == VID
    assert not cinder_requests(cinder, "POST"), "nothing is created when it exists"
    assert {"name": "home-alice"} in searches(cinder)


async def test_found_by_metadata_after_the_template_was_renamed(cinder):
    serve_lists(cinder, by_name=[], by_metadata=[listed(metadata=dict(OURS))])
    zun_starts(cinder)
    spawner = spawner_for(home_volume_name_template="jhub-{username}", home_mount_path="/home/alice")
    await spawner.start()
    assert volume_mounts(zun_creates(cinder)[0]) == [
        {"source": VID, "destination": "/home/alice"}]
    by_meta = [json.loads(q["metadata"]) for q in searches(cinder) if "metadata" in q]
    # Cinder reads the filter as a dict literal: all three keys must match.
    # First by the owner's id, then by the name of homes made before ids.
    assert by_meta == [{k: v for k, v in OURS.items() if k != "hub.jupyter.org/user"},
                       {k: v for k, v in OURS.items() if k != "hub.jupyter.org/user-id"}]
    assert {"name": "jhub-alice"} in searches(cinder)
    assert not cinder_requests(cinder, "POST")


async def test_the_volume_in_state_is_preferred_and_not_counted_twice(cinder):
    cinder.reply("GET", VOLUME, "cinder-volume-show-available", change=volume_change(metadata=OURS))
    serve_lists(cinder, by_name=[listed(metadata=OURS)], by_metadata=[listed(metadata=OURS)])
    spawner = spawner_for()
    spawner.load_state({"home_volume_id": VID})
    mounts = await spawner.prepare_home_volume()
    assert mounts == [{"source": VID, "destination": "/home/jovyan"}]
    assert cinder.requests("GET", f"volumes/{VID}")


async def test_a_volume_in_state_that_is_gone_is_forgotten_and_replaced(cinder):
    cinder.m.get(VOLUME, **_kw(response("cinder-volume-show-404")))
    serve_lists(cinder)
    cinder.reply("POST", CREATE, "cinder-volume-create", change=volume_change(id=OTHER_VID))
    cinder.reply("GET", OTHER, "cinder-volume-show-available", change=volume_change(id=OTHER_VID))
    accept_updates(cinder)
    spawner = spawner_for()
    spawner.load_state({"home_volume_id": VID})
    mounts = await spawner.prepare_home_volume()
    assert mounts[0]["source"] == OTHER_VID
    assert spawner.get_state()["home_volume_id"] == OTHER_VID


def _kw(rec):
    kw = {"status_code": rec["status"], "headers": rec["headers"]}
    if rec["body"] in (None, ""):
        kw["text"] = ""
    else:
        kw["json"] = rec["body"]
    return kw


# -- creating ---------------------------------------------------------------------


async def test_missing_volume_is_created_with_our_metadata_and_awaited(cinder):
    serve_lists(cinder)
    made = {"billing": "physics", **OURS, UNUSED: "yes"}
    cinder.reply("POST", CREATE, "cinder-volume-create",
                 change=volume_change(size=2, metadata=made))
    cinder.replies("GET", VOLUME,
                   ("cinder-volume-show-available",
                    volume_change(status="creating", size=2, metadata=made)),
                   ("cinder-volume-show-available",
                    volume_change(status="creating", size=2, metadata=made)),
                   ("cinder-volume-show-available", volume_change(size=2, metadata=made)))
    updates = accept_updates(cinder)
    spawner = spawner_for(
        home_volume_size=2, home_volume_type="fast",
        home_volume_availability_zone=lambda s: "nova",
        home_volume_metadata={"billing": "physics", "hub.jupyter.org/user": "mallory"},
    )
    mounts = await spawner.prepare_home_volume()
    assert mounts == [{"source": VID, "destination": "/home/jovyan"}]
    posts = cinder_requests(cinder, "POST")
    assert len(posts) == 1
    assert posts[0].json() == {"volume": {
        "name": "home-alice",
        "size": 2,
        # identity cannot be overridden; "unused" until first handed to a container
        "metadata": {"billing": "physics", **OURS, UNUSED: "yes"},
        "description": "JupyterHub home of alice on hub hub-1",
        "volume_type": "fast",
        "availability_zone": "nova",
    }}
    assert [r.json() for r in updates()] == [
        {"volume": {"metadata": {"billing": "physics", **OURS, UNUSED: "no"}}}]
    assert len(cinder.requests("GET", f"volumes/{VID}")) == 3
    assert spawner.get_state()["home_volume_id"] == VID
    messages = [e["message"] for e in spawner._events]
    assert "Creating your home folder (2 GiB)" in messages


async def test_per_server_template_gives_a_named_server_its_own_volume(cinder):
    serve_lists(cinder, by_metadata=[listed(metadata=OURS)])  # alice's per-user volume
    cinder.reply("POST", CREATE, "cinder-volume-create", change=volume_change(id=OTHER_VID))
    cinder.reply("GET", OTHER, "cinder-volume-show-available", change=volume_change(id=OTHER_VID))
    accept_updates(cinder)
    spawner = make_spawner(servername="gpu", config={
        "hub_id": HUB, "home_volume_size": 1, "home_volume_poll_interval": 0.01,
        "home_volume_name_template": "home-{user_server}",
    })
    mounts = await spawner.prepare_home_volume()
    assert mounts[0]["source"] == OTHER_VID
    sent = cinder_requests(cinder, "POST")[0].json()["volume"]
    assert sent["name"] == "home-alice--gpu"
    assert sent["metadata"] == {**OURS, "hub.jupyter.org/server": "gpu", UNUSED: "yes"}


async def test_a_volume_that_is_being_deleted_is_awaited_then_replaced(cinder):
    serve_lists(cinder, by_name=[listed(status="deleting", metadata=OURS)])
    cinder.m.get(VOLUME, [
        _kw(response("cinder-volume-show-available")) | {"json": _vol(status="deleting")},
        _kw(response("cinder-volume-show-404")),
    ])
    cinder.reply("POST", CREATE, "cinder-volume-create", change=volume_change(id=OTHER_VID))
    cinder.reply("GET", OTHER, "cinder-volume-show-available", change=volume_change(id=OTHER_VID))
    accept_updates(cinder)
    spawner = spawner_for()
    mounts = await spawner.prepare_home_volume()
    assert mounts[0]["source"] == OTHER_VID
    assert len(cinder_requests(cinder, "POST")) == 1
    assert any("to be deleted" in e["message"] for e in spawner._events)


def _vol(**values):
    b = body("cinder-volume-show-available")
    volume_change(**values)(b)
    return b


async def test_a_created_volume_that_goes_to_error_is_named_and_removed(cinder):
    serve_lists(cinder)
    cinder.reply("POST", CREATE, "cinder-volume-create")
    cinder.replies("GET", VOLUME, ("cinder-volume-show-available", volume_change(status="error")))
    cinder.reply("DELETE", VOLUME, "cinder-volume-delete")
    spawner = spawner_for()
    with pytest.raises(SpawnException) as info:
        await spawner.prepare_home_volume()
    assert info.value.message == (
        f"Cinder could not create your home volume home-alice ({VID}) (it went to status "
        "error and was removed); try again, and tell your administrator if it happens again."
    )
    # nothing half-made: the empty volume in error would block every later start
    assert len(cinder.requests("DELETE", f"volumes/{VID}")) == 1
    assert "home_volume_id" not in spawner.get_state()


# -- waiting ----------------------------------------------------------------------


async def test_waits_while_the_old_container_lets_go_of_the_volume(cinder):
    serve_lists(cinder, by_name=[listed(metadata=OURS)], by_metadata=[listed(metadata=OURS)])
    cinder.replies("GET", VOLUME, "cinder-volume-show-in-use", "cinder-volume-show-in-use",
                   ("cinder-volume-show-in-use", volume_change(status="detaching")),
                   "cinder-volume-show-after-detach")
    accept_updates(cinder)
    spawner = spawner_for()
    spawner.load_state({"home_volume_id": VID})
    mounts = await spawner.prepare_home_volume()
    assert mounts == [{"source": VID, "destination": "/home/jovyan"}]
    assert len(cinder.requests("GET", f"volumes/{VID}")) == 4
    assert any("being detached" in e["message"] for e in spawner._events)


async def test_a_volume_in_use_too_long_names_the_container_holding_it(cinder):
    serve_lists(cinder, by_name=[listed(metadata=OURS)])
    cinder.reply("GET", VOLUME, "cinder-volume-show-in-use")
    serve_lists(cinder, by_name=[listed(metadata=OURS, status="in-use")])
    zun_starts(cinder)
    spawner = spawner_for(home_volume_timeout=1.5)
    with pytest.raises(SpawnException) as info:
        await spawner.start()
    assert info.value.message == (
        f"Your home volume home-alice ({VID}) was still in-use (attached to container "
        f"{ZUN_UUID}) after 1.5 s; try again in a minute."
    )
    assert not zun_creates(cinder)


async def test_a_volume_in_error_stops_the_start_with_its_name(cinder):
    serve_lists(cinder, by_name=[listed(status="error", metadata=OURS)])
    zun_starts(cinder)
    with pytest.raises(SpawnException) as info:
        await spawner_for().start()
    assert info.value.message == (
        f"Your home volume home-alice ({VID}) is in status error; tell your administrator."
    )
    assert not zun_creates(cinder)
    assert not cinder_requests(cinder, "POST")


async def test_two_volumes_for_one_server_is_an_error_naming_both(cinder):
    serve_lists(cinder, by_name=[listed(metadata=OURS)],
                by_metadata=[listed(id=OTHER_VID, metadata=OURS)])
    zun_starts(cinder)
    with pytest.raises(SpawnException) as info:
        await spawner_for().start()
    assert info.value.message == (
        f"There are 2 home volumes for this server ({OTHER_VID}, {VID}); tell your "
        "administrator, who should keep one of them."
    )
    assert not cinder_requests(cinder, "POST")
    assert not zun_creates(cinder)


async def test_a_same_named_volume_of_another_hub_is_never_used(cinder, caplog):
    # e.g. a second hub on the project with the same template: Cinder allows
    # duplicate names, and volumes are told apart by their metadata.
    theirs = {**OURS, "hub.jupyter.org/hub": "other-hub"}
    serve_lists(cinder, by_name=[listed(metadata=theirs)])
    cinder.reply("POST", CREATE, "cinder-volume-create", change=volume_change(id=OTHER_VID))
    cinder.reply("GET", OTHER, "cinder-volume-show-available", change=volume_change(id=OTHER_VID))
    accept_updates(cinder)
    with caplog.at_level(logging.WARNING):
        mounts = await spawner_for().prepare_home_volume()
    assert mounts[0]["source"] == OTHER_VID
    assert len(cinder_requests(cinder, "POST")) == 1
    assert not cinder.requests("GET", f"volumes/{VID}")
    assert f"Ignoring volume {VID}: it is named home-alice" in caplog.text


# -- growing ----------------------------------------------------------------------


async def test_a_bigger_size_extends_the_volume_at_the_next_start(cinder):
    serve_lists(cinder, by_name=[listed(metadata=OURS)])
    # Cinder answers os-extend with 202 and no body, like the recorded delete.
    cinder.reply("POST", f"{VOLUME}/action", "cinder-volume-delete")
    cinder.replies("GET", VOLUME,
                   ("cinder-volume-show-available", volume_change(status="extending")),
                   ("cinder-volume-show-available", volume_change(size=3)))
    accept_updates(cinder)
    spawner = spawner_for(home_volume_size=3)
    mounts = await spawner.prepare_home_volume()
    assert mounts[0]["source"] == VID
    actions = cinder.requests("POST", f"volumes/{VID}/action")
    assert [a.json() for a in actions] == [{"os-extend": {"new_size": 3}}]
    assert any("Growing your home folder from 1 to 3 GiB" in e["message"]
               for e in spawner._events)


async def test_a_smaller_size_never_shrinks(cinder, caplog):
    serve_lists(cinder, by_name=[listed(metadata=OURS, size=5)])
    spawner = spawner_for(home_volume_size=2)
    with caplog.at_level(logging.INFO):
        mounts = await spawner.prepare_home_volume()
    assert mounts[0]["source"] == VID
    assert not cinder_requests(cinder, "POST")
    assert "is 5 GiB, more than the 2 GiB asked for; volumes never shrink" in caplog.text


async def test_extend_over_quota_is_the_quota_sentence(cinder):
    serve_lists(cinder, by_name=[listed(metadata=OURS)])
    cinder.reply("POST", f"{VOLUME}/action", "cinder-volume-create-over-quota")
    with pytest.raises(SpawnException) as info:
        await spawner_for(home_volume_size=5000).prepare_home_volume()
    assert info.value.message == QUOTA_SENTENCE


# -- quota ------------------------------------------------------------------------


async def test_cinder_over_quota_is_one_plain_sentence_and_no_container_is_made(cinder):
    serve_lists(cinder)
    cinder.reply("POST", CREATE, "cinder-volume-create-over-quota")
    zun_starts(cinder)
    spawner = spawner_for(home_volume_size=5000)
    with pytest.raises(SpawnException) as info:
        await spawner.start()
    assert info.value.message == QUOTA_SENTENCE
    assert info.value.status_code == 403
    # the operator's log has Cinder's own words and its request id
    assert "Requested 5000G, quota is 1000G" in info.value.log_message
    assert "req-12ab2b47-97bd-4b1c-ad2d-9fb7f9f821dc" in info.value.log_message
    assert not zun_creates(cinder)
    assert "home_volume_id" not in spawner.get_state()


# -- state ------------------------------------------------------------------------


def test_state_keeps_the_volume_across_stop_and_restart():
    spawner = make_spawner()
    spawner.container_id = ZUN_UUID
    spawner.container_name_in_state = "jupyter-alice"
    spawner.home_volume_id = VID
    state = spawner.get_state()
    assert state == {"container_id": ZUN_UUID, "container_name": "jupyter-alice",
                     "home_volume_id": VID}
    fresh = make_spawner()
    fresh.load_state(json.loads(json.dumps(state)))
    assert fresh.home_volume_id == VID and fresh.container_id == ZUN_UUID
    # JupyterHub clears the state after a stop: the container goes, the volume stays
    fresh.clear_state()
    assert fresh.get_state() == {"home_volume_id": VID}


# -- delete_forever ---------------------------------------------------------------


async def test_delete_forever_with_the_flag_off_sends_nothing(cinder):
    spawner = spawner_for()
    spawner.load_state({"home_volume_id": VID})
    await spawner.delete_forever()
    assert not cinder.requests(None, "8776")


async def test_delete_forever_deletes_our_volume_when_configured(cinder):
    cinder.reply("GET", VOLUME, "cinder-volume-show-available", change=volume_change(metadata=OURS))
    serve_lists(cinder, by_metadata=[listed(metadata=OURS)])
    cinder.reply("DELETE", VOLUME, "cinder-volume-delete")
    spawner = spawner_for(delete_home_volume_on_delete=True)
    spawner.load_state({"home_volume_id": VID})
    await spawner.delete_forever()
    assert len(cinder.requests("DELETE", f"volumes/{VID}")) == 1
    assert "home_volume_id" not in spawner.get_state()


def named_server(name="gpu", **config):
    settings = {"hub_id": HUB, "home_volume_size": 1, "home_volume_poll_interval": 0.01,
                "home_volume_timeout": 2.0, "delete_home_volume_on_delete": True}
    settings.update(config)
    return make_spawner(servername=name, config=settings)


async def test_deleting_a_named_server_never_deletes_the_users_shared_home(cinder, caplog):
    # home-{username}: one volume for all of alice's servers.  Deleting her
    # named server "gpu" (even one never started) must keep it.
    serve_lists(cinder, by_metadata=[listed(metadata=OURS)])
    cinder.reply("GET", VOLUME, "cinder-volume-show-available", change=volume_change(metadata=OURS))
    cinder.reply("DELETE", VOLUME, "cinder-volume-delete")
    never_started = named_server()
    with caplog.at_level(logging.INFO):
        await never_started.delete_forever()
    used = named_server()
    used.load_state({"home_volume_id": VID})  # it mounted the shared volume
    await used.delete_forever()
    assert not cinder.requests("DELETE")
    assert "shared by all their servers; it is deleted only with the user" in caplog.text
    # the user's deletion (JupyterHub calls the default server's delete_forever
    # only then) does delete it
    await spawner_for(delete_home_volume_on_delete=True).delete_forever()
    assert len(cinder.requests("DELETE", f"volumes/{VID}")) == 1


async def test_deleting_a_named_server_deletes_its_own_volume_only(cinder):
    own = {**OURS, "hub.jupyter.org/server": "gpu"}
    serve_lists(cinder, by_metadata=[listed(id=OTHER_VID, metadata=own), listed(metadata=OURS)])
    cinder.reply("GET", OTHER, "cinder-volume-show-available",
                 change=volume_change(id=OTHER_VID, metadata=own))
    cinder.reply("DELETE", OTHER, "cinder-volume-delete")
    cinder.reply("DELETE", VOLUME, "cinder-volume-delete")
    spawner = named_server(home_volume_name_template="home-{user_server}")
    spawner.load_state({"home_volume_id": OTHER_VID})
    await spawner.delete_forever()
    assert [r.path for r in cinder.requests("DELETE")] == [urlsplit(OTHER).path.lower()]


async def test_delete_forever_waits_for_the_container_to_let_go(cinder):
    ours = volume_change(metadata={**OURS, "attached_mode": "rw"})
    cinder.replies("GET", VOLUME, ("cinder-volume-show-in-use", ours),
                   ("cinder-volume-show-in-use", ours),
                   ("cinder-volume-show-after-detach", volume_change(metadata=OURS)))
    serve_lists(cinder)
    cinder.reply("DELETE", VOLUME, "cinder-volume-delete")
    spawner = spawner_for(delete_home_volume_on_delete=True)
    spawner.load_state({"home_volume_id": VID})
    await spawner.delete_forever()
    assert len(cinder.requests("DELETE", f"volumes/{VID}")) == 1
    assert len(cinder.requests("GET", f"volumes/{VID}")) == 3


async def test_delete_forever_never_deletes_a_volume_the_hub_did_not_make(cinder):
    # The recorded volume has only the hub key: an administrator made it.
    cinder.reply("GET", VOLUME, "cinder-volume-show-available")
    serve_lists(cinder)
    cinder.reply("DELETE", VOLUME, "cinder-volume-delete")
    spawner = spawner_for(delete_home_volume_on_delete=True)
    spawner.load_state({"home_volume_id": VID})
    await spawner.delete_forever()
    assert not cinder.requests("DELETE")


async def test_delete_forever_of_a_volume_that_is_already_gone_is_done(cinder):
    cinder.m.get(VOLUME, **_kw(response("cinder-volume-show-404")))
    serve_lists(cinder)
    spawner = spawner_for(delete_home_volume_on_delete=True)
    spawner.load_state({"home_volume_id": VID})
    await spawner.delete_forever()
    assert not cinder.requests("DELETE")
    assert spawner.home_volume_id is None


# -- the event loop ---------------------------------------------------------------


async def test_the_event_loop_keeps_running_during_a_slow_cinder_call(cinder):
    rec = response("cinder-volumes-detail-filter-name")

    def slow(request, context):
        time.sleep(0.4)
        context.status_code = rec["status"]
        return dict(rec["body"], volumes=[listed(metadata=OURS)])

    cinder.m.get(DETAIL, json=slow)
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        await spawner_for().prepare_home_volume()
    finally:
        task.cancel()
    # three slow searches (owner id, user name, volume name) took at least
    # 1.2 s; the loop ran meanwhile
    assert ticks >= 20


# -- one volume per name, duplicates (issue 8, item 7) ----------------------------


@pytest.fixture
def stateful_cinder(cloud):
    yield FakeCinder().install(cloud.m)


async def test_a_default_and_a_named_server_starting_together_make_one_volume(
        stateful_cinder):
    stateful_cinder.create_delay = 0.2
    default = spawner_for()
    named = make_spawner(servername="gpu", config={
        "hub_id": HUB, "home_volume_size": 1, "home_volume_poll_interval": 0.01,
        "home_volume_timeout": 5.0})
    first, second = await asyncio.gather(default.prepare_home_volume(),
                                         named.prepare_home_volume())
    assert stateful_cinder.creates == 1
    assert first[0]["source"] == second[0]["source"]


async def test_a_start_cancelled_mid_create_and_retried_makes_one_volume(stateful_cinder):
    stateful_cinder.create_delay = 0.5
    task = asyncio.ensure_future(spawner_for().prepare_home_volume())
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    mounts = await spawner_for().prepare_home_volume()
    assert stateful_cinder.creates == 1
    assert [v["id"] for v in stateful_cinder.live()] == [mounts[0]["source"]]


async def test_a_duplicate_the_hub_made_and_never_mounted_is_deleted(stateful_cinder, caplog):
    used = stateful_cinder.add(metadata=OURS)  # older: may hold files
    spare = stateful_cinder.add(metadata={**OURS, UNUSED: "yes"})
    with caplog.at_level(logging.WARNING):
        mounts = await spawner_for().prepare_home_volume()
    assert mounts[0]["source"] == used
    assert stateful_cinder.deleted == [spare]
    assert f"Deleting home volume home-alice ({spare})" in caplog.text


async def test_of_duplicates_never_mounted_the_oldest_stays(stateful_cinder):
    older = stateful_cinder.add(metadata={**OURS, UNUSED: "yes"},
                                created_at="2026-11-26T08:00:00.000000")
    newer = stateful_cinder.add(metadata={**OURS, UNUSED: "yes"},
                                created_at="2026-11-26T09:00:00.000000")
    mounts = await spawner_for().prepare_home_volume()
    assert mounts[0]["source"] == older
    assert stateful_cinder.deleted == [newer]
    # handed to a container: from now on it may hold files
    assert stateful_cinder.volumes[older]["metadata"][UNUSED] == "no"


async def test_duplicates_that_may_hold_files_are_never_deleted(stateful_cinder):
    a = stateful_cinder.add(metadata=OURS)
    b = stateful_cinder.add(metadata={**OURS, UNUSED: "no"})
    with pytest.raises(SpawnException) as info:
        await spawner_for().prepare_home_volume()
    assert info.value.message == (
        f"There are 2 home volumes for this server ({', '.join(sorted([a, b]))}); "
        "tell your administrator, who should keep one of them."
    )
    assert "none was deleted" in info.value.log_message
    assert not stateful_cinder.deleted
