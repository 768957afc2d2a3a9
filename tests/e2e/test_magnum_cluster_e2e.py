"""Upstream Magnum 23 on the local cloud, through Magnum's real API.

The cloud comes up with Magnum (``make e2e`` sets ``LOCAL_CLOUD_MAGNUM=1``):
magnum-api and magnum-conductor with the local cluster driver
(devstack/magnum_local_driver), whose cluster is a real kube-apiserver.
Everything is driven and checked with clients independent of the code under
test: openstacksdk for Magnum and Cinder, kubernetes_asyncio (KubeSpawner's
client) with a kubeconfig built from Magnum's CA and a certificate Magnum
signed.  The tests of one module share one cluster (creating one costs
~15 s and ~450 MiB); the last test deletes it and checks nothing is left.
"""

import asyncio
import base64
import ipaddress
import os
import re
import socket
import time
import uuid

import pytest

from .conftest import CLOUD_DIR, MAGNUM_IMAGE, magnum_csr, require_magnum, wait_for

IMAGE_NAME = "k8s-local-v1.20.2"  # devstack/glance_stub.py
NS = "default"
#: What the test pods run: the nodes pull the notebook image (sh, coreutils,
#: python3) from the local registry.
POD_IMAGE = MAGNUM_IMAGE
#: Where pod IPs come from: [local_cluster] pod_network (a /24 per node).
POD_NETWORK = ipaddress.ip_network("10.244.0.0/16")


def _b64(text):
    return base64.b64encode(text.encode()).decode()


class Cluster:
    """One Magnum cluster and a Kubernetes client from its kubeconfig."""

    def __init__(self, cloud, tmp_dir):
        self.cloud = cloud
        self.cim = cloud.sdk.container_infrastructure_management
        self.tmp_dir = tmp_dir
        self.loop = asyncio.new_event_loop()
        self.name = "e2e-%s" % uuid.uuid4().hex[:6]
        self.template = None
        self.cluster = None
        self.api = None
        self.created_in = None

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def create(self):
        self.template = self.cim.create_cluster_template(
            name=self.name, image_id=IMAGE_NAME, coe="kubernetes",
            server_type="vm", tls_disabled=False, public=False)
        t0 = time.monotonic()
        created = self.cim.create_cluster(
            name=self.name, cluster_template_id=self.template.id,
            master_count=1, node_count=1)
        self.cluster = wait_for(lambda: self._finished(created.id), 240, 1,
                                "cluster %s to leave CREATE_IN_PROGRESS" % created.id)
        self.created_in = time.monotonic() - t0

    def _finished(self, cluster_id):
        import openstack.exceptions

        try:
            c = self.cim.get_cluster(cluster_id)
        except openstack.exceptions.NotFoundException:
            return None  # the conductor has not stored it yet
        return None if c.status.endswith("IN_PROGRESS") else c

    def kubeconfig(self, common_name="hub", organization="system:masters"):
        """A kubeconfig file from Magnum's CA and a certificate Magnum signed."""
        ca = self.cim.get_cluster_certificate(self.cluster.id).pem
        csr, key = magnum_csr(common_name, organization)
        cert = self.cim.create_cluster_certificate(
            cluster_uuid=self.cluster.id, csr=csr).pem
        path = os.path.join(self.tmp_dir, "kubeconfig-%s" % common_name)
        with open(path, "w") as f:
            f.write(
                "apiVersion: v1\nkind: Config\ncurrent-context: magnum\n"
                "clusters:\n- name: magnum\n  cluster:\n"
                "    server: %s\n    certificate-authority-data: %s\n"
                "users:\n- name: %s\n  user:\n"
                "    client-certificate-data: %s\n    client-key-data: %s\n"
                "contexts:\n- name: magnum\n  context: {cluster: magnum, user: %s}\n"
                % (self.cluster.api_address, _b64(ca), common_name, _b64(cert),
                   _b64(key), common_name))
        os.chmod(path, 0o600)
        return path, ca, cert

    def client(self, kubeconfig_path):
        from kubernetes_asyncio import client, config

        async def make():
            cfg = client.Configuration()
            await config.load_kube_config(config_file=kubeconfig_path,
                                          client_configuration=cfg)
            return client.ApiClient(configuration=cfg)

        api_client = self.run(make())
        return client.CoreV1Api(api_client), api_client

    # -- pods and claims through the CoreV1Api of the kubeconfig
    def pod(self, name):
        from kubernetes_asyncio.client.rest import ApiException

        try:
            return self.run(self.api.read_namespaced_pod(name, NS))
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    def create_pod(self, name, command, **container):
        body = {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name},
                "spec": {"restartPolicy": container.pop("restart", "Never"),
                         "automountServiceAccountToken": False,
                         "volumes": container.pop("volumes", []),
                         "containers": [dict({"name": "main", "image": POD_IMAGE,
                                              "command": command}, **container)]}}
        self.run(self.api.create_namespaced_pod(NS, body))

    def wait_pod(self, name, predicate, timeout=60, what=None):
        return wait_for(lambda: (lambda p: p if p and predicate(p) else None)(self.pod(name)),
                        timeout, 0.5, what or "pod %s" % name)

    def delete_pod(self, name):
        from kubernetes_asyncio.client.rest import ApiException

        try:
            # pid 1 of a container ignores SIGTERM without a handler (as
            # under Docker): a short grace period keeps the test quick.
            self.run(self.api.delete_namespaced_pod(name, NS, grace_period_seconds=2))
        except ApiException as e:
            if e.status != 404:
                raise
        wait_for(lambda: self.pod(name) is None, 60, 0.5, "pod %s to be deleted" % name)

    def close(self):
        self.loop.close()


