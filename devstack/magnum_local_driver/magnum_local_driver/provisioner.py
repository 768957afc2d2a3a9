"""Cinder CSI stand-in, provisioning: PersistentVolumeClaims as real Cinder
volumes.

What cinder-csi-plugin's controller (with the external provisioner) does on
a Magnum cluster, against the local cloud's real Cinder (its volume backend
is the Zun path's, ``docker_parts.file_volume``):

* a Pending claim of a StorageClass whose provisioner is ours gets a Cinder
  volume ``pvc-<claim uid>`` of the claimed size (rounded up to GiB) in the
  cluster's project, with metadata naming the cluster and the claim; once
  it is ``available``, a PV (the volume id in an annotation, claimRef = the
  claim) that kube-controller-manager binds to the claim.  The volume's
  name is derived from the claim, so a retry after a crash finds the volume
  instead of making a second one.

The PV's source is a ``hostPath`` (there is no CSI node plugin for the
nodes' kubelets to call) that exists only while the volume is attached to
the node of a pod that uses the claim: :mod:`.attacher` attaches, mounts,
detaches, and deletes a Released volume with reclaim policy Delete.
"""

import json
import logging
import time

from magnum_local_driver import attacher
from magnum_local_driver import openstack
from magnum_local_driver import quantity

LOG = logging.getLogger('local-csi')
CINDER = openstack.CINDER
PROVISIONED_BY = attacher.PROVISIONED_BY
VOLUME_ID = attacher.VOLUME_ID
INTERVAL = 2.0


class Provisioner(object):

    def __init__(self, conf, kube):
        self.conf = conf
        self.kube = kube
        self.driver = conf['csi_driver']
        with open(conf['cinder']) as f:
            self.cred = json.load(f)
        self.sess = openstack.session(self.cred)

    # ---------------------------------------------------------- cinder
    def _cinder(self, method, path, **kw):
        resp = self.sess.request(path, method, endpoint_filter=CINDER,
                                 raise_exc=False, **kw)
        return resp

    def find_volume(self, name):
        resp = self._cinder('GET', '/volumes/detail', params={'name': name})
        if resp.status_code >= 400:
            raise RuntimeError('Cinder list: %s %s' % (resp.status_code,
                                                       resp.text[:200]))
        found = [v for v in resp.json()['volumes'] if v['name'] == name]
        return found[0] if found else None

    def create_volume(self, pvc, size):
        meta = pvc['metadata']
        name = 'pvc-%s' % meta['uid']
        vol = self.find_volume(name)
        if vol is None:
            resp = self._cinder('POST', '/volumes', json={'volume': {
                'name': name, 'size': size,
                'description': 'Created by the local Cinder CSI of cluster '
                               '%s' % self.conf['cluster_uuid'],
                'metadata': {
                    self.conf['cluster_metadata_key']:
                        self.conf['cluster_uuid'],
                    'csi.storage.k8s.io/pvc/name': meta['name'],
                    'csi.storage.k8s.io/pvc/namespace': meta['namespace'],
                    'csi.storage.k8s.io/pv/name': name}}})
            if resp.status_code >= 400:
                raise RuntimeError('Cinder refused the volume: %s %s'
                                   % (resp.status_code, resp.text[:300]))
            vol = resp.json()['volume']
            LOG.info('claim %s/%s: Cinder volume %s (%d GiB) created',
                     meta['namespace'], meta['name'], vol['id'], size)
        deadline = time.monotonic() + 120
        while vol['status'] != 'available':
            if vol['status'] == 'error' or time.monotonic() > deadline:
                raise RuntimeError('Cinder volume %s is %s' % (vol['id'],
                                                               vol['status']))
            time.sleep(0.5)
            vol = self._cinder('GET', '/volumes/%s' % vol['id']).json()[
                'volume']
        return vol

    # ---------------------------------------------------------- kubernetes
    def our_classes(self):
        items = self.kube.get('/apis/storage.k8s.io/v1/storageclasses')[
            'items']
        return {c['metadata']['name']: c for c in items
                if c.get('provisioner') == self.driver}

    def provision(self, pvc, sc):
        meta, spec = pvc['metadata'], pvc['spec']
        size = quantity.size_gib(spec['resources']['requests']['storage'])
        vol = self.create_volume(pvc, size)
        pv_name = 'pvc-%s' % meta['uid']
        # (a directory only while attached: the kubelet waits for it)
        source = {'hostPath': {'path': attacher.host_path(self.conf,
                                                          vol['id']),
                               'type': 'Directory'}}
        self.kube.create('/api/v1/persistentvolumes', {
            'apiVersion': 'v1', 'kind': 'PersistentVolume',
            'metadata': {'name': pv_name,
                         'annotations': {PROVISIONED_BY: self.driver,
                                         VOLUME_ID: vol['id']}},
            'spec': {
                'capacity': {'storage': '%dGi' % size},
                'accessModes': spec.get('accessModes') or ['ReadWriteOnce'],
                'persistentVolumeReclaimPolicy':
                    sc.get('reclaimPolicy', 'Delete'),
                'storageClassName': sc['metadata']['name'],
                'volumeMode': spec.get('volumeMode', 'Filesystem'),
                'claimRef': {'apiVersion': 'v1',
                             'kind': 'PersistentVolumeClaim',
                             'namespace': meta['namespace'],
                             'name': meta['name'], 'uid': meta['uid']},
                **source}})

    def sync(self):
        classes = self.our_classes()
        for pvc in self.kube.get('/api/v1/persistentvolumeclaims')['items']:
            spec = pvc['spec']
            sc = classes.get(spec.get('storageClassName') or '')
            if sc is None or spec.get('volumeName') or \
                    pvc['metadata'].get('deletionTimestamp') or \
                    pvc.get('status', {}).get('phase') != 'Pending':
                continue
            if self.kube.find('/api/v1/persistentvolumes/pvc-%s'
                              % pvc['metadata']['uid']):
                continue  # made; kube-controller-manager binds it
            try:
                self.provision(pvc, sc)
            except Exception as e:
                LOG.warning('claim %s/%s: %s', pvc['metadata']['namespace'],
                            pvc['metadata']['name'], e)

    def run(self, stopping):
        while not stopping.is_set():
            try:
                self.sync()
            except Exception as e:
                LOG.warning('volume sync failed: %s', e)
            stopping.wait(INTERVAL)
