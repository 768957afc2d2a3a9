"""Building spawners for tests without a running hub."""

import asyncio
import hashlib

from jupyterhub import orm
from jupyterhub.objects import Hub
from traitlets.config import Config

from magnum_spawner import ZunSpawner

from .conftest import PASSWORD_AUTH


def user_id(name):
    """The hub's id of the test user ``name`` (the same in every test)."""
    return int(hashlib.sha256(name.encode()).hexdigest()[:6], 16)


class FakeUser:
    """The few attributes of jupyterhub.user.User a Spawner reads.

    ``id`` is the hub's user id (a rename keeps it): by default one per name;
    ``created`` is when the account was made (None: unknown)."""

    def __init__(self, name="alice", groups=(), id=None, created=None):
        if id is None:
            id = getattr(type(self), "id", None) or user_id(name)
        self.id = id
        self.created = created
        self.name = name
        self.escaped_name = name
        self.url = f"/user/{name}/"
        self.groups = list(groups)

    def progress_url(self, server_name=""):
        return f"/hub/api/users/{self.name}/server/progress"


def make_spawner(username="alice", servername="", config=None, user=None, **traits):
    cfg = Config()
    cfg.ZunSpawner.auth = dict(PASSWORD_AUTH)
    cfg.ZunSpawner.use_hub_poller = False
    cfg.ZunSpawner.start_timeout = 20
    # Home volumes (Cinder) are off unless a test turns them on.
    cfg.ZunSpawner.home_volume_size = 0
    for key, value in (config or {}).items():
        setattr(cfg.ZunSpawner, key, value)
    spawner = ZunSpawner(
        user=user or FakeUser(username),
        hub=Hub(),
        orm_spawner=orm.Spawner(
            name=servername,
            server=orm.Server(
                proto="http", ip="", port=0, cookie_name="jupyterhub-user",
                base_url=f"/user/{username}/{servername}",
            ),
        ),
        config=cfg,
        api_token="hub-api-token-secret",
        oauth_client_id=f"jupyterhub-user-{username}",
        **traits,
    )
    return spawner


def injected_files(body):
    """``{destination: content}`` of the files a create body injects (bind mounts)."""
    import base64
    return {
        m["destination"]: base64.b64decode(m["source"]).decode()
        for m in body.get("mounts") or [] if m.get("type") == "bind"
    }


def volume_mounts(body):
    """A create body's ``mounts`` other than injected files (Cinder volumes)."""
    return [m for m in body.get("mounts") or [] if m.get("type") != "bind"]


def without_injected_files(body):
    """The body minus the injected files (and ``mounts`` when nothing else is left)."""
    body = dict(body)
    mounts = volume_mounts(body)
    body.pop("mounts", None)
    if mounts:
        body["mounts"] = mounts
    return body


#: the hub id of the home volume tests
HUB = "hub-1"


def spawner_for(**config):
    """A spawner with a 1 GiB home volume on hub ``HUB``, waiting briefly."""
    settings = {
        "hub_id": HUB,
        "home_volume_size": 1,
        "home_volume_poll_interval": 0.01,
        "home_volume_timeout": 2.0,
    }
    settings.update(config)
    return make_spawner(config=settings)


def answer_http(status, seen=None):
    """An asyncio server callback answering every request with ``status``;
    the request lines go to ``seen``."""
    async def handle(reader, writer):
        line = await reader.readline()
        if seen is not None:
            seen.append(line.decode().strip())
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()
        writer.close()
    return handle


# -- the spawn page ---------------------------------------------------------------


def follow_progress(spawner, events):
    """A task reading ``spawner.progress()`` into ``events``, as the spawn page does."""
    async def read():
        async for event in spawner.progress():
            events.append(event)
    return asyncio.ensure_future(read())


def assert_forward(events):
    """The spawn page's bar never goes back."""
    percents = [e["progress"] for e in events]
    assert percents == sorted(percents), percents