def _terminated(pod):
    statuses = pod.status.container_statuses or []
    return statuses and statuses[0].state.terminated


@pytest.fixture(scope="module")
def cluster(local_cloud, tmp_path_factory):
    require_magnum(local_cloud)
    c = Cluster(local_cloud, str(tmp_path_factory.mktemp("magnum")))
    c.create()
    yield c
    if c.cluster is not None:
        c.cim.delete_cluster(c.cluster.id)
        wait_for(lambda: c._finished(c.cluster.id) is None and _gone(c), 120, 1,
                 "cluster %s to be deleted" % c.cluster.id)
    if c.template is not None:
        c.cim.delete_cluster_template(c.template.id)
    c.close()


def _gone(c):
    import openstack.exceptions

    try:
        c.cim.get_cluster(c.cluster.id)
    except openstack.exceptions.NotFoundException:
        return True
    return False


def test_cluster_create_complete_with_its_own_api(cluster):
    c = cluster.cluster
    assert c.status == "CREATE_COMPLETE", c.status_reason
    assert re.fullmatch(r"https://127\.0\.0\.1:\d+", c.api_address)
    assert cluster.template.cluster_distro == "ubuntu"  # from the Glance image
    print("cluster %s CREATE_COMPLETE in %.1f s" % (c.id, cluster.created_in))


def test_ca_and_signed_certificate_reach_the_real_apiserver(cluster):
    path, ca, cert = cluster.kubeconfig()
    assert ca.startswith("-----BEGIN CERTIFICATE-----")
    assert cert.startswith("-----BEGIN CERTIFICATE-----") and cert != ca
    cluster.api, _ = cluster.client(path)
    nodes = cluster.run(cluster.api.list_node()).items
    assert [n.metadata.name for n in nodes] == ["%s-node-0" % cluster.name]
    ready = [cond.status for cond in nodes[0].status.conditions if cond.type == "Ready"]
    assert ready == ["True"]
    # Magnum reports the nodes' addresses (a NodePort is reached there) and
    # the control plane's
    magnum = cluster.cim.get_cluster(cluster.cluster.id)
    assert magnum.node_addresses == [
        a.address for n in nodes for a in n.status.addresses if a.type == "InternalIP"]
    host = re.match(r"https://([^:/]+)", magnum.api_address).group(1)
    assert magnum.master_addresses == [host]
    names = {ns.metadata.name for ns in cluster.run(cluster.api.list_namespace()).items}
    assert {"default", "kube-system", "kube-public"} <= names


def test_certificate_without_a_group_is_refused(cluster):
    from kubernetes_asyncio.client.rest import ApiException

    path, _, _ = cluster.kubeconfig(common_name="alice", organization=None)
    api, _ = cluster.client(path)
    with pytest.raises(ApiException) as e:
        cluster.run(api.list_node())
    assert e.value.status == 403  # authenticated as alice, not authorized


