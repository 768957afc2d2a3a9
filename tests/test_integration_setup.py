"""The real-cloud integration set-up: the suite's skip, the DevStack scripts."""

import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


def run_e2e(tmp_path, **env):
    """Collect and run one e2e test the way devstack/integration-tests does."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MAGNUM_E2E_")}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-m", "localcloud", "-p", "no:cacheprovider",
         "tests/e2e/test_project_left_as_found_e2e.py"],
        cwd=REPO, env=environ, capture_output=True, text=True, timeout=120,
    )


def test_no_clouds_yaml_skips_the_integration_suite_saying_so(tmp_path):
    missing = tmp_path / "clouds.yaml"
    out = run_e2e(tmp_path, MAGNUM_E2E_CLOUDS_YAML=str(missing))
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"no cloud configured: MAGNUM_E2E_CLOUDS_YAML={missing} does not exist" in out.stdout


def test_a_clouds_yaml_without_the_cloud_skips_naming_it(tmp_path):
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text("clouds:\n  devstack:\n    auth: {auth_url: http://192.0.2.1/identity}\n")
    out = run_e2e(tmp_path, MAGNUM_E2E_CLOUDS_YAML=str(clouds), MAGNUM_E2E_CLOUD="jupyterhub")
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"no cloud configured: cloud 'jupyterhub' in {clouds}" in out.stdout


def shell_scripts():
    """Every shell script under devstack/ (by shebang), and DevStack's sourced settings."""
    found = [REPO / "devstack" / "settings"]
    for path in sorted((REPO / "devstack").rglob("*")):
        if path.is_file() and path.suffix not in (".py", ".md", ".json", ".toml"):
            first = path.read_bytes()[:64].split(b"\n")[0]
            if first.startswith(b"#!") and first.split(b"/")[-1].split()[-1] in (b"sh", b"bash"):
                found.append(path)
    return found


def test_the_devstack_scripts_are_found():
    names = {p.name for p in shell_scripts()}
    assert {"plugin.sh", "settings", "integration-tests", "local-cloud"} <= names


@pytest.mark.parametrize("script", shell_scripts(), ids=lambda p: p.name)
def test_devstack_scripts_parse(script):
    out = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


# -- the DevStack plugin, with DevStack's functions and `openstack` stubbed ------
#
# No DevStack here: these run plugin.sh's phases against a stand-in `openstack`
# (tests/devstack_stubs/) and check the calls it makes and the files it writes.

STUBS = REPO / "tests" / "devstack_stubs"


