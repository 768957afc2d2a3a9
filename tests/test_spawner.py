"""ZunSpawner's lifecycle against recorded Zun answers."""

import base64

import pytest
from jupyterhub.spawner import SpawnException
from traitlets import TraitError

from magnum_spawner import ZunSpawner
from magnum_spawner.zun import objects

from .fake_zun import LifecycleZun
from .helpers import make_spawner
from . import recorded
from .recorded import (
    CONTAINER_UUID,
    CREATE,
    DELETE,
    HUB_LABELS,
    LIST_BY_NAME,
    NETWORK,
    POLL_RESULTS,
    SHOW,
    ZUN,
    creates,
    status,
)


def no_leftovers(cloud):
    cloud.reply("GET", LIST_BY_NAME, "zun-containers-list-empty")


async def test_start_sends_the_exact_create_body_and_returns_the_address(cloud):
    creates(cloud, status("Creating"), status("Running"))
    spawner = make_spawner(config={
        "flavors": {},  # no flavor choice: mem_limit/cpu_limit as configured
        "mem_limit": "2G", "cpu_limit": 1.0, "network": NETWORK,
        "image": "quay.io/jupyter/base-notebook",
        "environment": {"GREETING": "hi"}, "labels": {"course": "phys101"},
        "args": ["--debug"], "security_groups": ["jupyter"],
    })
    url = await spawner.start()
    assert url == "http://127.0.0.1:8888"
    sent = cloud.requests("POST", "containers")[0]
    assert sent.headers["OpenStack-API-Version"] == "container 1.40"
    body = sent.json()
    env = body.pop("environment")
    labels = body.pop("labels")
    expected_labels = {"course": "phys101", **HUB_LABELS}
    assert {k: labels[k] for k in expected_labels} == expected_labels
    # the only other labels name the chosen image/flavor (issue 5)
    assert set(labels) - set(expected_labels) <= {
        "hub.jupyter.org/image", "hub.jupyter.org/flavor"}
    token_b64 = base64.b64encode(b"hub-api-token-secret").decode()
    assert body == {
        "name": "jupyter-alice",
        "image": "quay.io/jupyter/base-notebook",
        # the launcher reads the injected files into the environment, then runs
        # the server's own command
        "command": ["/bin/sh", "-c", objects.LAUNCHER, "/run/jupyterhub-secrets",
                    "jupyterhub-singleuser", "--debug"],
        "memory": "2048",
        "cpu": 1.0,
        "nets": [{"network": NETWORK}],
        "security_groups": ["jupyter"],
        "restart_policy": {"Name": "no"},
        # Zun >= 1.23 file injection: base64 content, a file at the destination
        "mounts": [
            {"type": "bind", "source": token_b64,
             "destination": "/run/jupyterhub-secrets/JPY_API_TOKEN"},
            {"type": "bind", "source": token_b64,
             "destination": "/run/jupyterhub-secrets/JUPYTERHUB_API_TOKEN"},
        ],
    }
    assert env["GREETING"] == "hi"
    # Zun shows the environment to every project member: no token in it
    assert "JUPYTERHUB_API_TOKEN" not in env and "JPY_API_TOKEN" not in env
    assert not [v for v in env.values() if "hub-api-token-secret" in v]
    assert env["JUPYTERHUB_USER"] == "alice"
    # inside the container the server binds all interfaces at the container port
    assert env["JUPYTERHUB_SERVICE_URL"] == "http://0.0.0.0:8888/user/alice/"
    state = spawner.get_state()
    assert state["container_id"] == CONTAINER_UUID
    assert state["container_name"] == "jupyter-alice"


async def test_memory_rounds_up_to_whole_mib(cloud):
    creates(cloud, status("Running"))
    spawner = make_spawner(config={"flavors": {}, "mem_limit": 1_000_000_000})
    await spawner.start()
    assert cloud.requests("POST", "containers")[0].json()["memory"] == "954"


