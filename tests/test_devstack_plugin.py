"""The DevStack plugin's phases (devstack/plugin.sh) run as DevStack runs them.

No DevStack here: tests/devstack_stubs/run-phase stands in for stack.sh,
unstack.sh and clean.sh (errexit and xtrace as upstream, plugins in
registration order, Zun's plugin first), ./functions for DevStack's functions
(setup_develop reads setup.cfg, pip_install adds the constraints file,
run_process writes DevStack's unit), and `openstack`/`iptables` for the cloud
and the firewall (a small stateful stand-in).  The same phases against the real
Keystone, Zun and Cinder with python-openstackclient:
tests/e2e/test_devstack_plugin_e2e.py.
"""

import configparser
import os
import pathlib
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[1]
STUBS = REPO / "tests" / "devstack_stubs"
CHP_BIN = REPO / ".cache" / "node" / "node_modules" / ".bin"
# openstack/requirements upper-constraints.txt (master, 2026-08): what
# DevStack's pip_install constrains every install with.
UPPER_CONSTRAINTS = """\
keystoneauth1===5.15.0
openstacksdk===4.18.0
python-openstackclient===10.2.1
python-zunclient===5.4.0
"""
KINDS = ("projects", "users", "appcreds", "containers", "fips", "volumes", "sgs", "ports",
         "networks", "routers")


@dataclass
class Phase:
    calls: list
    out: str
    returncode: int


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def devstack(tmp_path):
    import getpass

    root = tmp_path / "stub"
    for kind in KINDS:
        (root / "cloud" / kind).mkdir(parents=True)
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements" / "upper-constraints.txt").write_text(UPPER_CONSTRAINTS)
    log = tmp_path / "calls.log"
    conf = tmp_path / "etc-jupyterhub"
    env = {
        "PATH": os.pathsep.join([str(STUBS), os.path.dirname(sys.executable), str(CHP_BIN),
                                 os.environ["PATH"]]),
        "REPO": str(REPO),
        "STUB_ROOT": str(root),
        "OPENSTACK_LOG": str(log),
        "DEST": str(tmp_path / "opt-stack"),
        "DATA_DIR": str(tmp_path / "data"),
        "REQUIREMENTS_DIR": str(tmp_path / "requirements"),
        "SYSTEMD_DIR": str(tmp_path / "systemd"),
        "ENABLED_SERVICES": "key,c-api,c-vol,c-sch,q-svc,q-l3",
        "STACK_USER": getpass.getuser(),
        "ADMIN_PASSWORD": "devstack-admin-pw",
        "KEYSTONE_SERVICE_URI": "http://192.0.2.10/identity",
        "REGION_NAME": "RegionOne",
        "PUBLIC_NETWORK_NAME": "public",
        "JUPYTERHUB_CONF_DIR": str(conf),
        "MAGNUM_SPAWNER_DIR": str(REPO),
    }

    def run(*phase, check=True):
        out = subprocess.run(
            [str(STUBS / "run-phase"), *phase], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, timeout=60,
        )
        if check:
            assert out.returncode == 0, out.stdout
        calls = log.read_text().splitlines() if log.exists() else []
        log.unlink(missing_ok=True)
        return Phase(calls, out.stdout, out.returncode)

    def seed(kind, ident, status="ACTIVE"):
        (root / "cloud" / kind / ident).write_text(status)

    def left(kind):
        return sorted(os.listdir(root / "cloud" / kind))

    run.conf, run.env, run.root, run.seed, run.left = conf, env, root, seed, left
    run.state = tmp_path / "data" / "jupyterhub"
    run.unit = tmp_path / "systemd" / "devstack@jupyterhub.service"
    return run


# -- stack install --------------------------------------------------------------

