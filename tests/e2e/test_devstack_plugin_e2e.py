"""The DevStack plugin's `stack extra`, `unstack` and `clean` against the local cloud.

devstack/plugin.sh runs under tests/devstack_stubs/run-phase (stack.sh's errexit
and xtrace, plugins in registration order) with the real python-openstackclient
and python-zunclient (the local cloud's `osc` venv) and DevStack's own Keystone
helpers (tests/devstack_stubs/functions-cloud): the upstream Keystone, Zun and
Cinder do the work, Neutron's network, subnet and router calls go to the local
cloud's Neutron stub.  What the plugin made is checked through the APIs, then
unstack and clean must leave the cloud as it was: an in-use home volume (attached
as Zun attaches it, Zun being stopped by then on a real DevStack) included.
"""

import os
import pathlib
import subprocess
import sys
import uuid

import openstack
import pytest
import requests
import yaml

from .conftest import CLOUD_DIR, REPO, local_only

pytestmark = [pytest.mark.localcloud, local_only]

STUBS = REPO / "tests" / "devstack_stubs"
OSC_BIN = CLOUD_DIR / "venvs" / "osc" / "bin"
NEUTRON = "http://127.0.0.1:9696/v2.0"


def connect(cloud):
    """openstacksdk on one clouds.yaml entry (no file or environment read)."""
    return openstack.connection.Connection(config=openstack.config.get_cloud_region(
        load_yaml_config=False, load_envvars=False, **cloud))


def inventory(conn):
    """What the cloud shows an admin: projects, users, volumes, networks, routers."""
    def names(path):
        return sorted(i["id"] for i in requests.get(f"{NEUTRON}/{path}").json()[path])

    return {
        "projects": sorted(p.name for p in conn.identity.projects()),
        "users": sorted(u.name for u in conn.identity.users()),
        "volumes": sorted(v.id for v in conn.block_storage.volumes(all_projects=True)),
        "networks": names("networks"),
        "subnets": names("subnets"),
        "routers": names("routers"),
    }


@pytest.fixture
def plugin_env(local_cloud, tmp_path):
    if not (OSC_BIN / "openstack").exists():
        pytest.fail(f"{OSC_BIN}/openstack is missing: `devstack/local-cloud install` makes it")
    local = yaml.safe_load((CLOUD_DIR / "clouds.yaml").read_text())["clouds"]
    admin = local["local-admin"]
    clouds = tmp_path / "devstack-clouds.yaml"
    # DevStack's /etc/openstack/clouds.yaml names (the system scope is the
    # admin project's here)
    clouds.write_text(yaml.safe_dump({"clouds": {
        "devstack-admin": admin, "devstack-system-admin": admin}}))
    conn = connect(admin)
    # DevStack's public network, its IPv6 subnet listed first (IP_VERSION=4+6)
    public = requests.post(f"{NEUTRON}/networks", json={"network": {
        "name": f"public-{uuid.uuid4().hex[:6]}", "router:external": True}}).json()["network"]
    for cidr in ("2001:db8::/64", "172.24.4.0/24"):
        requests.post(f"{NEUTRON}/subnets", json={"subnet": {
            "network_id": public["id"], "cidr": cidr}}).raise_for_status()
    name = f"dsp-{uuid.uuid4().hex[:6]}"
    env = {
        "PATH": os.pathsep.join([str(OSC_BIN), str(STUBS), os.path.dirname(sys.executable),
                                 os.environ["PATH"]]),
        "REPO": str(REPO),
        "DEVSTACK_FUNCTIONS_EXTRA": str(STUBS / "functions-cloud"),
        "OS_CLIENT_CONFIG_FILE": str(clouds),
        "STUB_ROOT": str(tmp_path / "stub"),
        "OPENSTACK_LOG": str(tmp_path / "calls.log"),
        "DEST": str(tmp_path / "opt-stack"),
        "DATA_DIR": str(tmp_path / "data"),
        "SYSTEMD_DIR": str(tmp_path / "systemd"),
        "ENABLED_SERVICES": "key,c-api,c-vol,c-sch,q-svc,q-l3",
        "STACK_USER": "root",
        "ADMIN_PASSWORD": admin["auth"]["password"],
        "KEYSTONE_SERVICE_URI": admin["auth"]["auth_url"],
        "REGION_NAME": admin.get("region_name", "RegionOne"),
        "PUBLIC_NETWORK_NAME": public["name"],
        "JUPYTERHUB_CONF_DIR": str(tmp_path / "etc-jupyterhub"),
        "JUPYTERHUB_PROJECT": name,
        "JUPYTERHUB_OS_USER": name,
        "JUPYTERHUB_NETWORK": f"{name}-net",
        "JUPYTERHUB_ROUTER": f"{name}-router",
        "JUPYTERHUB_MAX_SERVERS": "3",
    }
    (tmp_path / "stub" / "cloud").mkdir(parents=True)
    before = inventory(conn)

    def run(*phase):
        out = subprocess.run([str(STUBS / "run-phase"), *phase], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             timeout=300)
        assert out.returncode == 0, out.stdout[-6000:]
        return out.stdout

    run.env, run.conn, run.before, run.public = env, conn, before, public
    yield run
    # whatever a failed test left: the plugin's own cleanup, then the network
    subprocess.run([str(STUBS / "run-phase"), "clean"], env=env, capture_output=True,
                   timeout=300)
    for subnet in requests.get(f"{NEUTRON}/networks/{public['id']}").json()["network"][
            "subnets"]:
        requests.delete(f"{NEUTRON}/subnets/{subnet}")
    requests.delete(f"{NEUTRON}/networks/{public['id']}")
    conn.close()


