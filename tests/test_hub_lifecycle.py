"""ZunSpawner driven by JupyterHub's own machinery (MockHub), with a recorded cloud.

JupyterHub itself runs here: its User.spawn() applies group overrides and user
options, calls start(), waits for the server's HTTP port, adds the proxy route and
stores the spawner's state in its database; User.stop() calls stop() and clears it.
The cloud is the recorded Zun; the "container" is a small HTTP server on loopback.
"""

import asyncio
import pathlib
import shutil
import time

import pytest
from jupyterhub.spawner import SpawnException
from jupyterhub.tests.mocking import MockHub
from jupyterhub.utils import format_exception
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from magnum_spawner import ZunSpawner
from magnum_spawner.common import answering

from .conftest import PASSWORD_AUTH
from .fake_zun import LifecycleZun
from .helpers import injected_files
from .recorded import CONTAINER_UUID, DELETE, ZUN, creates, status

CHP = pathlib.Path(__file__).parents[1] / ".cache/node/node_modules/.bin/configurable-http-proxy"


class Hello(web.RequestHandler):
    def get(self, *args):
        self.write({"ok": True})


@pytest.fixture
async def container_server():
    """Stands in for the notebook server at the container's recorded address."""
    sockets = bind_sockets(0, "127.0.0.1")
    server = HTTPServer(web.Application([(r"/.*", Hello)]))
    server.add_sockets(sockets)
    yield sockets[0].getsockname()[1]
    server.stop()


@pytest.fixture
async def app(container_server, tmp_path):
    chp = str(CHP) if CHP.exists() else shutil.which("configurable-http-proxy")
    if not chp:
        pytest.skip("configurable-http-proxy is not installed (make chp)")
    hub = MockHub.instance(
        spawner_class=ZunSpawner, cookie_secret_file=str(tmp_path / "cookie_secret")
    )
    hub.config.ConfigurableHTTPProxy.command = [chp]
    # not the default ./jupyterhub-proxy.pid: a hub starting in the same directory
    # (another pytest worker's, or a demo's) reads it and kills that proxy
    hub.config.ConfigurableHTTPProxy.pid_file = str(tmp_path / "proxy.pid")
    hub.config.ZunSpawner.auth = dict(PASSWORD_AUTH)
    hub.config.ZunSpawner.port = container_server
    hub.config.ZunSpawner.use_hub_poller = False
    hub.config.ZunSpawner.home_volume_size = 0
    hub.config.ZunSpawner.start_timeout = 20
    hub.config.ZunSpawner.http_timeout = 10
    await hub.initialize([])
    await hub.start()
    yield hub
    MockHub.clear_instance()
    # JupyterHub.stop() also cancels every task of the loop, this fixture's own
    # teardown included; cleanup() is the part that stops servers and the proxy.
    await hub.cleanup()
    hub.db_file.close()


def recorded_start(cloud, *statuses):
    creates(cloud, *statuses, name="jupyter-ada")
    cloud.reply("DELETE", DELETE, "zun-container-delete-stop-true")


async def test_jupyterhub_spawns_records_state_and_stops(app, cloud, container_server):
    cloud.m.real_http = True  # the hub talks to its proxy and the server for real
    recorded_start(cloud, status("Creating"), *[status("Running")] * 3,
                   "zun-container-show-after-delete")
    from jupyterhub import orm
    orm_user = orm.User(name="ada")
    app.db.add(orm_user)
    app.db.commit()
    user = app.users[orm_user]
    await user.spawn()
    spawner = user.spawners[""]
    assert spawner.ready
    # JupyterHub took the address from start() and stored our state in its db
    assert user.orm_spawners[""].server.ip == "127.0.0.1"
    assert user.orm_spawners[""].server.port == container_server
    assert user.orm_spawners[""].state["container_id"] == CONTAINER_UUID
    # the create body carried the hub's own environment for this user
    sent = cloud.requests("POST", "containers")[0].json()
    assert sent["environment"]["JUPYTERHUB_USER"] == "ada"
    # the token goes in as a file, never in the environment Zun shows
    assert "JUPYTERHUB_API_TOKEN" not in sent["environment"]
    assert injected_files(sent)["/run/jupyterhub-secrets/JUPYTERHUB_API_TOKEN"] == (
        spawner.api_token)
    assert await spawner.poll() is None
    await user.stop()
    assert cloud.requests("DELETE", CONTAINER_UUID)
    assert not user.orm_spawners[""].state