def test_stack_install_gets_through_setup_develop_with_the_projects_name(devstack):
    # DevStack reads the name from setup.cfg with awk (under errexit) to take
    # the project out of the constraints, then `pip install -e` it.
    calls = devstack("stack", "install").calls
    assert (f"edit-constraints {devstack.env['REQUIREMENTS_DIR']}/upper-constraints.txt "
            "-- magnum-spawner") in calls
    assert (f"pip_install -c {devstack.env['REQUIREMENTS_DIR']}/upper-constraints.txt "
            f"-e {REPO}") in calls


def test_the_name_devstack_reads_from_setup_cfg_is_the_packages_name():
    import configparser as cp
    import tomllib

    setup_cfg = cp.ConfigParser()
    setup_cfg.read(REPO / "setup.cfg")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert setup_cfg["metadata"]["name"] == project["name"]
    # awk '/^name.*=/ {print $3}' must see one such line
    lines = [ln for ln in (REPO / "setup.cfg").read_text().splitlines()
             if ln.startswith("name") and "=" in ln]
    assert [ln.split()[2] for ln in lines] == [project["name"]]


def test_stack_install_installs_nothing_the_constraints_or_zuul_decide(devstack):
    # a pinned client conflicts with upper-constraints (pip refuses), and in
    # Zuul would replace the python-zunclient the job installs from git
    calls = devstack("stack", "install").calls
    installs = [c for c in calls if c.startswith("pip_install")]
    assert installs == [f"pip_install -c {devstack.env['REQUIREMENTS_DIR']}/upper-constraints.txt "
                        f"-e {REPO}"]


# -- stack extra ----------------------------------------------------------------

def test_stack_extra_gives_the_hub_its_own_project_user_credential_quotas_network(devstack):
    calls = devstack("stack", "extra").calls
    assert "get_or_create_project jupyterhub default" in calls
    assert "get_or_add_user_project_role member u-0001 p-0001" in calls
    # the credential is made by the hub user itself, in its project
    (create,) = [c for c in calls if "application credential create" in c]
    assert "--os-username jupyterhub" in create and "--os-project-name jupyterhub" in create
    password = (devstack.state / "os_password").read_text().strip()
    assert password not in create  # through the environment, not the command line
    assert ("openstack --os-cloud devstack-admin appcontainer quota update --containers 20 "
            "--cpu 40 --memory 81920 --disk 200 p-0001") in calls
    (quota,) = [c for c in calls if " quota set " in c]
    for part in ("--volumes 40", "--gigabytes 400", "--floating-ips 25", "--secgroups 30",
                 "p-0001"):
        assert part in quota
    assert any("router create --project p-0001 --external-gateway public" in c for c in calls)
    assert any("router add subnet jupyterhub-router jupyterhub-net-subnet" in c for c in calls)
    assert "demo" not in "\n".join(calls)


def test_the_clouds_yaml_holds_the_application_credential_and_is_private(devstack):
    devstack("stack", "extra")
    path = devstack.conf / "clouds.yaml"
    assert path.stat().st_mode & 0o777 == 0o600
    cloud = yaml.safe_load(path.read_text())["clouds"]["jupyterhub"]
    assert cloud["auth_type"] == "v3applicationcredential"
    assert cloud["auth"] == {
        "auth_url": "http://192.0.2.10/identity",
        "application_credential_id": "ac-0001",
        "application_credential_secret": "ac-secret-0001",
    }
    assert "cacert" not in cloud
    spawner_config = (devstack.conf / "spawner_config.py").read_text()
    assert 'c.ZunSpawner.server_access = "floating_ip"' in spawner_config
    assert "c.ZunSpawner.exposed_ports = [8888]" in spawner_config


def test_with_tls_proxy_the_clouds_yaml_trusts_devstacks_ca(devstack):
    devstack.env["ENABLED_SERVICES"] += ",tls-proxy"
    devstack.env["KEYSTONE_SERVICE_URI"] = "https://192.0.2.10/identity"
    devstack("stack", "extra")
    cloud = yaml.safe_load((devstack.conf / "clouds.yaml").read_text())["clouds"]["jupyterhub"]
    # stack.sh: SSL_BUNDLE_FILE="$DATA_DIR/ca-bundle.pem"
    assert cloud["cacert"] == f"{devstack.env['DATA_DIR']}/ca-bundle.pem"