@pytest.mark.parametrize("setting, value, text", [
    ("mem_limit", "9G", "9216 MiB; Zun accepts 4-8192 MiB"),
    ("mem_limit", "1K", "1 MiB; Zun accepts 4-8192 MiB"),
    ("cpu_limit", 32.0, "32.0 vCPUs; Zun accepts 0.1-16 vCPUs"),
    ("cpu_limit", 0.01, "0.01 vCPUs"),
])
def test_limits_outside_zuns_ranges_are_refused_at_config_time(setting, value, text):
    with pytest.raises(TraitError, match=text):
        make_spawner(config={setting: value})


def test_bad_restart_policy_is_refused():
    with pytest.raises(TraitError, match="restart_policy 'sometimes'"):
        make_spawner(config={"restart_policy": "sometimes"})


async def test_start_that_ends_in_error_shows_zuns_reason_and_cleans_up(cloud):
    creates(cloud, status("Creating"), status("Error", reason="There are not enough hosts available."),
            "zun-container-show-after-delete")
    cloud.reply("GET", f"{SHOW}/logs?stdout=true&stderr=true&tail=200", "zun-container-show-404")
    cloud.reply("DELETE", DELETE, "zun-container-delete-stop-true")
    spawner = make_spawner()
    with pytest.raises(SpawnException) as info:
        await spawner.start()
    assert "There are not enough hosts available." in info.value.message
    assert "is Error" in info.value.message
    # the failed container is deleted; nothing is left for the user to trip over
    assert cloud.requests("DELETE")
    assert spawner.container_id is None


async def test_start_that_exits_immediately_reports_the_exit(cloud):
    creates(cloud, status("Stopped", detail="Exited(127) 1 second ago"),
            "zun-container-show-after-delete")
    cloud.reply("GET", f"{SHOW}/logs?stdout=true&stderr=true&tail=200", "zun-container-show-404")
    cloud.reply("DELETE", DELETE, "zun-container-delete-stop-true")
    with pytest.raises(SpawnException, match=r"Stopped \(Exited\(127\)"):
        await make_spawner().start()


async def test_start_timeout_names_the_last_status_and_deletes(cloud):
    no_leftovers(cloud)
    cloud.reply("POST", CREATE, "zun-container-create-run")
    creating = recorded.body("zun-container-show-running")
    status("Creating")(creating)
    gone = recorded.response("zun-container-show-after-delete")

    def show(request, context):
        # Creating for ever, until the spawner gives up and deletes it
        if cloud.requests("DELETE"):
            context.status_code = 404
            return gone["body"]
        return creating

    cloud.m.get(SHOW, json=show)
    cloud.reply("DELETE", DELETE, "zun-container-delete-stop-true")
    spawner = make_spawner(config={"start_timeout": 3})
    with pytest.raises(SpawnException) as info:
        await spawner.start()
    assert info.value.reason == "timeout"
    assert "within 3 s (last status: Creating)" in info.value.message
    assert cloud.requests("DELETE")


async def test_existing_container_of_this_server_is_replaced_not_duplicated(cloud):
    # A hub restart mid-spawn left a container with this name and our labels.
    def ours(b):
        for c in b["containers"]:
            c["labels"].update({"hub.jupyter.org/hub": "jupyterhub",
                                "hub.jupyter.org/server": "",
                                "hub.jupyter.org/managed-by": "magnum-spawner"})
    cloud.reply("GET", LIST_BY_NAME, "zun-containers-list-filter-name", change=ours)
    for uuid in ("515db7d6-d0e9-4a4d-8976-b6f501999f75", "ad7d3276-c864-446a-aaec-a034acd4fe39"):
        cloud.reply("DELETE", f"{ZUN}/v1/containers/{uuid}?stop=true", "zun-container-delete-stop-true")
    cloud.reply("GET", f"{ZUN}/v1/containers/ad7d3276-c864-446a-aaec-a034acd4fe39",
                "zun-container-show-404")
    cloud.replies("GET", SHOW, "zun-container-show-404", ("zun-container-show-running", status("Running")))
    cloud.reply("POST", CREATE, "zun-container-create-run")
    spawner = make_spawner()
    assert await spawner.start() == "http://127.0.0.1:8888"
    assert len(cloud.requests("DELETE")) == 2
    assert len(cloud.requests("POST", "containers")) == 1


