"""Wait until the local cloud can really serve: used by ``local-cloud up``.

--volume: cinder-scheduler knows the fake backend's pool (a create would
otherwise fail with "No valid backend").
--compute: zun-compute's service is up in Zun and its host is a resource
provider in Placement (else the scheduler finds "not enough hosts").

Runs with any python that has keystoneauth1; authenticates as the local
admin (LOCAL_CLOUD_ADMIN_PASSWORD).
"""

import argparse
import json
import os
import sys
import time

from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

KEYSTONE = "http://127.0.0.1:5000/v3"


def admin_session():
    auth = v3.Password(
        auth_url=KEYSTONE, username="admin",
        password=os.environ["LOCAL_CLOUD_ADMIN_PASSWORD"],
        project_name="admin", user_domain_id="default",
        project_domain_id="default",
    )
    return ks_session.Session(auth=auth)


def volume_ready(sess):
    project = sess.get_project_id()
    r = sess.get("http://127.0.0.1:8776/v3/%s/scheduler-stats/get_pools" % project,
                 raise_exc=False)
    if r.status_code != 200:
        return False, "cinder get_pools: %s" % r.status_code
    pools = r.json().get("pools", [])
    if not pools:
        return False, "cinder-scheduler has no pool yet"
    return True, "cinder pools: %s" % ", ".join(p["name"] for p in pools)


def compute_ready(sess, hosts=1):
    headers = {"OpenStack-API-Version": "container 1.40"}
    r = sess.get("http://127.0.0.1:9517/v1/services", headers=headers,
                 raise_exc=False)
    if r.status_code != 200:
        return False, "zun services: %s %s" % (r.status_code, r.text[:200])
    up = [s for s in r.json().get("services", [])
          if s.get("binary") == "zun-compute" and s.get("state") == "up"]
    if len(up) < hosts:
        return False, "zun-compute up on %d of %d hosts" % (len(up), hosts)
    r = sess.get("http://127.0.0.1:8778/resource_providers",
                 headers={"OpenStack-API-Version": "placement 1.14"},
                 raise_exc=False)
    if r.status_code != 200:
        return False, "placement resource_providers: %s" % r.status_code
    rps = r.json().get("resource_providers", [])
    if not rps:
        return False, "no resource provider in placement yet"
    names = []
    for rp in rps:
        inv = sess.get("http://127.0.0.1:8778/resource_providers/%s/inventories"
                       % rp["uuid"], raise_exc=False).json()
        names.append("%s %s" % (rp["name"], json.dumps(
            {k: v.get("total") for k, v in inv.get("inventories", {}).items()})))
    if sum("{}" not in n for n in names) < hosts:
        return False, "resource providers without inventory yet: %s" % names
    hosts = ", ".join(s["host"] for s in up)
    return True, "zun-compute up on %s; placement: %s" % (hosts, "; ".join(names))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cloud-dir")
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--volume", action="store_true")
    parser.add_argument("--compute", action="store_true")
    parser.add_argument("--compute-hosts", type=int, default=1,
                        help="how many zun-compute hosts --compute waits for")
    args = parser.parse_args()
    checks = []
    if args.volume:
        checks.append(("volume", volume_ready))
    if args.compute:
        checks.append(("compute", lambda sess: compute_ready(sess, args.compute_hosts)))
    sess = admin_session()
    t0 = time.monotonic()
    deadline = t0 + args.timeout
    pending = dict(checks)
    last = {}
    while pending:
        for name, check in list(pending.items()):
            try:
                ok, msg = check(sess)
            except Exception as exc:  # a service still starting
                ok, msg = False, "%s: %s" % (type(exc).__name__, exc)
            last[name] = msg
            if ok:
                print("ready %s after %.1f s: %s" % (name, time.monotonic() - t0, msg))
                del pending[name]
        if not pending:
            break
        if time.monotonic() > deadline:
            for name in pending:
                print("NOT READY %s after %.0f s: %s" % (name, args.timeout, last[name]))
            return 1
        time.sleep(0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