def test_the_hub_address_is_the_ipv4_gateway_whatever_order_the_subnets_come_in(devstack):
    devstack("stack", "extra")
    spawner_config = (devstack.conf / "spawner_config.py").read_text()
    assert '"http://172.24.4.1:"' in spawner_config
    assert 'c.JupyterHub.hub_ip = "172.24.4.1"' in spawner_config


def test_an_ipv6_hub_address_is_bracketed_in_its_url(devstack):
    devstack.env["PUBLIC_NETWORK_GATEWAY"] = "2001:db8::2"
    devstack("stack", "extra")
    spawner_config = (devstack.conf / "spawner_config.py").read_text()
    assert '"http://[2001:db8::2]:"' in spawner_config


def test_no_secret_reaches_the_xtrace_log(devstack):
    # stack.sh runs with xtrace into devstacklog.txt
    out = devstack("stack", "extra").out
    assert "+ " in out  # the trace is there
    secrets = ["ac-secret-0001"] + [(devstack.state / n).read_text().strip()
                                    for n in ("os_password", "user_password", "admin_password")]
    for secret in secrets:
        assert secret not in out


def test_the_hub_logs_in_with_made_passwords_not_devstacks(devstack):
    devstack("stack", "extra")
    config = (devstack.conf / "jupyterhub_config.py").read_text()
    assert 'authenticator_class = "shared-password"' in config
    assert "devstack-admin-pw" not in config
    for name in ("os_password", "user_password", "admin_password"):
        assert (devstack.state / name).stat().st_mode & 0o777 == 0o600
    assert len((devstack.state / "admin_password").read_text().strip()) >= 32


# -- the firewall ---------------------------------------------------------------

def test_with_an_openstack_input_chain_the_hub_port_is_opened_to_the_public_network_only(devstack):
    (devstack.root / "firewall").write_text("")
    devstack("stack", "extra")
    rules = (devstack.root / "firewall").read_text().splitlines()
    assert rules == ["-A openstack-INPUT -i br-ex -s 172.24.4.0/24 -d 172.24.4.1 -p tcp "
                     "--dport 8081 -m comment --comment magnum-spawner-hub -j ACCEPT"]
    devstack("stack", "extra")  # a second stack adds no second rule
    assert len((devstack.root / "firewall").read_text().splitlines()) == 1
    devstack("unstack")
    assert (devstack.root / "firewall").read_text() == ""


def test_without_that_chain_the_firewall_is_left_alone(devstack):
    calls = devstack("stack", "extra").calls
    assert [c for c in calls if c.startswith("ip")] == ["iptables -S openstack-INPUT"]


# -- the hub under systemd ------------------------------------------------------

def unit_service(path):
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str
    unit.read(path)
    return unit["Service"]


def test_devstacks_unit_keeps_its_path(devstack):
    devstack("stack", "extra")
    env = dict(kv.split("=", 1) for kv in shlex.split(unit_service(devstack.unit)["Environment"]))
    assert env["PATH"] == devstack.env["PATH"]


