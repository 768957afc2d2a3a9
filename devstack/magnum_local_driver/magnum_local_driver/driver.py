"""``Driver``: Magnum clusters as local Kubernetes control planes.

Entry point ``magnum.drivers:k8s_local``; a cluster template selects it with
an image whose ``os_distro`` is ``ubuntu`` and ``coe = kubernetes``
(``server_type`` ``vm``).  What happens, in Magnum's own order:

1. The conductor generates the cluster CA (x509keypair) and calls
   ``create_cluster``: the driver writes the certificates, starts etcd,
   kube-apiserver (trusting that CA), kube-controller-manager, the node
   agent (Cinder CSI stand-in), kube-scheduler and the real nodes
   (containerd, kubelet, kube-proxy: :mod:`.kubelets`), and sets
   ``api_address``.
2. The conductor's periodic status sync calls ``update_cluster_status``:
   CREATE_COMPLETE once the API answers healthz through Magnum's own client
   (``conductor.k8s_api.KubernetesAPI``, Magnum's client certificate) and
   every node is Ready; CREATE_FAILED if a process died or the time ran out.
3. ``delete_cluster`` stops the nodes, deletes the Cinder volumes the cluster
   provisioned and its application credential, stops the processes (API
   server before etcd) and frees the ports; the next sync reports
   DELETE_COMPLETE.
"""

import json
import os
import sys

from oslo_log import log as logging
from oslo_utils import timeutils

from magnum.common import exception
from magnum.conductor.handlers.common import cert_manager
from magnum.conductor import k8s_api
import magnum.conf
from magnum.drivers.common import driver
from magnum.objects import fields

from magnum_local_driver import certs
from magnum_local_driver import config  # noqa: F401  (registers options)
from magnum_local_driver import controlplane
from magnum_local_driver import kubelets
from magnum_local_driver import kubenode
from magnum_local_driver import nodenet
from magnum_local_driver import openstack

CONF = magnum.conf.CONF
LOG = logging.getLogger(__name__)

KUBE_VERSION = 'v1.20.2'
STORAGE_CLASS = 'standard'
CSI_DRIVER = 'cinder.csi.openstack.org'
# Cinder volume metadata naming the cluster (the key cinder-csi-plugin sets
# with its --cluster flag).
CLUSTER_METADATA_KEY = 'cinder.csi.openstack.org/cluster'

CHILDREN = controlplane.Children()
# A process that keeps exiting fails the cluster's creation (it is restarted
# 1, 2, 4, 8 s after each exit before that).
MAX_RESTARTS = 4


def _opts():
    return CONF.local_cluster


def _cdir(cluster):
    return controlplane.ClusterDir(_opts().state_dir, cluster.uuid)


def node_name(cluster):
    return '%s-node-0' % (cluster.name or cluster.uuid[:8]).lower()[:50]


def node_count(cluster):
    return max(1, min(nodenet.MAX_NODES, cluster.node_count or 1))


def _addresses(cluster, cdir, role):
    """A node group's ``node_addresses``: the control plane's for the
    master group, else the nodes' InternalIPs."""
    if role == 'master':
        return [cluster.api_address.split('//', 1)[1].rsplit(':', 1)[0]]
    return kubelets.addresses(cdir)