def test_pod_runs_its_command_with_env_args_and_workdir(cluster):
    assert cluster.api is not None, "needs the kubeconfig test first"
    cluster.create_pod(
        "cmd", ["sh", "-c"],
        args=['test "$GREETING" = hello && test "$(pwd)" = /tmp/e2e-wd && '
              'test "$(hostname)" = cmd && exit 7'],
        env=[{"name": "GREETING", "value": "hello"}], workingDir="/tmp/e2e-wd")
    pod = cluster.wait_pod("cmd", _terminated, what="pod cmd to finish")
    term = pod.status.container_statuses[0].state.terminated
    assert (term.exit_code, term.reason) == (7, "Error")
    assert pod.status.phase == "Failed"
    assert ipaddress.ip_address(pod.status.pod_ip) in POD_NETWORK
    cluster.delete_pod("cmd")


def test_pod_serves_on_its_own_pod_ip(cluster):
    cluster.create_pod("web", ["python3", "-m", "http.server", "8080", "--bind", "0.0.0.0"],
                       resources={"requests": {"cpu": "250m"}, "limits": {"memory": "128Mi"}})
    pod = cluster.wait_pod("web", lambda p: p.status.phase == "Running"
                           and p.status.container_statuses[0].ready, what="web Running")
    ip = pod.status.pod_ip

    def answers():
        with socket.socket() as s:
            s.settimeout(1)
            return s.connect_ex((ip, 8080)) == 0
    wait_for(answers, 20, 0.3, "the pod's server on %s:8080" % ip)
    cluster.delete_pod("web")
    assert not answers()


@pytest.mark.skipif(not os.path.isdir("/sys/fs/cgroup/memory"),
                    reason="no cgroup v1 memory hierarchy here (under `ip netns exec`, "
                           "which mounts a fresh /sys: use `nsenter --net=/run/netns/NAME`)")
def test_memory_limit_oom_kills_with_exit_code_reported(cluster):
    hog = "x = []\nwhile True: x.append(bytearray(1 << 20))"
    cluster.create_pod("hog", ["python3", "-c", hog],
                       resources={"limits": {"memory": "64Mi"}})
    pod = cluster.wait_pod("hog", _terminated, what="hog to be killed")
    term = pod.status.container_statuses[0].state.terminated
    assert (term.exit_code, term.reason) == (137, "OOMKilled")
    assert pod.status.phase == "Failed"
    cluster.delete_pod("hog")


