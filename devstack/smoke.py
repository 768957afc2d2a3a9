#!/usr/bin/env python3
"""Smoke test of the local cloud (devstack/local-cloud up) over its real APIs.

Run with a python that has keystoneauth1 and PyYAML (the zun venv has both)::

    .cache/local-cloud/venvs/zun/bin/python devstack/smoke.py

Steps: authenticate with clouds.yaml (cloud ``local``, or --cloud); read Zun's
version document; Cinder: create a 1 GiB volume, wait for ``available``,
find it by name, delete it; Zun: ``POST /v1/containers?run=true`` (the body of
tests/fixtures/recorded-local/zun-container-create-run.json, with a command
that needs no hub) and wait for ``Running``; then the same with a Cinder
volume mounted (volume ``in-use``), delete both with ``?stop=true``, volume
back to ``available``, delete it.  --no-container stops after Cinder (for a
cloud without zun-compute).  One line per step with its time; exit 1 on the
first failure.
"""

import argparse
import json
import os
import sys
import time
import uuid

import yaml
from keystoneauth1 import adapter
from keystoneauth1 import loading
from keystoneauth1 import session as ks_session

ZUN_HEADERS = {"OpenStack-API-Version": "container 1.40"}
T0 = time.monotonic()


def step(msg):
    print("[%6.2fs] %s" % (time.monotonic() - T0, msg), flush=True)


def fail(msg):
    step("FAIL: " + msg)
    sys.exit(1)


def connect(cloud_dir, cloud):
    path = os.environ.get("OS_CLIENT_CONFIG_FILE") or os.path.join(cloud_dir, "clouds.yaml")
    with open(path) as f:
        cfg = yaml.safe_load(f)["clouds"][cloud]
    loader = loading.get_plugin_loader(cfg.get("auth_type", "password"))
    sess = ks_session.Session(auth=loader.load_from_options(**cfg["auth"]))
    region = cfg.get("region_name", "RegionOne")
    iface = cfg.get("interface", "public")
    zun = adapter.Adapter(sess, service_type="container", interface=iface,
                          region_name=region)
    cinder = adapter.Adapter(sess, service_type="block-storage", interface=iface,
                             region_name=region)
    return sess, zun, cinder


