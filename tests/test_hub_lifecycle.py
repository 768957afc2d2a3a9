"""ZunSpawner driven by JupyterHub's own machinery (MockHub), with a recorded cloud.

JupyterHub itself runs here: its User.spawn() applies group overrides and user
options, calls start(), waits for the server's HTTP port, adds the proxy route and
stores the spawner's state in its database; User.stop() calls stop() and clears it.
The cloud is the recorded Zun; the "container" is a small HTTP server on loopback.
"""

import pathlib
import shutil

import pytest
from jupyterhub.tests.mocking import MockHub
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from magnum_spawner import ZunSpawner

from .conftest import PASSWORD_AUTH
from .helpers import injected_files
from .recorded import CONTAINER_UUID, ZUN, status

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
    cloud.reply("GET", f"{ZUN}/v1/containers?name=jupyter-ada", "zun-containers-list-empty")
    cloud.reply("POST", f"{ZUN}/v1/containers?run=true", "zun-container-create-run")
    cloud.replies("GET", f"{ZUN}/v1/containers/{CONTAINER_UUID}",
                  *[("zun-container-show-running", s) if not isinstance(s, str) else s
                    for s in statuses])
    cloud.reply("DELETE", f"{ZUN}/v1/containers/{CONTAINER_UUID}?stop=true",
                "zun-container-delete-stop-true")


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
    cloud.reply("GET", f"{ZUN}/v1/containers/{CONTAINER_UUID}/logs?stdout=true&stderr=true&tail=20",
                "zun-container-show-404")
    from jupyterhub import orm
    from jupyterhub.spawner import SpawnException
    orm_user = orm.User(name="ada")
    app.db.add(orm_user)
    app.db.commit()
    user = app.users[orm_user]
    with pytest.raises(SpawnException, match="not enough hosts"):
        await user.spawn()
    assert cloud.requests("DELETE", CONTAINER_UUID)
    assert not user.spawners[""].ready
