"""The spawn page's events, read through progress() as JupyterHub reads them."""

import asyncio

import pytest
from jupyterhub.spawner import SpawnException

from magnum_spawner.common import answering

from .helpers import answer_http, assert_forward, follow_progress, make_spawner, spawner_for
from .recorded import (
    CREATE,
    DELETE,
    LIST_BY_NAME,
    SHOW,
    VOLUME,
    ZUN,
    ZUN_UUID,
    creates,
    serve_lists,
    status,
    volume_change,
)
from .test_volumes import accept_updates


def task(value, state=None, **fields):
    """A body change: status and Zun's task_state (values only)."""
    def apply(b):
        status(value, **fields)(b)
        b["task_state"] = state
    return apply


async def spawn_and_watch(spawner, events=None):
    """start() with a progress() reader beside it, as the spawn page has; the
    page's events (returned) go to ``events`` also when start() fails."""
    spawner._spawn_pending = True
    events = [] if events is None else events
    reader = follow_progress(spawner, events)
    try:
        await spawner.start()
    finally:
        spawner._spawn_pending = False
        await asyncio.wait_for(reader, 10)
    return events


async def test_a_start_reads_as_steps_a_student_understands(cloud):
    creates(cloud, task("Creating"), task("Creating", "image_pulling"),
            task("Creating", "container_creating"), task("Created", "container_starting"),
            task("Running"))
    events = await spawn_and_watch(make_spawner())
    assert [e["message"] for e in events] == [
        "Asking the cloud for a server",
        "Finding a machine for your server",
        "Downloading the software image",
        "Downloading the software image and setting up your server",
        "Starting your server",
        "Your server is running",
        "Your server's notebook software is starting; waiting for it to answer",
        "Your server is answering; opening it",
    ]
    # the server's address is for the log, not for the student
    assert not [e for e in events if "127.0.0.1" in e["message"]]
    assert_forward(events)


async def test_the_page_says_when_the_server_answers(cloud, monkeypatch):
    monkeypatch.setattr(answering, "probe", answering.http_probe)
    creates(cloud, task("Running"))
    server = await asyncio.start_server(answer_http(200), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        events = await spawn_and_watch(make_spawner(config={"port": port}))
    finally:
        server.close()
    assert events[-2:] == [
        {"progress": 85, "message":
         "Your server's notebook software is starting; waiting for it to answer"},
        {"progress": 95, "message": "Your server is answering; opening it"},
    ]
    assert_forward(events)


async def test_an_error_is_the_last_event(cloud):
    creates(cloud, task("Created", "container_starting"), task("Creating"),
            task("Error", reason="There are not enough hosts available."),
            "zun-container-show-after-delete")
    cloud.reply("GET", f"{SHOW}/logs?stdout=true&stderr=true&tail=200", "zun-container-show-404")
    cloud.reply("DELETE", DELETE, "zun-container-delete-stop-true")
    events = []
    with pytest.raises(SpawnException):
        await spawn_and_watch(make_spawner(), events)
    assert events[-1]["message"] == (
        "The cloud could not start your server: There are not enough hosts available.")
    # Created came first: the later Creating does not take the bar back
    assert_forward(events)


async def test_home_folder_steps_come_first(cinder):
    serve_lists(cinder)
    cinder.reply("POST", f"{VOLUME.rsplit('/', 1)[0]}", "cinder-volume-create")
    cinder.replies("GET", VOLUME,
                   ("cinder-volume-show-available", volume_change(status="creating")),
                   "cinder-volume-show-available")
    cinder.reply("GET", LIST_BY_NAME, "zun-containers-list-empty")
    cinder.reply("POST", CREATE, "zun-container-create-with-volume")
    cinder.replies("GET", f"{ZUN}/v1/containers/{ZUN_UUID}",
                   ("zun-container-show-with-volume", task("Creating")),
                   "zun-container-show-with-volume")
    accept_updates(cinder)  # the owner's marks (the recorded volume has none)
    events = await spawn_and_watch(spawner_for())
    messages = [e["message"] for e in events]
    assert messages == [
        "Creating your home folder (1 GiB)",
        "Your home folder is ready",
        "Asking the cloud for a server",
        "Attaching your home folder",
        "Your server is running",
        "Your server's notebook software is starting; waiting for it to answer",
        "Your server is answering; opening it",
    ]
    # the server's address is for the log, not for the student
    assert not [e for e in events if "127.0.0.1" in e["message"]]
    assert_forward(events)
