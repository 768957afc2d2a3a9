"""Upstream Zun's own API tests against the local cloud.

zun-tempest-plugin 4.14 on tempest 47, configured as Zun's own DevStack job
(``devstack/zun-tempest``, devstack/README.md), on the cloud's Docker hosts,
Neutron stub and Cinder: none of its tests fails, and the only ones skipped are
those devstack/README.md lists, for the reasons it gives.  Runs in a stream of
its own (``make e2e``'s ``tempest``), on a cloud of its own: tempest makes and
deletes projects, users and networks of its own.
"""

import json
import subprocess

import pytest

from .conftest import CLOUD_DIR, REPO

pytestmark = pytest.mark.localcloud

ZUN_TEMPEST = REPO / "devstack" / "zun-tempest"
API = "zun_tempest_plugin.tests.tempest.api."
CONTAINER = API + "test_containers.TestContainer."
CAPSULE = API + "test_capsules.TestCapsule."

#: What devstack/README.md says is skipped, and why (each as Zun's own job skips it).
SKIPPED = {
    CONTAINER + "test_reboot_container": "disabled upstream",
    CONTAINER + "test_run_container_with_cinder_volumes": "upstream bug 1897497",
    CONTAINER + "test_run_container_with_image_driver_glance": "no Glance",
    CONTAINER + "test_commit_container_140": "no Glance",
    CONTAINER + "test_container_network": "no public network (it pings floating IPs)",
    CONTAINER + "test_commit_container": "capped below microversion 1.40",
    CONTAINER + "test_put_and_get_archive_from_container": "capped below microversion 1.40",
    CAPSULE + "test_create_capsule": "upstream bug 1941982",
    CAPSULE + "test_create_capsule_full": "upstream bug 1941982",
    CAPSULE + "test_create_capsule_with_init_container": "upstream bug 1941982",
    CAPSULE + "test_create_capsule_with_volume": "upstream bug 1941982",
    "setUpClass (%stest_containers.TestContainerLegacy)" % API:
        "the class: microversions 1.1-1.19, below min_microversion 1.40",
}


def tail(text, lines=25):
    return "\n".join(text.rstrip().splitlines()[-lines:])


def test_the_zun_tempest_plugin_passes_but_for_the_documented_skips(local_cloud):
    log = CLOUD_DIR / "tempest-run.log"
    with open(log, "w") as out:
        run = subprocess.run([str(ZUN_TEMPEST), "run"], stdout=out, stderr=subprocess.STDOUT)
    answer = subprocess.run([str(ZUN_TEMPEST), "results"], capture_output=True, text=True)
    assert answer.returncode == 0, (
        f"no results from the tempest run (rc {run.returncode}, {log}): {answer.stderr}\n"
        f"{tail(log.read_text())}")
    tests = [json.loads(line) for line in answer.stdout.splitlines()]
    failed = [t for t in tests if t["status"] not in ("success", "skip")]
    assert not failed, "%d of %d zun-tempest-plugin tests failed (whole output: %s):\n\n%s" % (
        len(failed), len(tests), log, "\n\n".join(
            "%s (%s):\n%s\n-- its log's last lines:\n%s" % (
                t["id"], t["status"], tail(t["traceback"]), tail(t["log"], 15))
            for t in failed))
    skipped = {t["id"]: t["reason"] for t in tests if t["status"] == "skip"}
    unexpected = {k: v for k, v in skipped.items() if k not in SKIPPED}
    assert not unexpected, f"skipped, and not listed in devstack/README.md: {unexpected}"
    ran = {t["id"] for t in tests if t["status"] == "success"}
    not_skipped = {k: why for k, why in SKIPPED.items() if k not in skipped}
    assert not not_skipped, (f"listed as skipped ({not_skipped}), but "
                             f"{'passed: update devstack/README.md' if set(not_skipped) <= ran else 'not run'}")
    # the test the local registry's tempest-web image (nginx, curl) is there for
    assert CONTAINER + "test_container_expose_port" in ran
    assert run.returncode == 0, f"tempest exited {run.returncode}, every test passed or skipped ({log})"
