"""Record the events of a pod's start on the local cloud's real nodes.

    python tests/record_kube_events.py KUBECONFIG REGISTRY

KUBECONFIG: a system:masters kubeconfig of a local Magnum cluster with real
nodes (the default since issue 20; e.g. the cluster's
``pki/node.kubeconfig``); REGISTRY: the local registry (``127.0.0.1:PORT``)
the nodes pull from.  Writes ``tests/fixtures/recorded-local/
kube-events-{pulled,present,missing-image,unschedulable}.json``: the
``core/v1`` events of each pod, as the API lists them (what KubeSpawner's
event reflector keeps), in the order they were made.
"""

import json
import pathlib
import sys
import time
import uuid

import requests

HERE = pathlib.Path(__file__).parent
OUT = HERE / "fixtures" / "recorded-local"
NAMESPACE = "record-events"


class Kube:
    def __init__(self, kubeconfig):
        conf = json.loads(pathlib.Path(kubeconfig).read_text())
        cluster = conf["clusters"][0]["cluster"]
        user = conf["users"][0]["user"]
        self.base = cluster["server"]
        self.s = requests.Session()
        self.ca = cluster["certificate-authority"]
        self.s.cert = (user["client-certificate"], user["client-key"])

    def call(self, method, path, body=None):
        # per request: a session's verify loses to REQUESTS_CA_BUNDLE
        r = self.s.request(method, self.base + path, json=body, timeout=30, verify=self.ca)
        if r.status_code >= 400 and r.status_code != 409:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:300]}")
        return r.json()


def pod(name, image, pull="IfNotPresent", memory="64Mi"):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 0,
                     "containers": [{
                         "name": "notebook", "image": image, "imagePullPolicy": pull,
                         "command": ["/bin/sleep", "30"],
                         "resources": {"limits": {"memory": memory},
                                       "requests": {"memory": memory}}}]}}


def events_of(kube, name):
    items = kube.call("GET", f"/api/v1/namespaces/{NAMESPACE}/events?fieldSelector="
                      f"involvedObject.name={name}")["items"]
    return sorted(items, key=lambda e: e.get("lastTimestamp") or e.get("eventTime")
                  or "")


def record(kube, label, body, until, timeout=120):
    """Returns the node the pod ran on."""
    kube.call("POST", f"/api/v1/namespaces/{NAMESPACE}/pods", body)
    name = body["metadata"]["name"]
    deadline = time.monotonic() + timeout
    while True:
        events = events_of(kube, name)
        if until({e["reason"] for e in events}) or time.monotonic() > deadline:
            break
        time.sleep(1)
    node = kube.call("GET", f"/api/v1/namespaces/{NAMESPACE}/pods/{name}")["spec"].get(
        "nodeName")
    kube.call("DELETE", f"/api/v1/namespaces/{NAMESPACE}/pods/{name}")
    (OUT / f"kube-events-{label}.json").write_text(json.dumps(events, indent=1) + "\n")
    print(label, node, [e["reason"] for e in events])
    return node


def main(kubeconfig, registry):
    sys.path.insert(0, str(HERE.parent / "devstack" / "magnum_local_driver"))
    from magnum_local_driver.images import push_busybox

    kube = Kube(kubeconfig)
    kube.call("POST", "/api/v1/namespaces", {
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    tag = uuid.uuid4().hex[:8]
    image = push_busybox(registry, "record", tag, ["/bin/sleep", "30"])
    node = record(kube, "pulled", pod("fresh", image, pull="Always"),
                  lambda r: "Started" in r)
    again = pod("again", image)
    again["spec"]["nodeName"] = node  # where the image now is
    record(kube, "present", again, lambda r: "Started" in r)
    record(kube, "missing-image", pod("missing", f"{registry}/no-such-image:{tag}"),
           lambda r: "BackOff" in r)
    record(kube, "unschedulable", pod("huge", image, memory="100Ti"),
           lambda r: "FailedScheduling" in r)
    kube.call("DELETE", f"/api/v1/namespaces/{NAMESPACE}")


if __name__ == "__main__":
    main(*sys.argv[1:])
