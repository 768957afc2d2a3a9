"""Cinder CSI stand-in, attaching: a claim's Cinder volume is attached to
the node its pod runs on, mounted there, and detached when the pod goes.

Upstream, on a Magnum cluster, cinder-csi-plugin does this in two halves:
its controller (behind the attach/detach controller and the
external-attacher) has Nova attach the volume to the node's server
(``ControllerPublishVolume``: a Cinder attachment whose host is the node),
and its node plugin, a DaemonSet the kubelet calls over a socket, formats
the device on first use and mounts it (``NodeStageVolume``,
``NodePublishVolume``).  Neither can run here: there is no Nova, no
cinder-csi binary, and the nodes are network namespaces of one machine.  So
this loop of the node agent does both, on Cinder's own attachments API, for
the PVs of :mod:`.provisioner` (a ``hostPath`` source):

* a volume whose claim a scheduled, unfinished pod uses is **attached** to
  that pod's node: the PV's annotation ``ATTACHED_NODE`` names the node
  first, then a Cinder attachment is made with a connector whose ``host``
  is the node; its ``connection_info`` is the backend's ``local`` device
  path (a file: ``docker_parts.file_volume``), formatted (ext4) if blank
  and loop-mounted at a staging
  directory, which the PV's path then links to (atomically: the kubelet
  finds either nothing and waits, or the volume); then the attachment is
  completed and Cinder shows the volume ``in-use``, attached to that host;
* a pod of the claim on another node (the first one gone): the attachment
  is deleted and a new one made for the new node; the mount stays (one
  machine), so the files follow the user;
* no pod left: the link, then the mount, then the attachment go (the
  volume is ``available``);
* a Released PV of ours with reclaim policy Delete: detached as above, then
  the Cinder volume and the PV are deleted.

Every round reads the state again (pods, PVs, Cinder's attachments, the
mount table) and :func:`plan` decides from it alone, so a retry after a
crash at any point finds the attachment it made (a volume never gets a
second attachment: one is made only when Cinder lists none; the PV's
annotation, written before, says whose it is).  A file still held by a
loop device is never mounted a second time.
"""

import collections
import logging
import os
import subprocess
import time

from magnum_local_driver import kubeapi
from magnum_local_driver import openstack

LOG = logging.getLogger('local-csi-attacher')
PROVISIONED_BY = 'pv.kubernetes.io/provisioned-by'
VOLUME_ID = 'magnum.openstack.org/cinder-volume-id'
#: The node the volume's latest attachment is (being) made for.
ATTACHED_NODE = 'magnum.openstack.org/attached-node'
# (a kubelet retries a missing path after 0.5, 1, 2, 4 ... s)
INTERVAL = 0.5
#: Attachment states this loop can finish (Cinder's VolumeAttachStatus).
USABLE = ('attaching', 'attached')

Plan = collections.namedtuple('Plan', 'unmount detach record attach finish')
Plan.__doc__ = """What to do with one volume, in this order:
unmount (bool): remove the PV's path and unmount the volume;
detach: ids of the attachments to delete;
record: the node to name in the PV before attaching to it (or None);
attach: the node to make an attachment for, then mount and complete it;
finish: the id of the attachment to mount (if not) and complete (if not)."""


def plan(wanted, recorded, attachments):
    """What to do with one volume; pure.

    *wanted*: the nodes of the live pods that use it, in the order they
    came; *recorded*: the node its PV names (``ATTACHED_NODE``) or None;
    *attachments*: Cinder's attachments of it (``id``, ``status``).
    """
    usable = [a for a in attachments if a['status'] in USABLE]
    if attachments and recorded in wanted and usable:
        # Where it is: stay (a second pod elsewhere waits, as for a
        # ReadWriteOnce volume under Cinder CSI).
        keep = usable[0]
        return Plan(False, [a['id'] for a in attachments if a is not keep],
                    None, None, keep['id'])
    detach = [a['id'] for a in attachments]
    if not wanted:
        return Plan(True, detach, None, None, None)
    return Plan(False, detach, wanted[0] if wanted[0] != recorded else None,
                wanted[0], None)


def host_path(conf, volume_id):
    """The PV's path: a link to the mounted volume while it is attached."""
    return os.path.join(conf['volume_mounts_dir'], volume_id)


def staging_path(conf, volume_id):
    return os.path.join(conf['volume_mounts_dir'], '.staging', volume_id)