async def test_same_name_container_of_another_hub_is_never_touched(cloud):
    cloud.reply("GET", LIST_BY_NAME, "zun-containers-list-filter-name")  # labels say hub-1
    spawner = make_spawner()
    with pytest.raises(SpawnException) as info:
        await spawner.start()
    assert info.value.reason == "name-conflict"
    assert "hub_id" in info.value.log_message
    assert not cloud.requests("DELETE") and not cloud.requests("POST", "containers")


async def test_a_lost_create_answer_is_looked_up_not_resent(cloud):
    import requests
    def ours(b):
        b["containers"] = b["containers"][:1]
        b["containers"][0]["labels"].update({
            "hub.jupyter.org/hub": "jupyterhub", "hub.jupyter.org/server": "",
            "hub.jupyter.org/managed-by": "magnum-spawner"})
    cloud.replies("GET", LIST_BY_NAME, "zun-containers-list-empty",
                  ("zun-containers-list-filter-name", ours))
    cloud.m.post(CREATE, exc=requests.exceptions.ConnectionError)
    cloud.reply("GET", SHOW, "zun-container-show-running", change=status("Running"))
    spawner = make_spawner()
    assert await spawner.start() == "http://127.0.0.1:8888"
    assert len(cloud.requests("POST", "containers")) == 1
    assert spawner.container_id == CONTAINER_UUID


@pytest.mark.parametrize("fault", [500, 502, "reset"], ids=["500", "502", "reset"])
async def test_a_create_that_made_nothing_is_sent_again_and_the_start_succeeds(cloud, fault):
    # The fault burst's "zun 500: injected": the create never reached Zun.  Once
    # a look by name shows nothing was made, a second create is safe.
    import requests
    zun = LifecycleZun().install(cloud.m)
    zun.fail("POST", "containers", requests.exceptions.ConnectionError("reset")
             if fault == "reset" else fault)
    spawner = make_spawner(config={"wait_for_answer": False})
    spawner.lost_create_window = 0.2
    url = await spawner.start()
    assert url.endswith(":8888")
    assert len(zun.made) == 1 and zun.alive() and not zun.overlaps


async def test_a_create_that_made_a_container_is_never_sent_again(cloud):
    zun = LifecycleZun().install(cloud.m)
    zun.fail("POST", "containers", ("after", 500), times=3)
    spawner = make_spawner(config={"wait_for_answer": False})
    spawner.lost_create_window = 0.2
    await spawner.start()
    assert len(zun.made) == 1 and not zun.overlaps


@pytest.mark.parametrize("zun_status, detail, expected", POLL_RESULTS)
async def test_poll_maps_every_zun_status(cloud, zun_status, detail, expected):
    zun = LifecycleZun().install(cloud.m)
    uuid = zun.server("jupyter-alice", zun_status, status_detail=detail)
    spawner = make_spawner()
    spawner.load_state({"container_id": uuid, "container_name": "jupyter-alice"})
    assert await spawner.poll() == expected
    # an ended container is deleted by poll itself (JupyterHub will not call stop)
    deleted = uuid not in zun.containers or zun.containers[uuid]["status"] == "Deleting"
    assert deleted == (expected is not None)


async def test_poll_of_a_deleted_container_is_stopped(cloud):
    cloud.reply("GET", SHOW, "zun-container-show-after-delete")
    spawner = make_spawner()
    spawner.load_state({"container_id": CONTAINER_UUID})
    assert await spawner.poll() == 0


async def test_poll_without_state_is_not_running(cloud):
    spawner = make_spawner()
    spawner.orm_spawner.server = None  # the hub knows of no server
    assert await spawner.poll() == 0
    assert not cloud.requests(pattern="9517")


