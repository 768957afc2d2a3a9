"""The hub API token is not readable through Zun's API (issue 8, item 13).

Any member of the cloud project can GET a container; the view shows its
``environment``.  The token travels as a Zun-injected file instead; the server
still uses it to talk to the hub.
"""

import json
import pathlib

import pytest

from .conftest import local_only
from .test_lifecycle_e2e import our_container

pytestmark = pytest.mark.localcloud


def environ_of(pid):
    raw = pathlib.Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


@local_only
def test_a_get_of_the_container_carries_no_token_and_the_server_still_authenticates(hub):
    hub.start_server("hedy")
    container = our_container(hub, "hedy")
    pids = hub.cloud.process_of(container["uuid"])
    assert pids, "no server process found for the container"
    # the server process got its token (from the injected file)...
    token = environ_of(pids[0])["JUPYTERHUB_API_TOKEN"]
    assert len(token) >= 32
    assert environ_of(pids[0])["JPY_API_TOKEN"] == token
    # ...and nothing any project member can read through Zun shows it
    shown = hub.cloud.container(container["uuid"])
    listed = [c for c in hub.cloud.containers() if c["uuid"] == container["uuid"]]
    for view in (shown, *listed):
        assert token not in json.dumps(view)
        assert not {"JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN"} & set(view["environment"])
    # the server checks requests with the hub using that token: a request through
    # the proxy with the e2e service's token is answered only if it works
    r = hub.server_api("GET", "hedy", "api/status")
    assert r.status_code == 200, r.text
    out = hub.run_cell("hedy", "import os; print(len(os.environ['JUPYTERHUB_API_TOKEN']))")
    assert out["stdout"].strip() == str(len(token)), out