def _run(cmd, ok=(0,)):
    done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True)
    if done.returncode not in ok:
        raise RuntimeError('%s failed (%d): %s' % (
            ' '.join(cmd), done.returncode, done.stderr.strip()))
    return done


class Mounts(object):
    """The volumes' file systems on this machine (the node plugin's part)."""

    def __init__(self, conf):
        self.conf = conf

    def published(self, volume_id):
        return os.path.ismount(staging_path(self.conf, volume_id)) and \
            os.path.isdir(host_path(self.conf, volume_id))

    def publish(self, volume_id, device_path):
        staging = staging_path(self.conf, volume_id)
        if not os.path.ismount(staging):
            if _run(['losetup', '-j', device_path]).stdout.strip():
                raise RuntimeError('%s is still in use (a pod of its last '
                                   'node not gone yet?)' % device_path)
            # blkid: 2 = no file system at all (a new volume)
            if _run(['blkid', '-p', device_path], ok=(0, 2)).returncode:
                _run(['mkfs.ext4', '-q', '-F', '-m', '0', '-L',
                      volume_id[:16], device_path])
            os.makedirs(staging, exist_ok=True)
            _run(['mount', '-o', 'loop,discard', '-t', 'ext4', device_path,
                  staging])
            # the server runs as the image's user (jovyan), not root
            os.chmod(staging, 0o777)
        path = host_path(self.conf, volume_id)
        if os.path.isdir(path) and not os.path.islink(path):
            # containerd makes a missing host path a directory: one that
            # came while the volume was going (empty: nothing was written)
            os.rmdir(path)
        if os.path.realpath(path) != os.path.realpath(staging):
            tmp = path + '.new'
            if os.path.lexists(tmp):
                os.unlink(tmp)
            os.symlink(staging, tmp)
            os.replace(tmp, path)

    def unpublish(self, volume_id):
        path = host_path(self.conf, volume_id)
        if os.path.lexists(path):
            os.unlink(path)
        staging = staging_path(self.conf, volume_id)
        if os.path.ismount(staging):
            _run(['umount', staging])
        if os.path.isdir(staging):
            os.rmdir(staging)