async def test_poll_keeps_a_server_when_the_api_blips(cloud):
    cloud.m.get(SHOW, status_code=503, text="")
    spawner = make_spawner()
    spawner.zun.read_status_code_retries = 0  # a GET fails at once
    spawner.load_state({"container_id": CONTAINER_UUID})
    assert await spawner.poll() is None


async def test_unknown_is_running_during_the_grace_period_then_stopped(cloud, monkeypatch):
    zun = LifecycleZun().install(cloud.m)
    spawner = make_spawner(config={"unknown_grace_period": 60})
    spawner.load_state({"container_id": zun.server("jupyter-alice", "Unknown")})
    assert await spawner.poll() is None
    spawner._unknown_since -= 61  # a minute later, the host still does not report
    assert await spawner.poll() == 1


async def test_stop_deletes_with_stop_true_and_waits_until_gone(cloud):
    cloud.reply("DELETE", DELETE, "zun-container-delete-stop-true")
    cloud.replies("GET", SHOW, ("zun-container-show-running", status("Deleting")),
                  "zun-container-show-after-delete")
    spawner = make_spawner()
    spawner.load_state({"container_id": CONTAINER_UUID})
    await spawner.stop()
    assert len(cloud.requests("GET", CONTAINER_UUID)) == 2
    assert spawner.container_id is None


async def test_stop_of_an_already_deleted_container_is_done(cloud):
    cloud.reply("DELETE", DELETE, "zun-container-show-after-delete")
    spawner = make_spawner()
    spawner.load_state({"container_id": CONTAINER_UUID})
    await spawner.stop()
    assert spawner.container_id is None


def test_state_round_trip_survives_a_new_spawner():
    first = make_spawner()
    first.load_state({"container_id": CONTAINER_UUID, "container_name": "jupyter-alice"})
    state = first.get_state()
    second = make_spawner()
    second.load_state(state)
    assert second.container_id == CONTAINER_UUID
    assert second.get_state() == state
    second.clear_state()
    assert second.get_state() == {}
    # nothing secret is kept in state
    assert "token" not in str(state).lower()


async def test_per_user_image_may_be_a_coroutine(cloud):
    creates(cloud, status("Running"))

    async def image(spawner):
        return f"registry.example.org/{spawner.user.name}:latest"

    spawner = make_spawner(config={"image": image})
    await spawner.start()
    assert cloud.requests("POST", "containers")[0].json()["image"] == "registry.example.org/alice:latest"


def test_entry_point_resolves():
    from importlib.metadata import entry_points
    (ep,) = [e for e in entry_points(group="jupyterhub.spawners") if e.name == "zun"]
    assert ep.load() is ZunSpawner


async def test_a_container_left_in_state_is_deleted_before_a_new_start(cloud):
    old = "ad7d3276-c864-446a-aaec-a034acd4fe39"
    cloud.reply("DELETE", f"{ZUN}/v1/containers/{old}?stop=true", "zun-container-delete-stop-true")
    cloud.reply("GET", f"{ZUN}/v1/containers/{old}", "zun-container-show-404")
    creates(cloud, status("Running"))
    spawner = make_spawner()
    spawner.load_state({"container_id": old, "container_name": "jupyter-alice-old"})
    await spawner.start()
    assert [r.url for r in cloud.requests("DELETE")] == [
        f"{ZUN}/v1/containers/{old}?stop=true"]
    assert spawner.container_id == CONTAINER_UUID


def our_listing(b):
    """The recorded name listing, reduced to one container of alice's default server."""
    b["containers"] = b["containers"][:1]
    b["containers"][0]["labels"].update({
        "hub.jupyter.org/hub": "jupyterhub", "hub.jupyter.org/server": "",
        "hub.jupyter.org/managed-by": "magnum-spawner"})


