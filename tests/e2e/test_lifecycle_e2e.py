"""The spawner's lifecycle against the real upstream services of the local cloud."""

import configparser
import os
import signal
import time

import pytest

from .conftest import CLOUD_DIR, IMAGE, local_only, wait_for

pytestmark = pytest.mark.localcloud


def our_container(hub, user, server=""):
    found = hub.cloud.containers(**{
        "hub.jupyter.org/hub": hub.hub_id,
        "hub.jupyter.org/user": user,
        "hub.jupyter.org/server": server,
    })
    assert len(found) <= 1, f"two containers for {user}: {found}"
    return found[0] if found else None


def test_start_reaches_running_and_the_server_answers_through_the_hub(hub):
    server = hub.start_server("ada")
    assert server["ready"]
    # the request goes browser -> proxy -> container address, as on a cloud
    r = hub.server_api("GET", "ada", "api/status")
    assert r.status_code == 200, r.text
    container = our_container(hub, "ada")
    assert container["status"] == "Running"
    addr = next(iter(container["addresses"].values()))[0]["addr"]
    assert addr != "127.0.0.1"  # an address of its own
    # the hub connects to the address Zun reported
    assert server["url"] == "/user/ada/"
    # and a notebook cell runs in it
    out = hub.run_cell("ada", "import os; print(os.environ['JUPYTERHUB_USER'], 6 * 7)")
    assert out["stdout"].strip() == "ada 42", out


def test_the_container_in_zun_carries_size_labels_and_image(hub):
    hub.start_server("grace")
    container = our_container(hub, "grace")
    # the default flavor is the size the hub ran with before: 1 vCPU, 2048 MiB
    assert container["cpu"] == 1.0
    assert container["memory"] == "2048"
    assert container["image"] == IMAGE
    labels = container["labels"]
    assert labels["hub.jupyter.org/hub"] == hub.hub_id
    assert labels["hub.jupyter.org/user"] == "grace"
    assert labels["hub.jupyter.org/managed-by"] == "magnum-spawner"
    assert container["name"] == "jupyter-grace"


def zun_sync_interval():
    """``[DEFAULT] sync_container_state_interval`` of the local cloud's Zun."""
    conf = configparser.ConfigParser(strict=False, interpolation=None)
    conf.read(CLOUD_DIR / "etc" / "zun" / "zun.conf")
    return conf.getfloat("DEFAULT", "sync_container_state_interval", fallback=60.0)


@local_only
def test_poll_tracks_a_server_killed_from_outside(hub):
    hub.start_server("linus")
    container = our_container(hub, "linus")
    pids = hub.cloud.process_of(container["uuid"])
    assert pids, "no process found for the container"
    killed = time.monotonic()
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    # Zun's database learns it at its next state sync; the hub-wide poller's
    # next list of stopped containers sees it; JupyterHub's next poll of the
    # server reads it (etc/local_jupyterhub_config.py: poll_interval 5 s,
    # hub_poll_interval 2 s).  Two poller intervals, one poll, one sync, and a
    # few seconds for the lists themselves on a busy machine.
    bound = zun_sync_interval() + 2 * 2 + 5 + 5
    wait_for(lambda: hub.server("linus") is None or not hub.server("linus").get("ready"),
             bound, 0.5, f"the hub to notice the dead server within {bound:.0f} s")
    print(f"the hub noticed the kill after {time.monotonic() - killed:.1f} s (bound {bound:.0f} s)")
    # poll() deletes an ended container itself: JupyterHub will not call stop()
    wait_for(lambda: hub.cloud.container(container["uuid"]) is None, 30, 0.5,
             "poll() to delete the dead server's container")
    # the user can start again: the stopped container is replaced, not duplicated
    hub.start_server("linus")
    assert our_container(hub, "linus")["uuid"] != container["uuid"]


def test_stop_removes_the_container(hub):
    hub.start_server("barbara")
    uuid = our_container(hub, "barbara")["uuid"]
    hub.stop_server("barbara")
    wait_for(lambda: hub.cloud.container(uuid) is None, 60, 1, "the container to go")
    assert our_container(hub, "barbara") is None


def test_a_hub_restart_reattaches_to_a_running_server(hub):
    hub.start_server("edsger")
    before = our_container(hub, "edsger")
    hub.restart()
    # the restarted hub loads the container id from its state and polls it
    server = wait_for(lambda: hub.server("edsger"), 30, 1, "the server after restart")
    assert server["ready"]
    assert hub.server_api("GET", "edsger", "api/status").status_code == 200
    after = our_container(hub, "edsger")
    assert after["uuid"] == before["uuid"]
    assert after["status"] == "Running"
