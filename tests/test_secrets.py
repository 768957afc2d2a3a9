"""No secret in any log (at DEBUG), in the spawner's state or in an error message.

The secrets: the hub API token JupyterHub gives the spawner, the Keystone password
or application-credential secret in the hub's cloud config, and the Keystone token
the hub logs in with.  Every logger that might see a request or response is at
DEBUG: root, keystoneauth, openstacksdk, urllib3 and the spawner's own.
"""

import base64
import json
import logging

import pytest
from jupyterhub.spawner import SpawnException

from magnum_spawner.zun import objects

from .helpers import injected_files, make_spawner
from .recorded import (
    CREATE,
    KEYSTONE,
    LIST_BY_NAME,
    VID,
    ZUN,
    ZUN_UUID,
    creates,
    listed,
    serve_lists,
    status,
    zun_starts,
)

API_TOKEN = "hub-api-token-secret"  # what helpers.make_spawner hands the spawner
PASSWORD = "s3cret-pw"  # conftest.PASSWORD_AUTH
APP_SECRET = "app-cred-s3cret-value"
KEYSTONE_TOKEN = "gAAAAA-recorded-token"  # recorded.RecordedCloud's token id

APP_CRED_AUTH = {
    "auth_url": f"{KEYSTONE}/v3",
    "application_credential_id": "4a2bd4ed0b874a64a5a1a9e4d1f6f7c1",
    "application_credential_secret": APP_SECRET,
}

SHOW = f"{ZUN}/v1/containers/{ZUN_UUID}"
DELETE = f"{SHOW}?stop=true"
LOGGERS = ("", "keystoneauth", "openstack", "urllib3", "requests_mock", "traitlets",
           "magnum_spawner")


def forms(secret):
    """A secret as it could appear: as is, base64-encoded (file injection), JSON."""
    return {secret, base64.b64encode(secret.encode()).decode(), json.dumps(secret)}


def leaks(text, secrets):
    return sorted({s for secret in secrets for s in forms(secret) if s in text})


class Everything(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record):
        self.records.append(self.format(record))

    @property
    def text(self):
        return "\n".join(self.records)


@pytest.fixture
def debug_logs():
    handler = Everything()
    saved = {}
    for name in LOGGERS:
        logger = logging.getLogger(name)
        saved[name] = logger.level
        logger.setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def full_lifecycle_cloud(cinder):
    from .test_volumes import OURS  # alice's home, with her id

    serve_lists(cinder, by_name=[listed(metadata=OURS)])
    zun_starts(cinder)
    cinder.reply("DELETE", DELETE, "zun-container-delete-stop-true")
    cinder.reply("GET", LIST_BY_NAME, "zun-containers-list-empty")


@pytest.mark.parametrize("auth, cloud_secret", [
    (None, PASSWORD), (APP_CRED_AUTH, APP_SECRET),
], ids=["password", "application-credential"])
async def test_start_poll_stop_at_debug_logs_no_secret(cinder, debug_logs, auth, cloud_secret):
    full_lifecycle_cloud(cinder)
    config = {"hub_id": "hub-1", "home_volume_size": 1, "home_volume_poll_interval": 0.01,
              "home_volume_timeout": 2.0}
    if auth:
        config["auth"] = auth
    spawner = make_spawner(config=config)
    await spawner.start()
    assert await spawner.poll() is None
    state = spawner.get_state()
    # after the start the show answers 404: stop() waits for that
    cinder.reply("GET", SHOW, "zun-container-show-404")
    await spawner.stop()
    secrets = (API_TOKEN, cloud_secret, KEYSTONE_TOKEN)

    # the test sees what it claims to: requests and their bodies reached the loggers
    assert cinder.requests("POST", "/v1/containers")
    assert "9517/v1/containers" in debug_logs.text
    assert leaks(debug_logs.text, secrets) == []
    assert leaks(json.dumps(state), secrets) == []
    assert leaks(json.dumps(spawner.get_state()), secrets) == []
    assert state["home_volume_id"] == VID


async def test_a_refused_create_that_echoes_the_body_leaks_nothing(cloud, debug_logs):
    """Zun's schema errors quote the offending value; that value may be a secret."""
    cloud.reply("GET", LIST_BY_NAME, "zun-containers-list-empty")

    def echo(request, context):
        context.status_code = 400
        sent = request.json()
        detail = (
            "Invalid input for field 'mounts'.Value: "
            f"{sent.get('mounts')!r}. Environment {sent['environment']!r} "
            "is not valid under any of the given schemas"
        )
        rec = json.loads(json.dumps(bad_request))
        for err in rec["errors"]:
            err["detail"] = err["title"] = detail
        return rec

    from .recorded import body
    bad_request = body("zun-container-create-bad-name")
    cloud.m.post(CREATE, json=echo)
    spawner = make_spawner()
    with pytest.raises(SpawnException) as info:
        await spawner.start()
    error = info.value
    assert "Invalid input for field 'mounts'" in error.message
    secrets = (API_TOKEN, PASSWORD, KEYSTONE_TOKEN)
    for text in (error.message, error.log_message or "", str(error), debug_logs.text):
        assert leaks(text, secrets) == []