@pytest.mark.parametrize("answer", [
    {"status_code": 500, "text": ""},  # Zun's own 500 (recorded shape: empty body)
    {"status_code": 504, "text": "<html>Gateway Time-out</html>"},  # a proxy gave up
])
async def test_a_create_answered_5xx_is_looked_up_and_adopted(cloud, answer):
    cloud.replies("GET", LIST_BY_NAME, "zun-containers-list-empty",
                  ("zun-containers-list-filter-name", our_listing))
    cloud.m.post(CREATE, **answer)
    cloud.reply("GET", SHOW, "zun-container-show-running", change=status("Running"))
    spawner = make_spawner()
    assert await spawner.start() == "http://127.0.0.1:8888"
    assert len(cloud.requests("POST", "containers")) == 1
    assert spawner.container_id == CONTAINER_UUID


async def test_a_reset_create_whose_commit_lands_later_is_adopted(cloud):
    import requests
    # Zun committed the container 0.3 s after the connection was reset:
    # the first look finds nothing, a later one finds it.
    cloud.replies("GET", LIST_BY_NAME, "zun-containers-list-empty",
                  "zun-containers-list-empty",
                  ("zun-containers-list-filter-name", our_listing))
    cloud.m.post(CREATE, exc=requests.exceptions.ConnectionError("Connection reset by peer"))
    cloud.reply("GET", SHOW, "zun-container-show-running", change=status("Running"))
    spawner = make_spawner()
    assert await spawner.start() == "http://127.0.0.1:8888"
    assert len(cloud.requests("POST", "containers")) == 1
    assert spawner.container_id == CONTAINER_UUID


async def test_a_create_answered_500_that_made_nothing_fails_clearly_after_its_tries(cloud):
    no_leftovers(cloud)
    cloud.m.post(CREATE, status_code=500, text="")
    spawner = make_spawner()
    spawner.lost_create_window = 0.3  # several looks at the unit tests' pace
    with pytest.raises(SpawnException) as info:
        await spawner.start()
    assert info.value.message.startswith("Could not create the server's container")
    # each resend only after a look by name found nothing
    assert len(cloud.requests("POST", "containers")) == spawner.create_attempts
    assert len(cloud.requests("GET", "name=jupyter-alice")) >= 2


async def test_a_500_while_waiting_for_running_is_retried(cloud):
    # (keystoneauth itself resends a GET after a reset, a 502, 503 or 504, but
    # not after a 500.)
    no_leftovers(cloud)
    cloud.reply("POST", CREATE, "zun-container-create-run")
    running = recorded.response("zun-container-show-running")
    status("Running")(running["body"])
    creating = recorded.body("zun-container-show-running")
    status("Creating")(creating)
    cloud.m.get(SHOW, [
        {"json": creating, "status_code": 200},
        {"status_code": 500, "text": ""},
        {"status_code": 500, "text": ""},
        {"json": running["body"], "status_code": 200},
    ])
    spawner = make_spawner()
    assert await spawner.start() == "http://127.0.0.1:8888"
    assert not cloud.requests("DELETE")


async def test_a_status_the_spawner_does_not_know_is_running_and_logged_once(cloud, caplog):
    zun = LifecycleZun().install(cloud.m)
    uuid = zun.server("jupyter-alice", "Hibernating")  # a later Zun's status
    spawner = make_spawner()
    spawner.load_state({"container_id": uuid, "container_name": "jupyter-alice"})
    with caplog.at_level("WARNING"):
        assert [await spawner.poll() for _ in range(3)] == [None, None, None]
    lines = [r.getMessage() for r in caplog.records if "Hibernating" in r.getMessage()]
    assert lines == [f"{spawner._log_name}: Zun reports status 'Hibernating', which "
                     "this spawner does not know; counting it as running"]
    assert zun.containers[uuid]["status"] == "Hibernating"


async def test_a_failure_before_the_create_names_the_step_it_happened_in(cloud):
    # the look for an earlier container of this server fails (Zun down)
    cloud.m.get(LIST_BY_NAME, status_code=500, text="")
    spawner = make_spawner()
    spawner.zun.read_status_code_retries = 0
    with pytest.raises(SpawnException) as info:
        await spawner.start()
    assert info.value.message.startswith(
        "Could not check for an earlier server of yours: "), info.value.message
    assert not cloud.requests("POST", "containers")  # nothing was created
