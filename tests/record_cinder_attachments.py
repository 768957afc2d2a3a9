"""Record real exchanges with the local cloud's Cinder attachments API into
tests/fixtures/recorded-local/ (what the Magnum local driver's Cinder CSI
stand-in, devstack/magnum_local_driver/magnum_local_driver/attacher.py, sends).

Run by hand against ``devstack/local-cloud up`` (in its network namespace), from
the repository's root::

    OS_CLIENT_CONFIG_FILE=.cache/local-cloud/clouds.yaml \\
        .venv/bin/python -m tests.record_cinder_attachments

It makes a 1 GiB volume (deleted at the end) as the hub's user, attaches it with
a connector naming a node as its host, completes the attachment, shows the volume
as an admin sees it (``host_name``) and detaches it; one file per exchange,
``cinder-attachment-*.json``, in the format of the other recordings.
"""

import json
import pathlib
import time

import openstack
import requests

OUT = pathlib.Path(__file__).parent / "fixtures" / "recorded-local"
KEEP = ("content-type", "openstack-api-version", "x-openstack-request-id")
VERSION = "volume 3.44"
NODE = "rec-node-1"


def record(session, name, method, url, body=None, version=VERSION):
    headers = {"Accept": "application/json", "X-Auth-Token": session.get_token()}
    if version:
        headers["OpenStack-API-Version"] = version
    r = requests.request(method, url, json=body, headers=headers, timeout=60)
    try:
        answer = r.json()
    except ValueError:
        answer = r.text
    shown = {k: v for k, v in headers.items() if k != "X-Auth-Token"}
    (OUT / f"cinder-attachment-{name}.json").write_text(json.dumps({
        "request": {"method": method, "url": url, "headers": shown, "body": body},
        "response": {"status": r.status_code,
                     "headers": {k: v for k, v in r.headers.items() if k.lower() in KEEP},
                     "body": answer},
    }, indent=2, sort_keys=True) + "\n")
    print(name, r.status_code)
    return answer


def main():
    conn = openstack.connect(cloud="local")
    admin = openstack.connect(cloud="local-admin")
    base = conn.block_storage.get_endpoint().rstrip("/")
    volume = conn.block_storage.create_volume(name="rec-attach", size=1)
    try:
        while conn.block_storage.get_volume(volume.id).status != "available":
            time.sleep(0.5)
        connector = {"host": NODE, "ip": "10.250.0.3", "platform": "x86_64",
                     "os_type": "linux", "multipath": False, "mode": "rw",
                     "mountpoint": f"/var/lib/magnum-local/volume-mounts/{volume.id}"}
        att = record(conn.session, "create", "POST", f"{base}/attachments",
                     {"attachment": {"volume_uuid": volume.id, "connector": connector}})
        att_id = att["attachment"]["id"]
        record(conn.session, "list-detail-attaching", "GET",
               f"{base}/attachments/detail?volume_id={volume.id}")
        record(conn.session, "complete", "POST", f"{base}/attachments/{att_id}/action",
               {"os-complete": None})
        record(conn.session, "list-detail-attached", "GET",
               f"{base}/attachments/detail?volume_id={volume.id}")
        admin_base = base.replace(conn.current_project_id, admin.current_project_id)
        record(admin.session, "volume-show-as-admin", "GET",
               f"{admin_base}/volumes/{volume.id}", version=None)
        record(conn.session, "volume-delete-attached", "DELETE",
               f"{base}/volumes/{volume.id}", version=None)
        record(conn.session, "delete", "DELETE", f"{base}/attachments/{att_id}")
        record(conn.session, "delete-404", "DELETE", f"{base}/attachments/{att_id}")
        record(conn.session, "list-detail-none", "GET",
               f"{base}/attachments/detail?volume_id={volume.id}")
        record(conn.session, "volume-show-detached", "GET", f"{base}/volumes/{volume.id}",
               version=None)
    finally:
        conn.block_storage.delete_volume(volume.id, ignore_missing=True)


if __name__ == "__main__":
    main()
