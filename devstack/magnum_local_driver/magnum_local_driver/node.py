"""The node agent of a local cluster: a kubelet and Cinder CSI stand-in.

``python -m magnum_local_driver.node <cluster dir>/node.json``, started by
the driver next to the control plane.  One loop (every ``INTERVAL`` s):

* **node**: registers the Node (Ready, capacity, 127.0.0.1) and renews its
  Ready condition (the node lifecycle controller marks a silent node
  NotReady after 40 s);
* **scheduler**: binds every pending pod to this node (the cluster has no
  kube-scheduler);
* **kubelet**: starts the pods bound here as processes (``pods.PodRunner``),
  restarts containers per ``restartPolicy``, reports phase, pod IP and
  container states (Running, Terminated with exit code and reason,
  OOMKilled) to the API, stops a pod whose deletion was requested and then
  removes it from the API;
* **Cinder CSI**: a PersistentVolumeClaim of the default StorageClass
  (``standard``, provisioner ``cinder.csi.openstack.org``, reclaim Delete,
  created here) becomes a Cinder volume of the claimed size in the
  cluster's project (the cluster's application credential) and a PV bound
  to the claim; a Released PV of ours is deleted with its volume.

On SIGTERM it stops its pods and exits.
"""

import json
import logging
import os
import platform
import signal
import sys
import threading
import time

from magnum_local_driver import kubeapi
from magnum_local_driver import pods as podlib

LOG = logging.getLogger('local-node')
INTERVAL = 1.0
HEARTBEAT = 10.0
PR_SET_CHILD_SUBREAPER = 36
MAX_BACKOFF = 30.0


def now():
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())


def set_subreaper():
    """Orphaned supervisors come to us (and are reaped) rather than to a
    pid 1 that may never reap them."""
    import ctypes
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1,
                                                0, 0, 0)
    except (OSError, AttributeError):
        pass


