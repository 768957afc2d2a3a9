"""The node agent of a local cluster: the Cinder CSI stand-in.

``python -m magnum_local_driver.node <cluster dir>/node.json``, started by
the driver next to the control plane and the real nodes (which run the
pods: :mod:`.kubelets`).  It

* creates the default StorageClass (``standard``, provisioner
  ``cinder.csi.openstack.org``, reclaim Delete), provisions its claims
  as Cinder volumes of the cluster's project (:mod:`.provisioner`: there is
  no Cinder CSI here) and attaches each to the node of the pod that uses
  it (:mod:`.attacher`);
* carries the local registries' loopback ports into the nodes' network
  namespaces (:mod:`.forward`), so the kubelets pull
  ``127.0.0.1:PORT/...`` as the local cloud does.

On SIGTERM it exits.
"""

import json
import logging
import signal
import sys
import threading

from magnum_local_driver import attacher
from magnum_local_driver import forward
from magnum_local_driver import kubeapi
from magnum_local_driver import openstack
from magnum_local_driver import provisioner

LOG = logging.getLogger('local-node')


class Node(object):

    def __init__(self, conf):
        self.conf = conf
        self.kube = kubeapi.Kube(conf['api'], conf['ca'], conf['cert'],
                                 conf['key'])
        self.stopping = threading.Event()

    def register(self):
        self.kube.create('/apis/storage.k8s.io/v1/storageclasses', {
            'apiVersion': 'storage.k8s.io/v1', 'kind': 'StorageClass',
            'metadata': {'name': self.conf['storage_class'], 'annotations': {
                'storageclass.kubernetes.io/is-default-class': 'true'}},
            'provisioner': self.conf['csi_driver'],
            'reclaimPolicy': 'Delete', 'volumeBindingMode': 'Immediate',
            'allowVolumeExpansion': False})

    def run(self):
        csi = provisioner.Provisioner(self.conf, self.kube)
        while not self.stopping.is_set():
            try:
                self.register()
                break
            except Exception as e:
                LOG.info('waiting for the API server: %s', e)
                self.stopping.wait(0.5)
        threading.Thread(target=csi.run, args=(self.stopping,),
                         name='csi', daemon=True).start()
        # its own clients: the provisioner's thread waits on Cinder
        attach = attacher.Attacher(
            self.conf, kubeapi.Kube(self.conf['api'], self.conf['ca'],
                                    self.conf['cert'], self.conf['key']),
            openstack.session(csi.cred))
        threading.Thread(target=attach.run, args=(self.stopping,),
                         name='csi-attacher', daemon=True).start()
        forward.start(self.conf.get('node_netns') or [],
                      self.conf.get('forward_ports') or [], self.stopping)
        self.stopping.wait()
        LOG.info('node agent stopped')


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format='%(asctime)s %(name)s %(levelname)s '
                               '%(message)s')
    with open(argv[0]) as f:
        conf = json.load(f)
    node = Node(conf)
    signal.signal(signal.SIGTERM, lambda *a: node.stopping.set())
    signal.signal(signal.SIGINT, lambda *a: node.stopping.set())
    node.run()


if __name__ == '__main__':
    main()
