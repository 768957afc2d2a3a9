"""Record real exchanges with the local cloud's Magnum into tests/fixtures/.

Run by hand against ``devstack/local-cloud up --with-magnum`` (in its network
namespace), from the repository's root::

    OS_CLIENT_CONFIG_FILE=.cache/local-cloud/clouds.yaml \\
        .venv/bin/python -m tests.record_magnum

It makes a cluster template and a cluster (deleted at the end), and writes one
file per exchange to ``tests/fixtures/recorded-local/magnum-*.json`` in the
format of the Zun and Cinder recordings (request, response: status, selected
headers, body).
"""

import json
import pathlib
import time
import uuid

import openstack
import requests

from magnum_spawner.magnum import credentials

OUT = pathlib.Path(__file__).parent / "fixtures" / "recorded-local"
KEEP = ("content-type", "openstack-api-version", "x-openstack-request-id", "location")


def record(session, name, method, url, body=None, version=None):
    headers = {"Accept": "application/json",
               "X-Auth-Token": session.get_token()}
    if version:
        headers["OpenStack-API-Version"] = f"container-infra {version}"
    r = requests.request(method, url, json=body, headers=headers, timeout=60)
    try:
        answer = r.json()
    except ValueError:
        answer = r.text
    shown = {k: v for k, v in headers.items() if k != "X-Auth-Token"}
    (OUT / f"magnum-{name}.json").write_text(json.dumps({
        "request": {"method": method, "url": url, "headers": shown, "body": body},
        "response": {"status": r.status_code,
                     "headers": {k: v for k, v in r.headers.items() if k.lower() in KEEP},
                     "body": answer},
    }, indent=2, sort_keys=True) + "\n")
    print(name, r.status_code)
    return answer


def main():
    conn = openstack.connect(cloud="local")
    cim = conn.container_infrastructure_management
    session = conn.session
    base = cim.get_endpoint().rstrip("/")
    root = base.rsplit("/", 1)[0]
    name = "rec-%s" % uuid.uuid4().hex[:6]
    template = cim.create_cluster_template(
        name=name, image_id="k8s-local-v1.20.2", coe="kubernetes", server_type="vm",
        tls_disabled=False, public=False)
    cluster = cim.create_cluster(name=name, cluster_template_id=template.id,
                                 master_count=1, node_count=1)
    try:
        record(session, "root", "GET", root + "/")
        time.sleep(0.5)
        record(session, "cluster-show-create-in-progress", "GET",
               f"{base}/clusters/{name}")
        while cim.get_cluster(cluster.id).status.endswith("IN_PROGRESS"):
            time.sleep(1)
        shown = record(session, "cluster-show", "GET", f"{base}/clusters/{name}")
        record(session, "cluster-show-microversion-1.14", "GET",
               f"{base}/clusters/{cluster.id}", version="1.14")
        record(session, "cluster-show-404", "GET", f"{base}/clusters/no-such-cluster")
        record(session, "clustertemplate-show", "GET",
               f"{base}/clustertemplates/{shown['cluster_template_id']}")
        record(session, "certificate-show", "GET", f"{base}/certificates/{cluster.id}")
        key = credentials.new_key()
        csr = credentials.make_csr(key, "magnum-spawner-admin", ("system:masters",))
        record(session, "certificate-sign", "POST", f"{base}/certificates",
               {"cluster_uuid": cluster.id, "csr": csr})
        record(session, "certificate-sign-bad-csr", "POST", f"{base}/certificates",
               {"cluster_uuid": cluster.id, "csr": "not a CSR"})
    finally:
        cim.delete_cluster(cluster.id)
        for _ in range(120):
            if not any(c.id == cluster.id for c in cim.clusters()):
                break
            time.sleep(1)
        cim.delete_cluster_template(template.id)


if __name__ == "__main__":
    main()
