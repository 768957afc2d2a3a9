"""Size the hub's project for a class: run by ``local-cloud up`` (last step).

Sets the quotas of the project ``jupyterhub`` as an operator would for a class
of N students (``LOCAL_CLOUD_CLASS_SIZE``, default 150), through the real APIs
with the local admin:

* Zun (``PUT /v1/quotas/<project>``): containers, cpu, memory, disk;
* Cinder (``PUT /v3/<admin project>/os-quota-sets/<project>``): volumes,
  gigabytes.

Each student may hold two servers (a default and a named one) of up to the
"standard" flavor (1 vCPU, 2 GiB) and two home volumes of up to 5 GiB.  What
really bounds the class is memory and Placement (devstack/README.md, "How many
servers fit").  Prints what it set.

Usage: class_quotas.py CLOUD_DIR  (LOCAL_CLOUD_ADMIN_PASSWORD in the environment)
"""

import json
import os
import sys

from cloud_ready import admin_session

ZUN = "http://127.0.0.1:9517/v1"
CINDER = "http://127.0.0.1:8776/v3"
ZUN_HEADERS = {"OpenStack-API-Version": "container 1.40"}


def class_quotas(students):
    """The quotas for *students*: per student 2 containers of up to 1 vCPU /
    2 GiB (the "standard" flavor), 2 home volumes of up to 5 GiB."""
    return {
        "zun": {"containers": 2 * students, "cpu": 2 * students,
                "memory": 2 * students * 2048, "disk": 10 * students},
        "cinder": {"volumes": 2 * students, "gigabytes": 10 * students},
    }


def main():
    cloud_dir = sys.argv[1]
    students = int(os.environ.get("LOCAL_CLOUD_CLASS_SIZE", 150))
    with open(os.path.join(cloud_dir, "cloud.json")) as f:
        project = json.load(f)["project_id"]
    want = class_quotas(students)
    sess = admin_session()
    r = sess.put("%s/quotas/%s" % (ZUN, project), json=want["zun"],
                 headers=ZUN_HEADERS, raise_exc=False)
    if r.status_code >= 400:
        raise SystemExit("zun quota update: %s %s" % (r.status_code, r.text))
    r = sess.put("%s/%s/os-quota-sets/%s" % (CINDER, sess.get_project_id(), project),
                 json={"quota_set": want["cinder"]}, raise_exc=False)
    if r.status_code >= 400:
        raise SystemExit("cinder quota update: %s %s" % (r.status_code, r.text))
    # Read them back: what the hub's project really has now.
    zun = sess.get("%s/quotas/%s" % (ZUN, project), headers=ZUN_HEADERS).json()
    cinder = sess.get("%s/%s/os-quota-sets/%s" % (CINDER, sess.get_project_id(), project)
                      ).json()["quota_set"]
    print("quotas of project jupyterhub for a class of %d: zun %s; cinder volumes %s, "
          "gigabytes %s" % (students, json.dumps(zun, sort_keys=True),
                            cinder["volumes"], cinder["gigabytes"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