class Node(object):

    def __init__(self, conf):
        self.conf = conf
        self.name = conf['node_name']
        self.kube = kubeapi.Kube(conf['api'], conf['ca'], conf['cert'],
                                 conf['key'])
        self.runner = podlib.PodRunner(conf, self.kube)
        self.stopping = threading.Event()
        self.last_heartbeat = 0.0
        self.backoff = {}  # (pod uid, container) -> (next start, delay)
        self.reported = {}  # pod uid -> last status sent
        self.deleting = set()  # pod uids being stopped

    # ---------------------------------------------------------------- node
    def _node_status(self):
        mem = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')
        cpus = str(os.cpu_count() or 1)
        capacity = {'cpu': cpus, 'memory': '%dKi' % (mem // 1024),
                    'pods': '110', 'ephemeral-storage': '100Gi'}
        stamp = now()
        conds = [{'type': t, 'status': 'False', 'reason': 'KubeletHas' + r,
                  'message': 'local node', 'lastHeartbeatTime': stamp,
                  'lastTransitionTime': self.started}
                 for t, r in (('MemoryPressure', 'SufficientMemory'),
                              ('DiskPressure', 'NoDiskPressure'),
                              ('PIDPressure', 'SufficientPID'))]
        conds.append({'type': 'Ready', 'status': 'True',
                      'reason': 'KubeletReady',
                      'message': 'local kubelet stand-in is posting ready '
                                 'status', 'lastHeartbeatTime': stamp,
                      'lastTransitionTime': self.started})
        return {'status': {
            'capacity': capacity, 'allocatable': capacity,
            'conditions': conds,
            'addresses': [{'type': 'InternalIP', 'address': '127.0.0.1'},
                          {'type': 'Hostname', 'address': self.name}],
            'daemonEndpoints': {'kubeletEndpoint': {'Port': 0}},
            'nodeInfo': {
                'machineID': '', 'systemUUID': '', 'bootID': '',
                'kernelVersion': platform.release(),
                'osImage': 'local processes (magnum_local_driver)',
                'containerRuntimeVersion': 'local-process://0.1',
                'kubeletVersion': 'v1.20.2', 'kubeProxyVersion': 'v1.20.2',
                'operatingSystem': 'linux',
                'architecture': 'amd64'}}}

    def register(self):
        self.started = now()
        if not self.conf.get('real_nodes'):
            self.register_node()
        self.kube.create('/apis/storage.k8s.io/v1/storageclasses', {
            'apiVersion': 'storage.k8s.io/v1', 'kind': 'StorageClass',
            'metadata': {'name': self.conf['storage_class'], 'annotations': {
                'storageclass.kubernetes.io/is-default-class': 'true'}},
            'provisioner': self.conf['csi_driver'],
            'reclaimPolicy': 'Delete', 'volumeBindingMode': 'Immediate',
            'allowVolumeExpansion': False})

    def register_node(self):
        self.kube.create('/api/v1/nodes', {
            'apiVersion': 'v1', 'kind': 'Node',
            'metadata': {'name': self.name, 'labels': {
                'kubernetes.io/hostname': self.name,
                'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64',
                'magnum.openstack.org/role': 'worker'}}})
        self.heartbeat()
        LOG.info('node %s registered', self.name)

    def heartbeat(self):
        self.kube.merge_patch('/api/v1/nodes/%s/status' % self.name,
                              self._node_status())
        self.last_heartbeat = time.monotonic()

    # ---------------------------------------------------------------- pods
    def sync_pods(self):
        listing = self.kube.get('/api/v1/pods')['items']
        seen = set()
        for pod in listing:
            spec, meta = pod['spec'], pod['metadata']
            node = spec.get('nodeName')
            if not node and not meta.get('deletionTimestamp') and \
                    spec.get('schedulerName', 'default-scheduler') == \
                    'default-scheduler':
                self._bind(pod)
                continue
            if node != self.name:
                continue
            seen.add(meta['uid'])
            try:
                self.sync_pod(pod)
            except kubeapi.ApiError as e:
                if e.status not in (404, 409):
                    LOG.warning('pod %s/%s: %s', meta['namespace'],
                                meta['name'], e)
            except Exception:
                LOG.exception('pod %s/%s', meta['namespace'], meta['name'])
        # Pods gone from the API without us (force deletion).
        for rec in self.runner.records():
            if rec['uid'] not in seen and rec['uid'] not in self.deleting:
                LOG.info('pod %s/%s gone from the API: removing it',
                         rec['namespace'], rec['name'])
                self.runner.stop_pod(rec, 0)
                self.reported.pop(rec['uid'], None)

    def _bind(self, pod):
        meta = pod['metadata']
        self.kube.create('/api/v1/namespaces/%s/pods/%s/binding'
                         % (meta['namespace'], meta['name']), {
                             'apiVersion': 'v1', 'kind': 'Binding',
                             'metadata': {'name': meta['name']},
                             'target': {'apiVersion': 'v1', 'kind': 'Node',
                                        'name': self.name}})

    def sync_pod(self, pod):
        meta = pod['metadata']
        uid = meta['uid']
        rec = self.runner.record(uid)
        base = '/api/v1/namespaces/%s/pods/%s' % (meta['namespace'],
                                                  meta['name'])
        if meta.get('deletionTimestamp'):
            # In the background: a pod may take its grace period to stop.
            if uid not in self.deleting:
                self.deleting.add(uid)
                threading.Thread(target=self._finish_delete,
                                 args=(pod, rec, base), daemon=True).start()
            return
        phase = pod.get('status', {}).get('phase')
        if rec is None:
            if phase in ('Succeeded', 'Failed'):
                return
            try:
                rec = self.runner.start_pod(pod)
                LOG.info('pod %s/%s started at %s', meta['namespace'],
                         meta['name'], rec['ip'])
            except podlib.VolumeError as e:
                self._report(pod, self._pending_status(pod, str(e)))
                return
        self._restart_exited(pod, rec)
        self._report(pod, self._status(pod, rec))

    def _finish_delete(self, pod, rec, base):
        meta = pod['metadata']
        try:
            if rec:
                grace = meta.get('deletionGracePeriodSeconds')
                self.runner.stop_pod(rec, min(30, int(grace or 0)))
            else:
                # A start that failed half-way may hold an address.
                podlib.addresses.release(self.conf['addresses_dir'],
                                         self.runner.owner_prefix + meta['uid'])
            self.reported.pop(meta['uid'], None)
            # The kubelet's last word: gone from the API once stopped.
            self.kube.delete(base, {'apiVersion': 'v1', 'kind':
                                    'DeleteOptions', 'gracePeriodSeconds': 0,
                                    'preconditions': {'uid': meta['uid']}})
            LOG.info('pod %s/%s deleted', meta['namespace'], meta['name'])
        except Exception:
            LOG.exception('deleting pod %s/%s', meta['namespace'],
                          meta['name'])
        finally:
            self.deleting.discard(meta['uid'])

    def _restart_exited(self, pod, rec):
        policy = pod['spec'].get('restartPolicy', 'Always')
        for container in pod['spec']['containers']:
            cid = rec['containers'][container['name']]
            state, details = self.runner.cdir(cid).state()
            if state != podlib.runtime.EXITED:
                continue
            if policy == 'Never' or (policy == 'OnFailure' and
                                     details.get('exit_code') == 0):
                continue
            key = (rec['uid'], container['name'])
            due, delay = self.backoff.get(key, (None, 0.0))
            if due is None:
                # First exit: restart after 1 s (then 2, 4, ... 30 s).
                self.backoff[key] = (time.monotonic() + 1.0, 1.0)
                continue
            if time.monotonic() < due:
                continue
            st, _, _ = self.runner.container_status(rec, container)
            rec.setdefault('last_state', {})[container['name']] = st['state']
            self.runner.restart(rec, container)
            delay = min(MAX_BACKOFF, delay * 2)
            self.backoff[key] = (time.monotonic() + delay, delay)

    def _pending_status(self, pod, message):
        return {'phase': 'Pending', 'hostIP': '127.0.0.1',
                'conditions': [
                    {'type': 'PodScheduled', 'status': 'True'},
                    {'type': 'Ready', 'status': 'False',
                     'reason': 'ContainersNotReady', 'message': message}],
                'containerStatuses': [
                    {'name': c['name'], 'image': c.get('image'),
                     'imageID': '', 'ready': False, 'restartCount': 0,
                     'started': False,
                     'state': {'waiting': {'reason': 'ContainerCreating',
                                           'message': message}}}
                    for c in pod['spec']['containers']]}

    def _status(self, pod, rec):
        statuses, states, codes = [], [], []
        for container in pod['spec']['containers']:
            st, state, details = self.runner.container_status(
                rec, container,
                (rec.get('last_state') or {}).get(container['name']))
            statuses.append(st)
            states.append(state)
            codes.append(details.get('exit_code'))
        policy = pod['spec'].get('restartPolicy', 'Always')
        running = podlib.runtime.RUNNING
        exited = podlib.runtime.EXITED
        if all(s == exited for s in states) and policy != 'Always' and \
                not (policy == 'OnFailure' and any(codes)):
            phase = 'Succeeded' if not any(codes) else 'Failed'
        elif any(s in (running, exited) for s in states):
            phase = 'Running'
        else:
            phase = 'Pending'
        ready = 'True' if all(s == running for s in states) else 'False'
        start = rec.get('start_time')
        if not start:
            start = rec['start_time'] = now()
            self.runner.save_record(rec)
        conds = [{'type': t, 'status': v, 'lastProbeTime': None,
                  'lastTransitionTime': start}
                 for t, v in (('Initialized', 'True'), ('Ready', ready),
                              ('ContainersReady', ready),
                              ('PodScheduled', 'True'))]
        return {'phase': phase, 'hostIP': '127.0.0.1', 'podIP': rec['ip'],
                'podIPs': [{'ip': rec['ip']}], 'startTime': start,
                'conditions': conds, 'containerStatuses': statuses,
                'qosClass': pod.get('status', {}).get('qosClass')}

    def _report(self, pod, status):
        uid = pod['metadata']['uid']
        if self.reported.get(uid) == status:
            return
        self.kube.merge_patch('/api/v1/namespaces/%s/pods/%s/status' % (
            pod['metadata']['namespace'], pod['metadata']['name']),
            {'metadata': {'uid': uid}, 'status': status})
        self.reported[uid] = status

    # ---------------------------------------------------------------- run
    def stop_all(self):
        for rec in self.runner.records():
            self.runner.stop_pod(rec, 0)

    def run(self):
        from magnum_local_driver import provisioner
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
        if self.conf.get('real_nodes'):
            # real kubelets run the pods: only the claims are ours, and the
            # local registry's port inside the nodes
            from magnum_local_driver import forward
            forward.start(self.conf.get('node_netns') or [],
                          self.conf.get('forward_ports') or [], self.stopping)
            self.stopping.wait()
            return
        while not self.stopping.is_set():
            try:
                if time.monotonic() - self.last_heartbeat >= HEARTBEAT:
                    self.heartbeat()
                self.sync_pods()
            except Exception as e:
                LOG.warning('sync failed: %s', e)
            self.stopping.wait(INTERVAL)
        self.stop_all()
        LOG.info('node agent stopped')


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format='%(asctime)s %(name)s %(levelname)s '
                               '%(message)s')
    with open(argv[0]) as f:
        conf = json.load(f)
    set_subreaper()
    node = Node(conf)
    signal.signal(signal.SIGTERM, lambda *a: node.stopping.set())
    signal.signal(signal.SIGINT, lambda *a: node.stopping.set())
    node.run()


if __name__ == '__main__':
    main()