@pytest.mark.integration
def test_the_hub_runs_from_devstacks_unit_in_an_empty_directory_and_writes_only_its_state(
        devstack, tmp_path):
    # systemd starts ExecStart with the unit's Environment, in / (no
    # WorkingDirectory); KillMode=process stops the hub's process only.
    port, hub_port, api_port = free_port(), free_port(), free_port()
    devstack.env.update(JUPYTERHUB_PORT=str(port), JUPYTERHUB_HUB_PORT=str(hub_port),
                        JUPYTERHUB_PROXY_API_PORT=str(api_port), PUBLIC_NETWORK_GATEWAY="127.0.0.1",
                        JUPYTERHUB_BIND_IP="127.0.0.1")
    devstack("stack", "extra")
    service = unit_service(devstack.unit)
    env = dict(kv.split("=", 1) for kv in shlex.split(service["Environment"]))
    cwd = tmp_path / "slash"
    cwd.mkdir()
    log = (tmp_path / "hub.log").open("w")
    hub = subprocess.Popen(shlex.split(service["ExecStart"]), env=env, cwd=cwd,
                           stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert hub.poll() is None, (tmp_path / "hub.log").read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/hub/api", timeout=2) as r:
                    assert r.status == 200
                break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "hub.log").read_text()
                time.sleep(0.5)
        assert (devstack.state / "proxy.pid").exists()
    finally:
        hub.send_signal(signal.SIGTERM)
        hub.wait(timeout=30)
    assert os.listdir(cwd) == []
    assert {"jupyterhub.sqlite", "cookie_secret"} <= set(os.listdir(devstack.state))
    with socket.socket() as s:  # the proxy went with the hub
        assert s.connect_ex(("127.0.0.1", api_port)) != 0


# -- unstack and clean ----------------------------------------------------------

def seed_the_hubs_project(devstack):
    for kind, ident, status in [
        ("projects", "jupyterhub", "ACTIVE"), ("users", "jupyterhub", "ACTIVE"),
        ("appcreds", "jupyterhub-devstack", "ACTIVE"), ("containers", "c-0001", "Running"),
        ("fips", "f-0001", "ACTIVE"), ("volumes", "v-0001", "in-use"),
        ("volumes", "v-0002", "available"), ("sgs", "sg-0001", "ACTIVE"),
        ("networks", "jupyterhub-net", "ACTIVE"), ("routers", "jupyterhub-router", "ACTIVE"),
    ]:
        devstack.seed(kind, ident, status)


def test_unstack_after_zun_stopped_still_removes_the_project_and_all_in_it(devstack):
    seed_the_hubs_project(devstack)
    calls = devstack("unstack").calls
    assert calls[0] == "stop_process jupyterhub"
    for kind in ("projects", "users", "appcreds", "fips", "volumes", "sgs", "networks",
                 "routers"):
        assert devstack.left(kind) == [], kind
    # the attached home volume is detached in Cinder (Zun cannot any more),
    # without polling its status
    assert not [c for c in calls if " volume show " in c]
    # the credential is deleted by its user before the user goes (Keystone's
    # bulk delete with a user leans on database cascades)
    (cred,) = [i for i, c in enumerate(calls) if "application credential delete" in c]
    assert "--os-username jupyterhub" in calls[cred]
    assert cred < next(i for i, c in enumerate(calls) if " user delete " in c)
    delete_project = calls.index("openstack --os-cloud devstack-admin project delete "
                                 "--domain default jupyterhub")
    assert delete_project == len(calls) - 1


def test_a_project_with_a_volume_that_cannot_go_is_kept_and_named(devstack):
    seed_the_hubs_project(devstack)
    devstack.seed("volumes", "v-0003", "error_deleting")  # Cinder refuses it
    phase = devstack("unstack")
    assert devstack.left("volumes") == ["v-0003"]
    assert devstack.left("projects") == ["jupyterhub"]
    assert devstack.left("users") == ["jupyterhub"]
    assert "project jupyterhub (p-0001) is kept" in phase.out and "volume v-0003" in phase.out


def test_unstack_can_leave_the_cloud_alone(devstack):
    seed_the_hubs_project(devstack)
    devstack.env["JUPYTERHUB_CLEANUP_ON_UNSTACK"] = "False"
    calls = devstack("unstack").calls
    assert calls == ["stop_process jupyterhub"]
    assert devstack.left("volumes") == ["v-0001", "v-0002"]


def test_clean_removes_the_hubs_files(devstack):
    devstack("stack", "extra")
    devstack("clean")
    assert not devstack.conf.exists() and not devstack.state.exists()
    assert devstack.left("projects") == []