async def test_jupyterhub_shows_zuns_error_and_cleans_up(app, cloud):
    cloud.m.real_http = True
    recorded_start(cloud, status("Error", reason="There are not enough hosts available."),
                   "zun-container-show-after-delete")
    cloud.reply("GET", f"{ZUN}/v1/containers/{CONTAINER_UUID}/logs?stdout=true&stderr=true&tail=200",
                "zun-container-show-404")
    from jupyterhub import orm
    orm_user = orm.User(name="ada")
    app.db.add(orm_user)
    app.db.commit()
    user = app.users[orm_user]
    with pytest.raises(SpawnException, match="not enough hosts"):
        await user.spawn()
    assert cloud.requests("DELETE", CONTAINER_UUID)
    assert not user.spawners[""].ready


# -- issue 8: JupyterHub's own spawn/stop against a stateful fake Zun ---------------


@pytest.fixture
def zun(cloud, fast_janitor):
    cloud.m.real_http = True  # the hub talks to its proxy and the server for real
    return LifecycleZun(script=["Creating", "Running"]).install(cloud.m)


def new_user(app, name="ada"):
    from jupyterhub import orm
    orm_user = orm.User(name=name)
    app.db.add(orm_user)
    app.db.commit()
    return app.users[orm_user]


async def eventually(condition, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "not within the time limit"
        await asyncio.sleep(0.02)


async def test_a_crashed_server_is_deleted_when_the_hub_notices(app, zun):
    # item 1: JupyterHub calls stop() only when poll() says "running"
    user = new_user(app)
    await user.spawn()
    spawner = user.spawners[""]
    uuid = spawner.container_id
    zun.set(uuid, status="Stopped", status_detail="Exited(1) 1 second ago")
    # what the hub's poll callback does when poll() reports an exit status
    assert await spawner.poll() == 1
    await user.stop()
    await eventually(lambda: not zun.alive())
    assert "container_id" not in user.orm_spawners[""].state


async def test_a_start_jupyterhub_cancels_mid_create_leaves_nothing_and_a_retry_works(app, zun):
    # item 3: JupyterHub cancels start() at start_timeout; the POST goes on
    app.config.ZunSpawner.start_timeout = 1
    zun.create_delay = 1.5
    user = new_user(app)
    with pytest.raises(SpawnException) as failed:
        await user.spawn()
    # JupyterHub's cancellation reads as the spawner's sentence, phase named
    assert "(the hub was still creating the container)" in failed.value.message
    # the hub stored the state after its own stop(): the create is not forgotten
    assert user.orm_spawners[""].state.get("to_remove")
    await eventually(lambda: zun.made)
    # an immediate retry (a patient user this time) gets exactly one server
    zun.create_delay = 0
    user.spawners[""].start_timeout = 20
    await user.spawn()
    spawner = user.spawners[""]
    assert spawner.ready
    assert not zun.overlaps, "a second container was created while the first lived"
    await eventually(lambda: [c["uuid"] for c in zun.alive()] == [spawner.container_id])
    assert user.orm_spawners[""].state["container_id"] == spawner.container_id
    await user.stop()


async def test_a_failing_delete_at_stop_is_kept_in_the_hubs_database_and_finished(app, zun):
    # item 5: User.stop() clears the state whatever stop() does
    app.config.ZunSpawner.delete_timeout = 1
    user = new_user(app)
    await user.spawn()
    uuid = user.spawners[""].container_id
    zun.fail("DELETE", uuid, 500, times=1000)
    await user.stop()
    assert user.orm_spawners[""].state["to_remove"] == [{"id": uuid, "name": "jupyter-ada"}]
    assert uuid in zun.containers
    zun.faults.clear()
    await eventually(lambda: uuid not in zun.containers)
    # the next spawn has nothing left to do but its own container
    await user.spawn()
    assert [c["uuid"] for c in zun.alive()] == [user.spawners[""].container_id]
    await user.stop()


# -- issue 18: a start out of time on a busy hub says where it was ----------------


async def busy_loop(block):
    """The rest of a rush on the hub's event loop (2 cores, dozens of starts):
    each turn of the loop waits ``block`` s for the CPU."""
    while True:
        time.sleep(block)
        await asyncio.sleep(0)


@pytest.mark.slow
async def test_a_start_out_of_time_on_a_lagging_hub_names_its_phase(app, zun, monkeypatch):
    """JupyterHub's own start_timeout (User.spawn) on a loop that lags: the
    student reads the spawner's sentence naming the phase, not "Spawn failed: "."""
    async def never(url, timeout):  # a JupyterLab server still loading
        return False

    monkeypatch.setattr(answering, "probe", never)
    app.config.ZunSpawner.start_timeout = 6
    user = new_user(app)
    lag = asyncio.ensure_future(busy_loop(0.3))
    try:
        with pytest.raises(Exception) as failed:
            await user.spawn()
    finally:
        lag.cancel()
    page, _ = format_exception(failed.value)  # what the spawn page shows after "Spawn failed: "
    # which phase the lag ends depends on the machine; each names its own
    assert "within 6 s" in page, repr(failed.value)
    assert failed.value.reason == "timeout"
    await eventually(lambda: not zun.alive())
