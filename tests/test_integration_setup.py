"""The real-cloud integration set-up: the suite's skip, the DevStack scripts."""

import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
#: the e2e suite uses no Hypothesis; loading its pytest plugin would be about
#: half of each run's CPU time
NO_HYPOTHESIS = ["-p", "no:hypothesispytest"]


def run_e2e(tmp_path, **env):
    """Collect and run one e2e test the way devstack/integration-tests does."""
    # (not under CI, where the skip would be a failure: tests/ci_skips.py)
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith("MAGNUM_E2E_") and k != "CI"}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-m", "localcloud", "-p", "no:cacheprovider",
         *NO_HYPOTHESIS, "tests/e2e/test_project_left_as_found_e2e.py"],
        cwd=REPO, env=environ, capture_output=True, text=True, timeout=120,
    )


@pytest.mark.integration
def test_no_clouds_yaml_skips_the_integration_suite_saying_so(tmp_path):
    missing = tmp_path / "clouds.yaml"
    out = run_e2e(tmp_path, MAGNUM_E2E_CLOUDS_YAML=str(missing))
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"no cloud configured: MAGNUM_E2E_CLOUDS_YAML={missing} does not exist" in out.stdout


@pytest.mark.integration
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


def zuul_job():
    import yaml

    (job,) = [e["job"] for e in yaml.safe_load((REPO / ".zuul.yaml").read_text()) if "job" in e]
    return job


def test_the_zuul_job_stacks_devstack_with_the_plugin_and_runs_the_suite():
    import yaml

    job = zuul_job()
    assert job["parent"] == "devstack"
    assert {"zun", "kuryr-libnetwork", "devstack-plugin-container",
            "magnum-spawner"} == set(job["vars"]["devstack_plugins"])
    assert job["vars"]["devstack_services"]["jupyterhub"] is True
    run = yaml.safe_load((REPO / job["run"]).read_text())
    (task,) = run[0]["tasks"]
    assert task["ansible.builtin.command"]["cmd"] == "devstack/integration-tests"


def test_zuul_orders_the_plugins_by_plugin_requires_so_ours_comes_after_zun():
    # Zuul's devstack_local_conf.py (openstack/devstack roles/write-devstack-
    # local-conf) ignores the YAML order of devstack_plugins: it sorts the names
    # and puts each plugin's `plugin_requires` (read from devstack/settings,
    # the line's first word being the `define_plugin` name) before it.
    import re

    settings = (REPO / "devstack" / "settings").read_text()
    (name,) = re.findall(r"^define_plugin\s+(\S+)", settings, re.M)
    requires = set(re.findall(rf"^plugin_requires\s+{re.escape(name)}\s+(\S+)", settings, re.M))
    assert name == "magnum-spawner" and "zun" in requires


def test_the_zuul_job_has_every_project_zuns_install_clones():
    # openstack/zun devstack/lib/zun install_zun clones and installs
    # zun-tempest-plugin on every stack, and DevStack jobs run with
    # ERROR_ON_CLONE=True: the job must bring it (as zun-fullstack does).
    required = {p.rsplit("/", 1)[-1] for p in zuul_job()["required-projects"]}
    assert {"devstack", "zun", "zun-tempest-plugin", "python-zunclient",
            "kuryr-libnetwork", "devstack-plugin-container"} <= required


def test_the_zuul_job_has_at_least_its_parents_time_and_gates():
    import yaml

    # openstack/devstack .zuul.yaml: the `devstack` job's timeout is 7200 s;
    # this one stacks the same and then runs the integration suite.
    assert zuul_job()["timeout"] >= 7200
    (project,) = [e["project"] for e in yaml.safe_load((REPO / ".zuul.yaml").read_text())
                  if "project" in e]
    for pipeline in ("check", "gate"):
        assert "magnum-spawner-devstack-integration" in str(project[pipeline]["jobs"])


def test_the_zuul_playbooks_do_not_assume_the_repositorys_name():
    # DevStack finds a plugin at $DEST/<plugin name> (enable_plugin); Zuul copies
    # the repository to <devstack_base_dir>/<its short name>: a pre-run links the
    # one to the other, and the run goes to the repository by its short name.
    import yaml

    job = zuul_job()
    (pre,) = [yaml.safe_load((REPO / p).read_text()) for p in [job["pre-run"]]]
    run = yaml.safe_load((REPO / job["run"]).read_text())
    (task,) = run[0]["tasks"]
    assert "zuul.project.short_name" in task["ansible.builtin.command"]["chdir"]
    text = yaml.safe_dump(pre)
    assert "zuul.project.short_name" in text and "magnum-spawner" in text
    assert "/magnum-spawner" not in yaml.safe_dump(run)


def test_devstack_installs_make_for_the_integration_suite():
    # functions-common get_plugin_packages: devstack/files/debs/<plugin name>
    # (Ubuntu, Debian) and files/rpms/<plugin name> (Fedora, CentOS)
    for kind in ("debs", "rpms"):
        packages = (REPO / "devstack" / "files" / kind / "magnum-spawner").read_text().split()
        assert "make" in packages


def test_the_example_local_conf_enables_zun_its_network_and_container_plugins_then_ours():
    lines = (REPO / "devstack" / "local.conf.example").read_text().splitlines()
    plugins = [line.split()[1] for line in lines if line.startswith("enable_plugin ")]
    assert plugins == ["devstack-plugin-container", "kuryr-libnetwork", "zun", "magnum-spawner"]
    disabled = " ".join(line for line in lines if line.startswith("disable_service"))
    assert "c-api" not in disabled and "q-svc" not in disabled  # Cinder and Neutron stay


@pytest.mark.integration
def test_the_integration_suite_leaves_out_what_a_devstack_does_not_have(tmp_path):
    # DevStack has no Magnum and no Chromium: those tests are not collected;
    # the memory limit is read from cgroup v2 (Ubuntu 24.04 nodes) or v1.
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text("clouds:\n  jupyterhub:\n    auth: {auth_url: http://192.0.2.1/identity}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAGNUM_E2E_")}
    out = subprocess.run(
        [str(REPO / "devstack" / "integration-tests"), str(clouds), "jupyterhub",
         "--collect-only", "-q", "-p", "no:cacheprovider", *NO_HYPOTHESIS],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    collected = [line for line in out.stdout.splitlines() if line.startswith("tests/")]
    assert any("test_lifecycle_e2e.py" in t for t in collected)
    assert not [t for t in collected if "magnum" in t or "browser" in t]
    parity = (REPO / "tests" / "e2e" / "test_driver_parity_e2e.py").read_text()
    assert "/sys/fs/cgroup/memory.max" in parity