def attach_like_zun(conn, volume_id):
    """Cinder's attach calls as Zun's Docker driver makes them (reserve, attach)."""
    url = conn.block_storage.get_endpoint()
    for action in ({"os-reserve": None},
                   {"os-attach": {"instance_uuid": str(uuid.uuid4()), "mountpoint": "/home"}}):
        conn.session.post(f"{url}/volumes/{volume_id}/action", json=action).raise_for_status()


def test_the_plugin_makes_the_hubs_identity_and_unstack_leaves_the_cloud_as_it_was(plugin_env):
    env, conn = plugin_env.env, plugin_env.conn
    trace = plugin_env("stack", "extra")

    # the project, the user with `member` in it
    project = conn.identity.find_project(env["JUPYTERHUB_PROJECT"], ignore_missing=False)
    user = conn.identity.find_user(env["JUPYTERHUB_OS_USER"], ignore_missing=False)
    roles = {a.role["id"] for a in conn.identity.role_assignments(
        user_id=user.id, scope_project_id=project.id)}
    assert conn.identity.find_role("member").id in roles

    # the clouds.yaml's application credential logs in, and its secret is in
    # no line of stack.sh's xtrace
    clouds_yaml = pathlib.Path(env["JUPYTERHUB_CONF_DIR"]) / "clouds.yaml"
    cloud = yaml.safe_load(clouds_yaml.read_text())["clouds"]["jupyterhub"]
    secret = cloud["auth"]["application_credential_secret"]
    password = (pathlib.Path(env["DATA_DIR"]) / "jupyterhub" / "os_password").read_text().strip()
    assert len(secret) > 20 and secret not in trace and password not in trace
    hub = connect(cloud)
    assert hub.session.get_project_id() == project.id

    # quotas: Zun (containers, MiB) and Cinder (volumes, GiB), read back
    zun = conn.session.get(f"{conn.endpoint_for('container')}/quotas/{project.id}",
                           headers={"OpenStack-API-Version": "container 1.40"}).json()
    assert (zun["containers"], zun["memory"]) == (3, 3 * 4096)
    quota = conn.block_storage.get_quota_set(project.id)
    assert (quota.volumes, quota.gigabytes) == (6, 60)

    # the network and its router, and the hub's address: the IPv4 gateway
    nets = requests.get(f"{NEUTRON}/networks", params={"name": env["JUPYTERHUB_NETWORK"]})
    (net,) = nets.json()["networks"]
    assert net["project_id"] == project.id and len(net["subnets"]) == 1
    assert requests.get(f"{NEUTRON}/routers",
                        params={"name": env["JUPYTERHUB_ROUTER"]}).json()["routers"]
    spawner_config = (pathlib.Path(env["JUPYTERHUB_CONF_DIR"]) / "spawner_config.py").read_text()
    assert '"http://172.24.4.1:"' in spawner_config

    # a home volume left attached (its container's Zun and Docker are stopped
    # before this plugin's unstack on a real DevStack)
    volume = hub.block_storage.create_volume(size=1, name="home-e2e")
    hub.block_storage.wait_for_status(volume, "available", wait=120)
    attach_like_zun(conn, volume.id)
    assert conn.block_storage.get_volume(volume.id).status == "in-use"

    plugin_env("clean")  # unstack.sh, then the plugin's clean phase
    assert conn.identity.find_project(env["JUPYTERHUB_PROJECT"]) is None
    assert conn.identity.find_user(env["JUPYTERHUB_OS_USER"]) is None
    assert not pathlib.Path(env["JUPYTERHUB_CONF_DIR"]).exists()
    assert inventory(conn) == plugin_env.before
    hub.close()