@pytest.fixture
def devstack(tmp_path):
    import getpass

    log = tmp_path / "calls.log"
    conf = tmp_path / "etc-jupyterhub"
    env = {
        "PATH": f"{STUBS}:{os.environ['PATH']}",
        "REPO": str(REPO),
        "OPENSTACK_LOG": str(log),
        "DEST": str(tmp_path / "opt-stack"),
        "DATA_DIR": str(tmp_path / "data"),
        "STACK_USER": getpass.getuser(),
        "ADMIN_PASSWORD": "devstack-admin-pw",
        "KEYSTONE_SERVICE_URI": "http://192.0.2.10/identity",
        "REGION_NAME": "RegionOne",
        "PUBLIC_NETWORK_NAME": "public",
        "JUPYTERHUB_CONF_DIR": str(conf),
    }

    def run(*phase):
        out = subprocess.run(
            [str(STUBS / "run-phase"), *phase], env=env, capture_output=True, text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stdout + out.stderr
        calls = log.read_text().splitlines() if log.exists() else []
        log.unlink(missing_ok=True)
        return calls

    run.conf = conf
    run.env = env
    return run


def test_stack_extra_gives_the_hub_its_own_project_user_credential_quotas_network(devstack):
    calls = devstack("stack", "extra")
    assert "get_or_create_project jupyterhub default" in calls
    assert "get_or_create_user jupyterhub devstack-admin-pw default" in calls
    assert "get_or_add_user_project_role member u-0001 p-0001" in calls
    # the credential is made by the hub user itself, in its project
    (create,) = [c for c in calls if "application credential create" in c]
    assert "--os-username jupyterhub" in create and "--os-project-name jupyterhub" in create
    # quotas for 20 servers: Zun (containers, cpu, memory), Cinder, Neutron
    assert ("openstack --os-cloud devstack-admin appcontainer quota update --containers 20 "
            "--cpu 40 --memory 81920 --disk 200 p-0001") in calls
    (quota,) = [c for c in calls if " quota set " in c]
    for part in ("--volumes 40", "--gigabytes 400", "--floating-ips 25", "--secgroups 30",
                 "p-0001"):
        assert part in quota
    assert any("router create --project p-0001 --external-gateway public" in c for c in calls)
    assert any("router add subnet jupyterhub-router jupyterhub-net-subnet" in c for c in calls)
    # the hub starts with the credential's clouds.yaml, never demo's
    (start,) = [c for c in calls if c.startswith("run_process jupyterhub")]
    assert f"OS_CLIENT_CONFIG_FILE={devstack.conf}/clouds.yaml" in start
    assert "demo" not in "\n".join(calls)


def test_the_clouds_yaml_holds_the_application_credential_and_is_private(devstack):
    import yaml

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
    spawner_config = (devstack.conf / "spawner_config.py").read_text()
    assert 'c.ZunSpawner.server_access = "floating_ip"' in spawner_config
    assert "c.ZunSpawner.exposed_ports = [8888]" in spawner_config
    assert '"http://172.24.4.1:"' in spawner_config  # br-ex: the public gateway


def test_unstack_removes_what_the_hub_made_then_its_identity(devstack):
    calls = devstack("unstack")
    assert calls[0] == "stop_process jupyterhub"
    order = [
        "appcontainer delete --stop --wait c-0001",
        "floating ip delete f-0001",
        "volume delete v-0001",
        "router delete jupyterhub-router",
        "network delete jupyterhub-net",
        "security group delete sg-0001",
        "application credential delete jupyterhub-devstack",
        "user delete --domain default jupyterhub",
        "project delete --domain default jupyterhub",
    ]
    found = [next(i for i, c in enumerate(calls) if step in c) for step in order]
    assert found == sorted(found), calls


def test_unstack_can_leave_the_cloud_alone(devstack):
    devstack.env["JUPYTERHUB_CLEANUP_ON_UNSTACK"] = "False"
    calls = devstack("unstack")
    assert calls == ["stop_process jupyterhub"]


def test_the_zuul_job_stacks_devstack_with_the_plugin_and_runs_the_suite():
    import yaml

    (job,) = [e["job"] for e in yaml.safe_load((REPO / ".zuul.yaml").read_text()) if "job" in e]
    assert job["parent"] == "devstack"
    plugins = list(job["vars"]["devstack_plugins"])
    assert plugins[-1] == "magnum-spawner"  # after Zun: its stack extra needs Zun up
    assert {"zun", "kuryr-libnetwork", "devstack-plugin-container"} <= set(plugins)
    assert job["vars"]["devstack_services"]["jupyterhub"] is True
    run = yaml.safe_load((REPO / job["run"]).read_text())
    (task,) = run[0]["tasks"]
    assert task["ansible.builtin.command"]["cmd"] == "devstack/integration-tests"


def test_the_example_local_conf_enables_zun_its_network_and_container_plugins_then_ours():
    lines = (REPO / "devstack" / "local.conf.example").read_text().splitlines()
    plugins = [line.split()[1] for line in lines if line.startswith("enable_plugin ")]
    assert plugins == ["devstack-plugin-container", "kuryr-libnetwork", "zun", "magnum-spawner"]
    disabled = " ".join(line for line in lines if line.startswith("disable_service"))
    assert "c-api" not in disabled and "q-svc" not in disabled  # Cinder and Neutron stay
