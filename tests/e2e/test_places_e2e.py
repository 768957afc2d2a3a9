"""One hub over two places on the local cloud (issue 21): two projects.

Place "first" is a project of its own with a Zun quota of one container; place
"second" is the hub's usual project.  With ``place_policy = "fill"``: the first
new user lands in "first", the next new one is refused there (Zun's 403 over
quota) and lands in "second" with no home left behind in "first"; a user whose
home is in the full "first" gets the sentence naming it; a hub restart
reattaches the servers of both places; nothing is left in either project.

Costs one hub, four starts and a restart (about a minute and a half).
"""

import json
import os
import time

import pytest
import requests
import yaml

from .conftest import HubProcess, docker_facts_beside, LocalCloud, fail_on_leaks, wait_for

pytestmark = pytest.mark.localcloud

PROJECT = "e2e-places"
#: The start times measured here (the README's figures), written for the report.
FIGURES = os.environ.get("PLACES_E2E_FIGURES")


def admin_session(cloud):
    import openstack.config

    config = openstack.config.OpenStackConfig(config_files=[str(cloud.clouds_yaml)])
    return config.get_one(cloud="local-admin").get_session()


@pytest.fixture
def first_place(local_cloud, tmp_path, monkeypatch):
    """The project of place "first" (made once, quota of one container), and a
    clouds.yaml naming it ``places-first`` beside the hub's ``local``."""
    clouds = yaml.safe_load(local_cloud.clouds_yaml.read_text())
    entry = json.loads(json.dumps(clouds["clouds"]["local"]))
    entry["auth"]["project_name"] = PROJECT
    clouds["clouds"]["places-first"] = entry
    path = tmp_path / "clouds.yaml"
    path.write_text(yaml.safe_dump(clouds))
    path.chmod(0o600)
    docker_facts_beside(local_cloud, path)
    # (openstacksdk reads OS_CLIENT_CONFIG_FILE before any file it is given)
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(path))
    first = LocalCloud(path, "places-first")
    sess = admin_session(first)
    keystone = sess.get_endpoint(service_type="identity", interface="public").rstrip("/")
    if not keystone.endswith("/v3"):
        keystone += "/v3"
    found = sess.get(f"{keystone}/projects?name={PROJECT}").json()["projects"]
    project = found[0] if found else sess.post(f"{keystone}/projects", json={"project": {
        "name": PROJECT, "domain_id": "default",
        "description": "place 'first' of test_places_e2e"}}).json()["project"]
    hub_user = sess.get(f"{keystone}/users?name=hub").json()["users"][0]
    for role in ("member", "reader"):
        rid = sess.get(f"{keystone}/roles?name={role}").json()["roles"][0]["id"]
        sess.put(f"{keystone}/projects/{project['id']}/users/{hub_user['id']}/roles/{rid}")
    zun = sess.get_endpoint(service_type="container", interface="public").rstrip("/")
    r = sess.put(f"{zun}/quotas/{project['id']}", json={"containers": 1},
                 headers={"OpenStack-API-Version": "container 1.40"}, raise_exc=False)
    assert r.status_code < 400, f"zun quota of {PROJECT}: {r.status_code} {r.text}"

    yield first, LocalCloud(path, "local")
    first.close()


def place_of(cloud, hub, user):
    return [c["name"] for c in cloud.containers(**{"hub.jupyter.org/hub": hub.hub_id,
                                                   "hub.jupyter.org/user": user})]


def homes(cloud, hub, user):
    return [v.id for v in cloud.volumes(**{"hub.jupyter.org/hub": hub.hub_id,
                                           "hub.jupyter.org/user": user})]


def timed_start(hub, user):
    t0 = time.monotonic()
    hub.start_server(user)
    return time.monotonic() - t0


def test_new_users_spill_over_homes_decide_and_a_restart_reattaches(first_place, tmp_path):
    first, second = first_place
    hub = HubProcess(tmp_path / "hub", second, """
        c.ZunSpawner.places = [{"name": "first", "cloud": "places-first"},
                               {"name": "second", "cloud": "local"}]
        c.ZunSpawner.place_policy = "fill"
    """)
    hub.start()
    leaks = []
    try:
        normal = timed_start(hub, "pl-alice")
        assert place_of(first, hub, "pl-alice") == ["jupyter-pl-alice"]
        # "first" is full (one container): the next new user lands in "second"
        spilled = timed_start(hub, "pl-bob")
        assert place_of(second, hub, "pl-bob") == ["jupyter-pl-bob"]
        assert place_of(first, hub, "pl-bob") == [] and homes(first, hub, "pl-bob") == []
        assert len(homes(second, hub, "pl-bob")) == 1
        state = hub.api("GET", "/users/pl-bob").json()["servers"][""]["state"]
        assert state["place"] == "second"

        # alice's home stays in "first"; carol takes its one container
        hub.stop_server("pl-alice")
        hub.start_server("pl-carol")
        assert place_of(first, hub, "pl-carol") == ["jupyter-pl-carol"]
        r = hub.request_start("pl-alice")
        # a fast failure is the start request's own answer, a slow one the spawn page's
        message = r.json()["message"] if r.status_code >= 400 else failure_message(
            hub, "pl-alice")
        assert message.startswith(
            "Your server cannot start in first, where your home folder is: the container "
            "quota is full (containers)"), message
        assert place_of(second, hub, "pl-alice") == [] and homes(second, hub, "pl-alice") == []
        assert len(homes(first, hub, "pl-alice")) == 1

        # a restarted hub reattaches both places' servers: still running, answering
        hub.restart()
        time.sleep(12)  # two full lists (hub_full_poll_interval 10 s) and polls
        for user in ("pl-bob", "pl-carol"):
            assert (hub.server(user) or {}).get("ready"), f"{user} not running after restart"
            wait_for(lambda u=user: hub.server_api("GET", u, "api/status").status_code == 200,
                     30, 1, f"{user}'s server to answer")
        figures = {"normal_start_s": round(normal, 2), "spilled_start_s": round(spilled, 2)}
        print(f"\nplaces e2e: {figures}")
        if FIGURES:
            with open(FIGURES, "w") as f:
                json.dump(figures, f)
    finally:
        leaks += hub.shutdown()  # every server stopped; "second"'s leftovers
        leaks += first.remove_hub_leftovers(hub.hub_id)
    fail_on_leaks("the two-place hub", leaks)


def failure_message(hub, user, timeout=180):
    """The spawn page's last message once the start failed (the progress stream)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            r = hub.api("GET", f"/users/{user}/server/progress", stream=True)
            for line in r.iter_lines(decode_unicode=True):
                if line and line.startswith("data:"):
                    event = json.loads(line[5:])
                    if event.get("failed") or event.get("ready"):
                        return event.get("message") or ""
        except requests.RequestException:
            pass
        time.sleep(1)
    raise AssertionError(f"no end of {user}'s start in {timeout} s")