class Attacher(object):

    def __init__(self, conf, kube, sess, mounts=None):
        self.conf = conf
        self.kube = kube
        self.sess = sess
        self.driver = conf['csi_driver']
        self.mounts = mounts or Mounts(conf)

    # ------------------------------------------------------------- reading
    def _wanted(self, pvs):
        """{PV name: the nodes of the live pods that use its claim}."""
        by_claim = {}
        for pv in pvs:
            ref = pv['spec'].get('claimRef') or {}
            if pv.get('status', {}).get('phase') == 'Bound':
                by_claim[(ref.get('namespace'), ref.get('name'))] = \
                    pv['metadata']['name']
        wanted = collections.defaultdict(list)
        pods = self.kube.get('/api/v1/pods')['items']
        pods.sort(key=lambda p: p['metadata'].get('creationTimestamp') or '')
        for pod in pods:
            node = pod['spec'].get('nodeName')
            if not node or pod.get('status', {}).get('phase') in (
                    'Succeeded', 'Failed'):
                continue
            for vol in pod['spec'].get('volumes') or []:
                claim = (vol.get('persistentVolumeClaim') or {}).get(
                    'claimName')
                pv = by_claim.get((pod['metadata']['namespace'], claim))
                if pv and node not in wanted[pv]:
                    wanted[pv].append(node)
        return wanted

    def _state(self):
        """Our PVs, the nodes that want each one, the nodes' addresses."""
        pvs = [pv for pv in self.kube.get('/api/v1/persistentvolumes')['items']
               if (pv['metadata'].get('annotations') or {}).get(
                   PROVISIONED_BY) == self.driver]
        wanted = self._wanted(pvs)
        addresses = {}
        for node in self.kube.get('/api/v1/nodes')['items']:
            for a in node.get('status', {}).get('addresses') or []:
                if a.get('type') == 'InternalIP':
                    addresses[node['metadata']['name']] = a['address']
        return pvs, wanted, addresses

    # ------------------------------------------------------------- acting
    def connector(self, node, addresses, volume_id):
        """What os-brick's connector properties say of a host, for the node
        (its ``local`` connections need no initiator)."""
        return {'host': node, 'ip': addresses.get(node, ''),
                'platform': 'x86_64', 'os_type': 'linux', 'multipath': False,
                'mountpoint': host_path(self.conf, volume_id), 'mode': 'rw'}

    def _finish(self, att, volume_id):
        # (an attachment's connection_info is the driver's connection data
        # with driver_volume_type beside it: the file backend's "local")
        device = (att.get('connection_info') or {}).get('device_path')
        if not device:
            raise RuntimeError('attachment %s has no device path: %s'
                               % (att['id'], att.get('connection_info')))
        self.mounts.publish(volume_id, device)
        if att['status'] != 'attached':
            openstack.complete(self.sess, att['id'])

    def sync_volume(self, pv, wanted, addresses):
        """Bring one volume where its pods are; returns the plan done."""
        meta = pv['metadata']
        volume_id = meta['annotations'][VOLUME_ID]
        attachments = openstack.attachments(self.sess, volume_id)
        recorded = (meta.get('annotations') or {}).get(ATTACHED_NODE)
        todo = plan(wanted, recorded, attachments)
        if todo.unmount:
            # A pod scheduled since the listing would find the path (and
            # containerd make it a directory): look again right before.
            if self._wanted([pv]).get(meta['name']):
                raise RuntimeError('a pod came while the volume was going; '
                                   'next round')
            self.mounts.unpublish(volume_id)
        for att_id in todo.detach:
            openstack.detach(self.sess, att_id)
            LOG.info('volume %s: attachment %s deleted', volume_id, att_id)
        if todo.record:
            self.kube.merge_patch('/api/v1/persistentvolumes/%s'
                                  % meta['name'], {'metadata': {
                                      'annotations': {
                                          ATTACHED_NODE: todo.record}}})
        if todo.attach:
            att = openstack.attach(self.sess, volume_id, self.connector(
                todo.attach, addresses, volume_id))
            LOG.info('volume %s: attached to %s (%s)', volume_id,
                     todo.attach, att['id'])
            self._finish(att, volume_id)
        if todo.finish:
            att = [a for a in attachments if a['id'] == todo.finish][0]
            self._finish(att, volume_id)
        return todo

    def reclaim(self, pv):
        """A Released PV with reclaim Delete: detach, delete the volume,
        then the PV."""
        meta = pv['metadata']
        volume_id = meta['annotations'][VOLUME_ID]
        self.sync_volume(pv, [], {})
        resp = self.sess.delete('/volumes/%s' % volume_id,
                                endpoint_filter=openstack.CINDER,
                                raise_exc=False)
        if resp.status_code not in (202, 404):
            raise RuntimeError('Cinder refused to delete %s: %s %s'
                               % (volume_id, resp.status_code,
                                  resp.text[:200]))
        deadline = time.monotonic() + 120
        while self.sess.get('/volumes/%s' % volume_id,
                            endpoint_filter=openstack.CINDER,
                            raise_exc=False).status_code != 404:
            if time.monotonic() > deadline:
                raise RuntimeError('Cinder volume %s not deleted after 120 s'
                                   % volume_id)
            time.sleep(0.5)
        self.kube.delete('/api/v1/persistentvolumes/%s' % meta['name'])
        LOG.info('PV %s and its Cinder volume %s deleted', meta['name'],
                 volume_id)

    def sync(self, settled):
        """One round.  *settled*: {PV name: nodes} of the volumes found where
        they belong (Cinder is asked again only when that changes)."""
        pvs, wanted, addresses = self._state()
        for pv in pvs:
            name = pv['metadata']['name']
            phase = pv.get('status', {}).get('phase')
            try:
                if phase in ('Released', 'Failed'):
                    if pv['spec'].get('persistentVolumeReclaimPolicy') == \
                            'Delete':
                        self.reclaim(pv)
                    continue
                nodes = tuple(wanted.get(name, ()))
                if settled.get(name) == nodes and (
                        not nodes or self.mounts.published(
                            pv['metadata']['annotations'][VOLUME_ID])):
                    continue
                settled.pop(name, None)
                self.sync_volume(pv, list(nodes), addresses)
                settled[name] = nodes
            except (RuntimeError, kubeapi.ApiError, OSError) as e:
                LOG.warning('PV %s: %s', name, e)
        for gone in set(settled) - {pv['metadata']['name'] for pv in pvs}:
            settled.pop(gone)

    def run(self, stopping):
        settled = {}
        while not stopping.is_set():
            try:
                self.sync(settled)
            except Exception as e:
                LOG.warning('attach sync failed: %s', e)
            stopping.wait(INTERVAL)