def wait(what, fn, timeout, interval=0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        done, last = fn()
        if done:
            return last
        time.sleep(interval)
    fail("%s: still %r after %.0f s" % (what, last, timeout))


def volume_status(cinder, vid):
    def check():
        r = cinder.get("/volumes/%s" % vid, raise_exc=False)
        if r.status_code == 404:
            return True, "deleted"
        return False, r.json()["volume"]["status"]
    return check


def wait_volume(cinder, vid, want, timeout):
    def check():
        r = cinder.get("/volumes/%s" % vid, raise_exc=False)
        if r.status_code == 404:
            return want == "deleted", "deleted"
        status = r.json()["volume"]["status"]
        if status == "error":
            fail("volume %s went to error" % vid)
        return status == want, status
    return wait("volume %s -> %s" % (vid, want), check, timeout)


def create_volume(cinder, name, timeout):
    r = cinder.post("/volumes", json={"volume": {"size": 1, "name": name}})
    vid = r.json()["volume"]["id"]
    wait_volume(cinder, vid, "available", timeout)
    return vid


def container_body(name, image, mounts=None):
    body = {
        "name": name,
        "image": image,
        "command": ["python", "-c",
                    "import time, sys; print('smoke container up', flush=True); time.sleep(3600)"],
        "cpu": 1.0,
        "memory": "512",
        "environment": {"SMOKE": "1"},
        "labels": {"local-cloud/smoke": "1"},
        "restart_policy": {"Name": "no"},
    }
    if mounts:
        body["mounts"] = mounts
    return body


def run_container(zun, body, timeout):
    r = zun.post("/containers?run=true", json=body, headers=ZUN_HEADERS,
                 raise_exc=False)
    if r.status_code != 202:
        fail("create %s: %s %s" % (body["name"], r.status_code, r.text[:500]))
    uuid_ = r.json()["uuid"]

    def check():
        c = zun.get("/containers/%s" % uuid_, headers=ZUN_HEADERS).json()
        if c["status"] in ("Error", "Stopped", "Dead"):
            fail("container %s is %s: %s %s" % (uuid_, c["status"],
                                                 c.get("status_reason"),
                                                 c.get("status_detail")))
        return c["status"] == "Running", c
    try:
        c = wait("container %s -> Running" % uuid_, check, timeout, 0.3)
    except SystemExit:
        # a failed smoke test leaves no container behind
        zun.delete("/containers/%s?stop=true" % uuid_, headers=ZUN_HEADERS, raise_exc=False)
        raise
    return uuid_, c


def delete_container(zun, uuid_, timeout):
    r = zun.delete("/containers/%s?stop=true" % uuid_, headers=ZUN_HEADERS,
                   raise_exc=False)
    if r.status_code != 204:
        fail("delete %s: %s %s" % (uuid_, r.status_code, r.text[:500]))

    def check():
        r = zun.get("/containers/%s" % uuid_, headers=ZUN_HEADERS, raise_exc=False)
        if r.status_code == 404:
            return True, "deleted"
        return False, r.json().get("status")
    wait("container %s deleted" % uuid_, check, timeout)


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description="local cloud smoke test")
    parser.add_argument("--cloud-dir", default=os.environ.get(
        "MAGNUM_CLOUD_DIR", os.path.join(repo, ".cache", "local-cloud")))
    parser.add_argument("--cloud", default="local")
    parser.add_argument("--image", default=None,
                        help="default: the local cloud's notebook image (docker.json), "
                             "else quay.io/jupyter/base-notebook")
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--no-container", action="store_true",
                        help="stop after the Cinder steps")
    parser.add_argument("--no-volume-mount", action="store_true",
                        help="skip the container with a Cinder volume")
    args = parser.parse_args()
    if args.image is None:
        docker = os.path.join(args.cloud_dir, "docker.json")
        args.image = "quay.io/jupyter/base-notebook"
        if os.path.exists(docker):
            with open(docker) as f:
                args.image = json.load(f)["image"]

    sess, zun, cinder = connect(args.cloud_dir, args.cloud)
    step("token for project %s" % sess.get_project_id())

    endpoint = zun.get_endpoint()
    root = sess.get(endpoint.rstrip("/").rsplit("/v1", 1)[0] + "/",
                    authenticated=False).json()
    step("zun %s: versions %s-%s" % (endpoint, root["default_version"]["min_version"],
                                     root["default_version"]["max_version"]))
    r = zun.get("/containers", headers=ZUN_HEADERS)
    step("zun: %d containers" % len(r.json()["containers"]))

    tag = uuid.uuid4().hex[:8]
    vname = "smoke-vol-" + tag
    vid = create_volume(cinder, vname, args.timeout)
    step("cinder: volume %s available" % vid)
    found = cinder.get("/volumes?name=%s" % vname).json()["volumes"]
    if [v["id"] for v in found] != [vid]:
        fail("name filter found %r" % found)
    step("cinder: found by name")
    cinder.delete("/volumes/%s" % vid)
    wait_volume(cinder, vid, "deleted", args.timeout)
    step("cinder: volume deleted")
    if args.no_container:
        step("OK (no container steps)")
        return 0

    cid, c = run_container(zun, container_body("smoke-" + tag, args.image), args.timeout)
    step("zun: container %s Running, addresses %s" % (cid, c.get("addresses")))
    delete_container(zun, cid, args.timeout)
    step("zun: container deleted")

    if not args.no_volume_mount:
        vid = create_volume(cinder, vname, args.timeout)
        step("cinder: volume %s available" % vid)
        mounts = [{"source": vid, "destination": "/home/jovyan/work"}]
        cid, c = run_container(zun, container_body("smoke-vol-" + tag, args.image, mounts),
                               args.timeout)
        step("zun: container %s Running with the volume" % cid)
        wait_volume(cinder, vid, "in-use", args.timeout)
        step("cinder: volume in-use")
        delete_container(zun, cid, args.timeout)
        step("zun: container deleted")
        wait_volume(cinder, vid, "available", args.timeout)
        step("cinder: volume available again")
        cinder.delete("/volumes/%s" % vid)
        wait_volume(cinder, vid, "deleted", args.timeout)
        step("cinder: volume deleted")
    step("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