def _claim(cluster, name, size="1Gi"):
    cluster.run(cluster.api.create_namespaced_persistent_volume_claim(NS, {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": size}}}}))
    return wait_for(lambda: (lambda p: p if p.status.phase == "Bound" else None)(
        cluster.run(cluster.api.read_namespaced_persistent_volume_claim(name, NS))),
        90, 0.5, "claim %s to be Bound" % name)


def _volume(cloud, volume_id):
    import openstack.exceptions

    try:
        return cloud.block_storage.get_volume(volume_id)
    except openstack.exceptions.NotFoundException:
        return None


def test_claim_is_a_cinder_volume_whose_files_survive_the_pod(cluster, local_cloud):
    pvc = _claim(cluster, "home")
    assert pvc.spec.storage_class_name == "standard"  # the default class
    pv = cluster.run(cluster.api.read_persistent_volume(pvc.spec.volume_name))
    # (a hostPath of the volume mounted on the machine, no CSI node plugin; the
    # provisioner names the volume in an annotation)
    volume_id = pv.metadata.annotations["magnum.openstack.org/cinder-volume-id"]
    volume = _volume(local_cloud, volume_id)
    assert volume is not None and volume.size == 1  # in the hub's own project
    assert volume.name == "pvc-%s" % pvc.metadata.uid
    mount = {"volumes": [{"name": "home", "persistentVolumeClaim": {"claimName": "home"}}],
             "volumeMounts": [{"name": "home", "mountPath": "/home/e2e"}]}
    cluster.create_pod("writer", ["sh", "-c",
                       "echo kept > /home/e2e/f; df -k /home/e2e | tail -1 > /home/e2e/df;"
                       " dd if=/dev/zero of=/home/e2e/big bs=1M count=1100 2>/dev/null;"
                       " echo $? > /home/e2e/dd; rm -f /home/e2e/big; sync"], **dict(mount))
    pod = cluster.wait_pod("writer", _terminated, 90, "writer to finish")
    assert pod.status.container_statuses[0].state.terminated.exit_code == 0
    cluster.delete_pod("writer")
    assert not os.path.exists("/home/e2e/f")  # mounted inside the pod only
    check = ('test "$(cat /home/e2e/f)" = kept || exit 3; '
             'test "$(cat /home/e2e/dd)" != 0 || exit 4; '
             'size=$(awk "{print \\$2}" /home/e2e/df); '
             'test "$size" -gt 900000 && test "$size" -lt 1100000 || exit 5')
    cluster.create_pod("reader", ["sh", "-c", check], **dict(mount))
    pod = cluster.wait_pod("reader", _terminated, 90, "reader to finish")
    term = pod.status.container_statuses[0].state.terminated
    assert term.exit_code == 0, "3: file lost, 4: no ENOSPC past 1 GiB, 5: wrong size"
    assert pod.status.phase == "Succeeded"
    cluster.delete_pod("reader")

    cluster.run(cluster.api.delete_namespaced_persistent_volume_claim("home", NS))
    wait_for(lambda: _volume(local_cloud, volume.id) is None, 90, 1,
             "Cinder volume %s to be deleted with its claim" % volume.id)


def test_second_cluster_has_its_own_ports_ca_and_node(cluster, local_cloud, tmp_path):
    other = Cluster(local_cloud, str(tmp_path))
    other.template = cluster.template  # the same template
    try:
        created = other.cim.create_cluster(
            name=other.name, cluster_template_id=cluster.template.id,
            master_count=1, node_count=1)
        other.cluster = wait_for(lambda: other._finished(created.id), 240, 1,
                                 "second cluster %s" % created.id)
        assert other.cluster.status == "CREATE_COMPLETE", other.cluster.status_reason
        assert other.cluster.api_address != cluster.cluster.api_address
        path, ca, _ = other.kubeconfig()
        assert ca != cluster.cim.get_cluster_certificate(cluster.cluster.id).pem
        api, _ = other.client(path)
        nodes = other.run(api.list_node()).items
        assert [n.metadata.name for n in nodes] == ["%s-node-0" % other.name]
        # The first cluster is untouched.
        first = cluster.run(cluster.api.list_node()).items
        assert [n.metadata.name for n in first] == ["%s-node-0" % cluster.name]
    finally:
        if other.cluster is not None:
            other.cim.delete_cluster(other.cluster.id)
            wait_for(lambda: _gone(other), 120, 1, "second cluster to be deleted")
        other.close()


def test_cluster_delete_leaves_no_process_port_or_volume(cluster, local_cloud):
    """Runs last in this module: deletes the shared cluster."""
    # Something to clean up: a running pod on a claimed volume.
    _claim(cluster, "left")
    cluster.create_pod("sleeper", ["sleep", "3600"],
                       volumes=[{"name": "v", "persistentVolumeClaim": {"claimName": "left"}}],
                       volumeMounts=[{"name": "v", "mountPath": "/mnt/left"}])
    cluster.wait_pod("sleeper", lambda p: p.status.phase == "Running", 90)
    port = int(cluster.cluster.api_address.rsplit(":", 1)[1])
    uid = cluster.cluster.id
    volumes = [v.id for v in local_cloud.block_storage.volumes()
               if (v.metadata or {}).get("cinder.csi.openstack.org/cluster") == uid]
    assert len(volumes) == 1
    t0 = time.monotonic()
    cluster.cim.delete_cluster(uid)
    wait_for(lambda: _gone(cluster), 120, 1, "cluster %s to be deleted" % uid)
    print("cluster delete -> 404 in %.1f s" % (time.monotonic() - t0))
    cluster.cluster = None

    def cluster_processes():
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    cmd = f.read().decode(errors="replace")
                with open("/proc/%s/stat" % pid) as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if uid in cmd and state != "Z":
                found.append((pid, cmd.replace("\0", " ")[:120]))
        return found

    assert cluster_processes() == []
    for p in range(port, port + 4):  # apiserver, etcd client/peer, controller-manager
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", p)) != 0, "port %d still open" % p
    assert [v for v in volumes if _volume(local_cloud, v) is not None] == []
    assert not os.path.exists(os.path.join(CLOUD_DIR, "state", "magnum", uid))