class Driver(driver.Driver):
    """Local control-plane clusters; see the module docstring."""

    @property
    def provides(self):
        return [{'server_type': 'vm', 'os': 'ubuntu', 'coe': 'kubernetes'}]

    # ------------------------------------------------------------------
    # create

    def create_cluster(self, context, cluster, cluster_create_timeout):
        cdir = _cdir(cluster)
        try:
            self._create(context, cluster, cdir)
        except Exception:
            LOG.exception('Creating local cluster %s failed', cluster.uuid)
            self._teardown(cluster, cdir)
            raise

    def _create(self, context, cluster, cdir):
        opts = _opts()
        cdir.make()
        slot = controlplane.allocate_slot(opts.state_dir, cluster.uuid,
                                          opts.port_base, opts.max_clusters)
        ports = controlplane.ports_of(opts.port_base, slot)
        api = 'https://127.0.0.1:%d' % ports['apiserver']
        nodes = kubelets.plan(cluster.uuid, slot, node_count(cluster),
                              opts.node_network, opts.pod_network,
                              node_name(cluster)[:-len('-node-0')])
        cdir.write('ports.json', json.dumps(ports), 0o644)

        ca = certs.ClusterCA(
            cert_manager.get_cluster_ca_certificate(cluster, context),
            cluster.name or cluster.uuid)
        pki = {}

        def put(name, text):
            pki[name] = cdir.write(os.path.join('pki', name), text)

        put('ca.crt', ca.ca_pem)
        crt, key = ca.server('kube-apiserver', dns=[
            'localhost', 'kubernetes', 'kubernetes.default',
            'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local'],
            ips=['127.0.0.1', certs.SERVICE_IP, nodes[0]['gateway']])
        put('apiserver.crt', crt)
        put('apiserver.key', key)
        sa_key, sa_pub = certs.service_account_keys()
        put('sa.key', sa_key)
        put('sa.pub', sa_pub)
        node = node_name(cluster)
        for who, cn in (('controller-manager', 'system:kube-controller-manager'),
                        ('node', 'system:node:%s' % node)):
            # system:masters: the node agent provisions volumes (as the CSI
            # controller would).
            crt, key = ca.client(cn, ['system:masters'])
            put(who + '.crt', crt)
            put(who + '.key', key)
            put(who + '.kubeconfig', certs.kubeconfig(
                api, pki['ca.crt'], pki[who + '.crt'], pki[who + '.key']))

        cinder = openstack.create_app_credential(context, cluster)
        cdir.write('cinder.json', json.dumps(cinder))
        cdir.write('node.json', json.dumps({
            'cluster_uuid': cluster.uuid,
            'node_name': node,
            'api': api,
            'ca': pki['ca.crt'],
            'cert': pki['node.crt'],
            'key': pki['node.key'],
            'cinder': cdir.file('cinder.json'),
            'storage_class': STORAGE_CLASS,
            'csi_driver': CSI_DRIVER,
            'cluster_metadata_key': CLUSTER_METADATA_KEY,
            # the claims' volumes, attached and mounted for the nodes
            # (hostPath PVs: attacher.py)
            'volume_mounts_dir': cdir.file('volume-mounts'),
            # the local registries' ports, reachable inside the nodes
            'node_netns': [os.path.join(nodenet.NETNS_DIR, n['netns'])
                           for n in nodes],
            'forward_ports': [int(r.rsplit(':', 1)[1])
                              for r in opts.registries],
        }, indent=1), 0o600)

        kubelets.prepare(cdir, ca, ports['apiserver'], slot, nodes, opts)
        self._start_processes(cdir, ports, pki, api)
        kubelets.start(CHILDREN, cdir, opts.kube_bin_dir)
        cluster.api_address = api
        cluster.coe_version = KUBE_VERSION
        cluster.stack_id = cluster.uuid
        LOG.info('Local cluster %s: control plane starting at %s (slot %d)',
                 cluster.uuid, api, slot)

    def _start_processes(self, cdir, ports, pki, api):
        opts = _opts()
        bin_dir = opts.kube_bin_dir
        etcd_peer = 'http://127.0.0.1:%d' % ports['etcd_peer']
        etcd_client = 'http://127.0.0.1:%d' % ports['etcd']
        CHILDREN.spawn(cdir, 'etcd', [
            opts.etcd, '--name', 'default', '--data-dir', cdir.etcd_data,
            '--listen-client-urls', etcd_client,
            '--advertise-client-urls', etcd_client,
            '--listen-peer-urls', etcd_peer,
            '--initial-advertise-peer-urls', etcd_peer,
            '--initial-cluster', 'default=' + etcd_peer,
            '--log-level', 'warn'])
        CHILDREN.spawn(cdir, 'kube-apiserver', [
            os.path.join(bin_dir, 'kube-apiserver'),
            '--etcd-servers', etcd_client,
            # the nodes reach it through their gateway
            '--bind-address', '0.0.0.0',
            '--advertise-address', '127.0.0.1',
            '--secure-port', str(ports['apiserver']),
            '--client-ca-file', pki['ca.crt'],
            '--tls-cert-file', pki['apiserver.crt'],
            '--tls-private-key-file', pki['apiserver.key'],
            '--service-account-key-file', pki['sa.pub'],
            '--service-account-signing-key-file', pki['sa.key'],
            '--service-account-issuer', 'https://kubernetes.default.svc',
            '--service-cluster-ip-range', certs.SERVICE_RANGE,
            '--authorization-mode', 'Node,RBAC',
            '--allow-privileged=true',
            '--cert-dir', cdir.pki,
            '--endpoint-reconciler-type', 'none',
            '--profiling=false'])
        CHILDREN.spawn(cdir, 'kube-controller-manager', [
            os.path.join(bin_dir, 'kube-controller-manager'),
            '--kubeconfig', cdir.file('pki', 'controller-manager.kubeconfig'),
            '--authentication-kubeconfig',
            cdir.file('pki', 'controller-manager.kubeconfig'),
            '--authorization-kubeconfig',
            cdir.file('pki', 'controller-manager.kubeconfig'),
            '--bind-address', '127.0.0.1',
            '--secure-port', str(ports['controller_manager']),
            '--port', '0',
            '--leader-elect=false',
            '--use-service-account-credentials=false',
            '--service-account-private-key-file', pki['sa.key'],
            '--root-ca-file', pki['ca.crt'],
            '--controllers', '*,-nodeipam,-route,-service,-cloud-node-lifecycle',
            '--cert-dir', cdir.pki,
            '--profiling=false'])
        CHILDREN.spawn(cdir, 'node', [
            sys.executable, '-m', 'magnum_local_driver.node',
            cdir.file('node.json')])

    # ------------------------------------------------------------------
    # status

    def update_cluster_status(self, context, cluster, use_admin_ctx=False):
        status = cluster.status
        if status == fields.ClusterStatus.CREATE_IN_PROGRESS:
            self._check_create(context, cluster)
        elif status == fields.ClusterStatus.DELETE_IN_PROGRESS:
            if not _cdir(cluster).exists():
                cluster.status = fields.ClusterStatus.DELETE_COMPLETE
                cluster.status_reason = None
                cluster.save()

    def _check_create(self, context, cluster):
        # The status sync can run between the cluster's creation and its
        # CA: Magnum's client needs the CA, so wait for it (and the driver).
        if not cluster.ca_cert_ref or not cluster.magnum_cert_ref or \
                not cluster.api_address:
            return
        cdir = _cdir(cluster)
        restarts = cdir.read_json('restarts.json') or {}
        for name, count in sorted(restarts.items()):
            if count >= MAX_RESTARTS:
                return self._fail(cluster, '%s of the local cluster exited %d '
                                  'times: %s' % (name, count,
                                                 cdir.log_tail(name, 5)))
        ready, why = self._api_ready(context, cluster)
        if ready:
            # cluster.nodegroups are read from the database at each access:
            # each one is changed and saved, before the cluster says it is
            # complete (a client that sees that sees the addresses too).
            for ng in cluster.nodegroups:
                ng.node_addresses = _addresses(cluster, cdir, ng.role)
                ng.status = fields.ClusterStatus.CREATE_COMPLETE
                ng.save()
            cluster.status = fields.ClusterStatus.CREATE_COMPLETE
            cluster.status_reason = None
            cluster.save()
            LOG.info('Local cluster %s is ready at %s', cluster.uuid,
                     cluster.api_address)
            return
        age = (timeutils.utcnow() - cluster.created_at.replace(
            tzinfo=None)).total_seconds() if cluster.created_at else 0
        if age > _opts().start_timeout:
            down = [n for n in controlplane.PROCESSES
                    if n not in cdir.running()]
            self._fail(cluster, 'the Kubernetes API was not ready after %d s: '
                       '%s%s' % (age, why, ''.join(
                           '\n%s is not running: %s' % (n, cdir.log_tail(n, 3))
                           for n in down)))

    def _api_ready(self, context, cluster):
        try:
            api = k8s_api.KubernetesAPI(context, cluster)
            health = api.get_healthz()
            if health.strip() != 'ok':
                return False, 'healthz answered %r' % health[:100]
            ready = 0
            for node in api.list_node().get('items', []):
                for cond in node.get('status', {}).get('conditions', []):
                    if cond.get('type') == 'Ready' and \
                            cond.get('status') == 'True':
                        ready += 1
            want = node_count(cluster)
            if ready >= want:
                return True, None
            return False, '%d of %d nodes Ready' % (ready, want)
        except Exception as e:
            return False, str(e)[:300]

    def _fail(self, cluster, reason):
        LOG.error('Local cluster %s failed: %s', cluster.uuid, reason)
        cluster.status = fields.ClusterStatus.CREATE_FAILED
        cluster.status_reason = reason
        cluster.save()

    # ------------------------------------------------------------------
    # delete

    def delete_cluster(self, context, cluster):
        self._teardown(cluster, _cdir(cluster))

    def _teardown(self, cluster, cdir):
        problems = []
        cinder = cdir.read_json('cinder.json') if cdir.exists() else None
        # The nodes first (their pods, links, namespaces), then the control
        # plane.
        problems += kubelets.teardown(cdir)
        controlplane.stop(cdir)
        # the claims' volumes the agent mounted for the nodes
        kubenode.unmount_under([cdir.path])
        if cinder:
            try:
                problems += openstack.delete_cluster_volumes(
                    cinder, CLUSTER_METADATA_KEY, cluster.uuid)
            except Exception as e:
                problems.append('volumes: %s' % e)
            try:
                openstack.delete_app_credential(cinder)
            except Exception as e:
                problems.append('application credential: %s' % e)
        controlplane.release_slot(_opts().state_dir, cluster.uuid)
        # Nothing may stay mounted under it (a claim's volume!) when it goes.
        if kubenode.mounts_under([cdir.path]):
            problems.append('still mounted, kept: %s' % ', '.join(
                kubenode.mounts_under([cdir.path])))
        else:
            cdir.remove()
        for p in problems:
            LOG.warning('Deleting local cluster %s: %s', cluster.uuid, p)
        LOG.info('Local cluster %s deleted', cluster.uuid)

    # ------------------------------------------------------------------
    # not supported by a local cluster

    def _unsupported(self, what):
        raise exception.NotSupported(
            '%s is not supported by the local cluster driver' % what)

    def update_cluster(self, context, cluster, scale_manager=None,
                       rollback=False):
        self._unsupported('Cluster update')

    def upgrade_cluster(self, context, cluster, cluster_template,
                        max_batch_size, nodegroup, scale_manager=None,
                        rollback=False):
        self._unsupported('Cluster upgrade')

    def resize_cluster(self, context, cluster, resize_manager, node_count,
                       nodes_to_remove, nodegroup=None):
        self._unsupported('Cluster resize')

    def create_federation(self, context, federation):
        self._unsupported('Federation')

    def update_federation(self, context, federation):
        self._unsupported('Federation')

    def delete_federation(self, context, federation):
        self._unsupported('Federation')

    def create_nodegroup(self, context, cluster, nodegroup):
        self._unsupported('Node group creation')

    def update_nodegroup(self, context, cluster, nodegroup):
        self._unsupported('Node group update')

    def delete_nodegroup(self, context, cluster, nodegroup):
        self._unsupported('Node group deletion')