async def test_a_poll_of_a_container_whose_view_carries_a_token_logs_nothing(cloud, debug_logs):
    """A container made before file injection shows the token in its environment."""
    def with_token(b):
        status("Running")(b)
        b["environment"]["JUPYTERHUB_API_TOKEN"] = API_TOKEN

    cloud.reply("GET", f"{ZUN}/v1/containers/{ZUN_UUID}", "zun-container-show-running",
                change=with_token)
    spawner = make_spawner()
    spawner.load_state({"container_id": ZUN_UUID, "container_name": "jupyter-alice"})
    assert await spawner.poll() is None
    assert cloud.requests("GET", ZUN_UUID)
    assert leaks(debug_logs.text, (API_TOKEN, PASSWORD, KEYSTONE_TOKEN)) == []


# -- the token is injected as a file, not put in Zun's environment (item 13) -------


def test_the_launcher_reads_each_file_into_the_environment_then_runs_the_command(tmp_path):
    """The shell snippet run in the container, run here with a real /bin/sh."""
    import subprocess
    import sys

    secret_dir = tmp_path / "secrets"
    command, mounts = objects.inject_secrets(
        [sys.executable, "-c",
         "import os, sys; print(os.environ['JUPYTERHUB_API_TOKEN'], "
         "os.environ['MY_SECRET'], sys.argv[1:])", "--flag", "a b"],
        {"JUPYTERHUB_API_TOKEN": API_TOKEN, "MY_SECRET": "x y'z$"},
        str(secret_dir),
    )
    secret_dir.mkdir()
    # what Zun's compute host does with each bind mount: decode, write, mount
    for m in mounts:
        with open(m["destination"], "wb") as f:
            f.write(base64.b64decode(m["source"]))
    out = subprocess.run(command, capture_output=True, text=True, env={}, check=True)
    assert out.stdout.split("\n")[0] == f"{API_TOKEN} x y'z$ ['--flag', 'a b']"


async def test_operator_secrets_are_injected_too_and_plain_values_stay(cloud):
    creates(cloud)
    spawner = make_spawner(config={
        "environment": {"S3_SECRET_KEY": "k3y", "DB_PASSWORD": "pw", "COURSE": "phys"},
        "secrets_dir": "/etc/hub-secrets",
    })
    await spawner.start()
    sent = cloud.requests("POST", "containers")[0].json()
    files = injected_files(sent)
    assert files == {
        "/etc/hub-secrets/JUPYTERHUB_API_TOKEN": API_TOKEN,
        "/etc/hub-secrets/JPY_API_TOKEN": API_TOKEN,
        "/etc/hub-secrets/S3_SECRET_KEY": "k3y",
        "/etc/hub-secrets/DB_PASSWORD": "pw",
    }
    assert sent["environment"]["COURSE"] == "phys"
    assert not set(sent["environment"]) & {"S3_SECRET_KEY", "DB_PASSWORD",
                                            "JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN"}


async def test_a_secret_that_cannot_be_a_file_name_stops_the_spawn_readably(cloud):
    spawner = make_spawner(config={"environment": {"MY-TOKEN": "t"}})
    cloud.reply("GET", LIST_BY_NAME, "zun-containers-list-empty")
    with pytest.raises(SpawnException) as info:
        await spawner.start()
    assert "cannot be passed safely" in info.value.message
    assert "'MY-TOKEN'" in info.value.log_message
    assert not cloud.requests("POST", "containers")


# -- what the spawn page shows ------------------------------------------------------


def test_the_spawn_page_shows_the_users_sentence_not_the_operators_detail():
    """JupyterHub's progress stream formats a failed spawn with format_exception:
    str() of a plain SpawnException is "500 SpawnException(reason=...): " plus the
    log message (request ids, hosts, ports)."""
    from jupyterhub.utils import format_exception

    from magnum_spawner.common.errors import Unreachable, for_user

    error = for_user(Unreachable("cannot reach the Zun API at 10.0.0.5:9517 (the "
                                 "connection was reset)"), "create the server's container")
    message, html = format_exception(error)
    assert message == error.message
    assert "SpawnException" not in message and "reason=" not in message
    assert "10.0.0.5:9517" in error.log_message  # the operator still gets it


async def test_an_operators_own_secret_list_still_keeps_the_hubs_token_out_of_sight(cloud):
    """``secret_environment_names`` replaces the default patterns; JupyterHub's own
    token variables stay secret whatever it says (Zun shows ``environment`` to
    every member of the project)."""
    creates(cloud)
    spawner = make_spawner(config={
        "secret_environment_names": ["*MY_SECRET*"],
        "environment": {"MY_SECRET_X": "hidden", "COURSE": "phys"},
    })
    await spawner.start()
    sent = cloud.requests("POST", "containers")[0].json()
    assert not leaks(json.dumps(sent["environment"]), [API_TOKEN])
    assert injected_files(sent) == {
        "/run/jupyterhub-secrets/JUPYTERHUB_API_TOKEN": API_TOKEN,
        "/run/jupyterhub-secrets/JPY_API_TOKEN": API_TOKEN,
        "/run/jupyterhub-secrets/MY_SECRET_X": "hidden",
    }
    assert sent["environment"]["COURSE"] == "phys"
