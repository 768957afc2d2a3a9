"""Pods as local processes, with the Zun process driver's runtime.

Each container of a pod becomes one ``zun_local_driver.runtime``
container (its own mount, pid and UTS namespaces, cgroup v1 memory limit
and cpu shares, stdout/stderr in ``output.log``); the pod gets one
loopback address of its own (its pod IP), and its volumes are bind mounts
(emptyDir, secret, configMap, hostPath) or loop-mounted ext4 images of the
Cinder volumes behind its PersistentVolumeClaims, as the Zun driver mounts
Cinder volumes.  The functions at the top translate a pod spec and are pure.
"""

import base64
import json
import math
import os
import re
import shutil
import signal
import uuid

from zun_local_driver import addresses
from zun_local_driver import cgroups
from zun_local_driver import images as image_map
from zun_local_driver import runtime
from zun_local_driver import volumes as volume_images

POD_NAMESPACE = uuid.UUID('1b7f0c7e-3f1e-4b59-8f0e-5f3a7c2d9e41')
DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
GiB = 1024 ** 3

_QUANTITY = re.compile(r'^([0-9.]+(?:[eE][-+]?[0-9]+)?)([a-zA-Z]*)$')
_SUFFIX = {'': 1, 'k': 1e3, 'M': 1e6, 'G': 1e9, 'T': 1e12, 'P': 1e15,
           'E': 1e18, 'Ki': 2 ** 10, 'Mi': 2 ** 20, 'Gi': 2 ** 30,
           'Ti': 2 ** 40, 'Pi': 2 ** 50, 'Ei': 2 ** 60, 'm': 1e-3}


def parse_quantity(text):
    """A Kubernetes quantity ('64Mi', '1G', '500m', '1.5', '129e6') as a
    float in base units."""
    m = _QUANTITY.match(str(text).strip())
    if not m or m.group(2) not in _SUFFIX:
        raise ValueError('not a Kubernetes quantity: %r' % text)
    return float(m.group(1)) * _SUFFIX[m.group(2)]


def memory_limit_mib(resources):
    """The memory limit in whole MiB (rounded up), or None."""
    limit = ((resources or {}).get('limits') or {}).get('memory')
    if limit is None:
        return None
    return max(1, int(math.ceil(parse_quantity(limit) / 2 ** 20)))


def cpu_weight(resources):
    """Cores for cpu.shares: the request, else the limit (as the kubelet:
    a request sets the shares), or None."""
    resources = resources or {}
    for kind in ('requests', 'limits'):
        cpu = (resources.get(kind) or {}).get('cpu')
        if cpu is not None:
            return parse_quantity(cpu)
    return None


def size_gib(quantity):
    """A claim's storage request in whole GiB (Cinder's unit), rounded up."""
    return max(1, int(math.ceil(parse_quantity(quantity) / GiB)))


def container_id(pod_uid, name):
    return str(uuid.uuid5(POD_NAMESPACE, '%s/%s' % (pod_uid, name)))


def _expand(text, env):
    """$(VAR) references, as Kubernetes expands them in command/args/env."""
    return re.sub(r'\$\(([A-Za-z_][A-Za-z0-9_]*)\)',
                  lambda m: env.get(m.group(1), m.group(0)), text)


def container_env(container, pod, pod_ip, host_ip, lookup):
    """The container's env list resolved to a dict.  *lookup(kind,
    namespace, name)* returns a secret's or configMap's ``data`` (None if
    missing)."""
    env = {}
    meta = pod.get('metadata', {})
    fields = {'metadata.name': meta.get('name'),
              'metadata.namespace': meta.get('namespace'),
              'metadata.uid': meta.get('uid'),
              'spec.nodeName': pod.get('spec', {}).get('nodeName'),
              'spec.serviceAccountName':
                  pod.get('spec', {}).get('serviceAccountName'),
              'status.podIP': pod_ip, 'status.hostIP': host_ip}
    for item in container.get('env') or []:
        name = item['name']
        if 'value' in item:
            env[name] = _expand(str(item.get('value') or ''), env)
            continue
        src = item.get('valueFrom') or {}
        value = None
        if 'fieldRef' in src:
            value = fields.get(src['fieldRef'].get('fieldPath'))
        elif 'secretKeyRef' in src or 'configMapKeyRef' in src:
            kind = 'secret' if 'secretKeyRef' in src else 'configmap'
            ref = src.get('secretKeyRef') or src.get('configMapKeyRef')
            data = lookup(kind, meta.get('namespace'), ref['name']) or {}
            value = data.get(ref['key'])
            if value is not None and kind == 'secret':
                value = base64.b64decode(value).decode(errors='replace')
        if value is not None:
            env[name] = str(value)
    return env


def container_argv(container, image_meta=None):
    """command replaces the image's Entrypoint, args its Cmd."""
    image_meta = image_meta or {}
    command = container.get('command')
    args = container.get('args')
    if command:
        argv = list(command) + list(args or [])
    else:
        argv = list(image_meta.get('Entrypoint') or []) + list(
            args if args is not None else (image_meta.get('Cmd') or []))
    return argv


def exit_reason(details):
    """(reason, message) of a terminated container as the kubelet says it."""
    if details.get('oom'):
        return 'OOMKilled', None
    if details.get('error') and details.get('exit_code') in (125, 126, 127):
        return 'ContainerCannotRun', details['error']
    if details.get('exit_code') == 0:
        return 'Completed', None
    return 'Error', details.get('error')


def rfc3339(iso):
    """The supervisor's '...T..:..:..ffffffZ' as Kubernetes' seconds form."""
    return (iso[:19] + 'Z') if iso else None


class VolumeError(Exception):
    """A volume is not ready yet (e.g. its claim is not bound)."""


class PodRunner(object):
    """Runs the pods bound to this node; all state under *pods_dir*."""

    def __init__(self, conf, kube):
        self.conf = conf
        self.kube = kube
        self.dir = conf['pods_dir']
        self.images = image_map.parse_image_map(conf.get('images') or [])
        self.volume_images = volume_images.VolumeImages(conf['volumes_dir'])
        self.owner_prefix = conf['cluster_uuid'] + '/'

    # -- records: <pods_dir>/<pod uid>.json
    def _record_path(self, uid):
        return os.path.join(self.dir, uid + '.json')

    def record(self, uid):
        try:
            with open(self._record_path(uid)) as f:
                return json.load(f)
        except (FileNotFoundError, ValueError):
            return None

    def save_record(self, rec):
        path = self._record_path(rec['uid'])
        with open(path + '.tmp', 'w') as f:
            json.dump(rec, f)
        os.replace(path + '.tmp', path)

    def records(self):
        out = []
        for name in os.listdir(self.dir):
            if name.endswith('.json') and not name.endswith('.tmp'):
                rec = self.record(name[:-5])
                if rec:
                    out.append(rec)
        return out

    def cdir(self, cid):
        return runtime.ContainerDir(self.dir, cid)

    def cgroup(self, cid):
        return cgroups.CgroupSet('/sys/fs/cgroup', self.conf['cgroup_parent'],
                                 cid)

    # -- volumes
    def _lookup(self, kind, namespace, name):
        path = '/api/v1/namespaces/%s/%s/%s' % (
            namespace, 'secrets' if kind == 'secret' else 'configmaps', name)
        obj = self.kube.find(path)
        return (obj or {}).get('data')

    def _write_files(self, target, data, items=None, decode=False):
        os.makedirs(target, exist_ok=True)
        keys = [(i['key'], i.get('path') or i['key']) for i in items] \
            if items else [(k, k) for k in (data or {})]
        for key, rel in keys:
            if key not in (data or {}):
                continue
            value = data[key]
            raw = base64.b64decode(value) if decode else value.encode()
            path = os.path.join(target, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, 'wb') as f:
                f.write(raw)

    def prepare_volumes(self, pod):
        """{volume name: mount source dict}; raises VolumeError to wait."""
        meta = pod['metadata']
        base = os.path.join(self.dir, meta['uid'] + '-volumes')
        out = {}
        for vol in pod['spec'].get('volumes') or []:
            name = vol['name']
            target = os.path.join(base, name)
            if 'persistentVolumeClaim' in vol:
                claim = vol['persistentVolumeClaim']['claimName']
                pvc = self.kube.find('/api/v1/namespaces/%s/'
                                     'persistentvolumeclaims/%s'
                                     % (meta['namespace'], claim))
                if not pvc:
                    raise VolumeError('persistentvolumeclaim "%s" not found'
                                      % claim)
                if pvc.get('status', {}).get('phase') != 'Bound':
                    raise VolumeError('persistentvolumeclaim "%s" is not '
                                      'bound' % claim)
                pv = self.kube.find('/api/v1/persistentvolumes/%s'
                                    % pvc['spec']['volumeName'])
                csi = (pv or {}).get('spec', {}).get('csi') or {}
                if csi.get('driver') != self.conf['csi_driver']:
                    raise VolumeError('volume of claim "%s" is not a Cinder '
                                      'volume of this cluster' % claim)
                size = size_gib(pv['spec']['capacity']['storage'])
                image = self.volume_images.ensure(csi['volumeHandle'], size)
                out[name] = {'type': 'loop', 'source': image,
                             'fstype': 'ext4', 'options': 'loop,discard'}
            elif 'emptyDir' in vol:
                os.makedirs(target, exist_ok=True)
                out[name] = {'type': 'bind', 'source': target}
            elif 'hostPath' in vol:
                out[name] = {'type': 'bind', 'source': vol['hostPath']['path']}
            elif 'secret' in vol or 'configMap' in vol:
                kind = 'secret' if 'secret' in vol else 'configmap'
                src = vol.get('secret') or vol.get('configMap')
                ref = src.get('secretName') or src.get('name')
                data = self._lookup(kind, meta['namespace'], ref)
                if data is None and not src.get('optional'):
                    raise VolumeError('%s "%s" not found' % (kind, ref))
                self._write_files(target, data, src.get('items'),
                                  decode=kind == 'secret')
                out[name] = {'type': 'bind', 'source': target}
            elif 'projected' in vol:
                os.makedirs(target, exist_ok=True)
                for source in vol['projected'].get('sources') or []:
                    for kind, key in (('secret', 'secret'),
                                      ('configmap', 'configMap')):
                        if key in source:
                            data = self._lookup(kind, meta['namespace'],
                                                source[key]['name'])
                            self._write_files(target, data,
                                              source[key].get('items'),
                                              decode=kind == 'secret')
                out[name] = {'type': 'bind', 'source': target}
            else:
                os.makedirs(target, exist_ok=True)
                out[name] = {'type': 'bind', 'source': target}
        return out

    # -- life cycle
    def start_pod(self, pod):
        """Start every container of a pod bound here; returns its record."""
        meta, spec = pod['metadata'], pod['spec']
        uid = meta['uid']
        if spec.get('initContainers'):
            raise VolumeError('init containers are not supported by the '
                              'local kubelet')
        mounts_by_volume = self.prepare_volumes(pod)
        addr = addresses.allocate(self.conf['addresses_dir'],
                                  self.conf['pod_address_base'],
                                  self.owner_prefix + uid)
        rec = {'uid': uid, 'namespace': meta['namespace'],
               'name': meta['name'], 'ip': addr, 'containers': {},
               'restarts': {}, 'next_start': {}}
        for container in spec['containers']:
            cid = container_id(uid, container['name'])
            rec['containers'][container['name']] = cid
            rec['restarts'][container['name']] = 0
            self._write_spec(pod, container, cid, addr, mounts_by_volume)
        self.save_record(rec)
        for container in spec['containers']:
            self._launch(rec['containers'][container['name']], container)
        return rec

    def _runtime_dir(self, image):
        found = image_map.lookup(self.images, image or '')
        return found if found and os.path.isdir(found) else None

    def _write_spec(self, pod, container, cid, addr, mounts_by_volume):
        runtime_dir = self._runtime_dir(container.get('image'))
        meta = image_map.metadata(runtime_dir) \
            if runtime_dir and hasattr(image_map, 'metadata') else {}
        env = container_env(container, pod, addr, '127.0.0.1',
                            self._lookup)
        argv = [_expand(a, env) for a in container_argv(container, meta)]
        if runtime_dir:
            env = runtime.build_env(env, runtime_dir, addr,
                                    pod['metadata']['name'], DEFAULT_PATH)
        else:
            # An image the node has no runtime for runs on the host's own
            # programs (the local cloud has no image registry).
            env = addresses.localise_env(env, addr)
            env.setdefault('PATH', DEFAULT_PATH)
            env.setdefault('HOME', '/root')
            env.setdefault('HOSTNAME', pod['metadata']['name'])
        env.setdefault('KUBERNETES_SERVICE_HOST', '127.0.0.1')
        mounts = []
        for vm in container.get('volumeMounts') or []:
            src = mounts_by_volume.get(vm['name'])
            if src is None:
                continue
            m = dict(src, target=os.path.normpath(vm['mountPath']))
            if vm.get('subPath') and m['type'] == 'bind':
                m['source'] = os.path.join(m['source'], vm['subPath'])
                os.makedirs(m['source'], exist_ok=True)
            mounts.append(m)
        mounts.sort(key=lambda m: m['target'].count('/'))
        cdir = self.cdir(cid)
        cdir.write_spec({
            'uuid': cid, 'name': container['name'],
            'image': container.get('image'),
            'runtime_dir': runtime_dir,
            'argv': addresses.localise_argv(argv, addr),
            'env': env,
            'cwd': container.get('workingDir') or '/',
            'hostname': pod['metadata']['name'][:63],
            'address': addr, 'mounts': mounts})

    def _launch(self, cid, container):
        cdir = self.cdir(cid)
        if not cdir.spec().get('argv'):
            return self._fail_start(cdir, 'no command specified and the '
                                    'image has none', 127)
        limit = memory_limit_mib(container.get('resources'))
        if limit and not self.cgroup(cid).available('memory'):
            # A limit that silently does not apply is worse than a failure
            # (`ip netns exec` mounts a /sys without the cgroup hierarchies).
            return self._fail_start(cdir, 'cannot apply the memory limit: no '
                                    'cgroup v1 memory hierarchy under '
                                    '/sys/fs/cgroup (use nsenter --net, not '
                                    'ip netns exec)')
        try:
            runtime.launch(cdir, self.cgroup(cid),
                           memory_mib=memory_limit_mib(
                               container.get('resources')),
                           default_memory_swap_mib=-1,
                           cpu=cpu_weight(container.get('resources')))
        except runtime.StartError as e:
            if cdir.status() is None:
                self._fail_start(cdir, str(e))

    @staticmethod
    def _fail_start(cdir, error, code=125):
        """Record a container that could not start as the runtime would."""
        from zun_local_driver import supervisor as sv
        cdir.clear_run_files()
        sv.write_json_atomic(cdir.file(sv.STATUS_FILE), {
            'exit_code': code, 'signal': None, 'oom': False, 'error': error,
            'started_at': None, 'finished_at': sv.utcnow_iso()})

    def restart(self, rec, container):
        cid = rec['containers'][container['name']]
        self.reap(cid)
        self._launch(cid, container)
        rec['restarts'][container['name']] += 1
        self.save_record(rec)

    def reap(self, cid):
        """Collect the supervisor if it is our child (this process is the
        supervisors' subreaper), so none lingers as a zombie."""
        info = self.cdir(cid).supervisor() or {}
        pid = info.get('pid')
        if pid:
            try:
                os.waitpid(int(pid), os.WNOHANG)
            except ChildProcessError:
                pass

    def stop_pod(self, rec, grace):
        """SIGTERM every container, SIGKILL after *grace* s, clean up."""
        dirs = [self.cdir(cid) for cid in rec['containers'].values()]
        for cdir in dirs:
            cdir.signal(signal.SIGTERM)
        for cdir in dirs:
            if not cdir.wait_exited(grace):
                cdir.signal(signal.SIGKILL)
        self.remove_pod(rec)

    def remove_pod(self, rec):
        problems = []
        for cid in rec['containers'].values():
            problems += runtime.destroy(self.cdir(cid), self.cgroup(cid))
            self.reap(cid)
        shutil.rmtree(os.path.join(self.dir, rec['uid'] + '-volumes'),
                      ignore_errors=True)
        addresses.release(self.conf['addresses_dir'],
                          self.owner_prefix + rec['uid'])
        try:
            os.unlink(self._record_path(rec['uid']))
        except FileNotFoundError:
            pass
        return problems

    # -- status
    def container_status(self, rec, container, previous=None):
        cid = rec['containers'][container['name']]
        state, details = self.cdir(cid).state()
        st = {'name': container['name'], 'image': container.get('image'),
              'imageID': 'local://%s' % (self._runtime_dir(
                  container.get('image')) or 'host'),
              'containerID': 'local://%s' % cid,
              'restartCount': rec['restarts'].get(container['name'], 0),
              'ready': state == runtime.RUNNING,
              'started': state == runtime.RUNNING}
        if state == runtime.RUNNING:
            st['state'] = {'running': {
                'startedAt': rfc3339(details.get('started_at'))}}
        elif state == runtime.EXITED:
            self.reap(cid)
            reason, message = exit_reason(details)
            term = {'exitCode': details.get('exit_code'), 'reason': reason,
                    'startedAt': rfc3339(details.get('started_at')
                                         or details.get('finished_at')),
                    'finishedAt': rfc3339(details.get('finished_at')),
                    'containerID': 'local://%s' % cid}
            if details.get('signal'):
                term['signal'] = details['signal']
            if message:
                term['message'] = message
            st['state'] = {'terminated': term}
        else:
            st['state'] = {'waiting': {'reason': 'ContainerCreating'}}
        if previous:
            st['lastState'] = previous
        return st, state, details


def destroy_all(pods_dir, cgroup_parent, addresses_dir):
    """Kill and remove every container and pod record under *pods_dir*
    (cluster deletion, after the node agent has stopped)."""
    problems = []
    if not os.path.isdir(pods_dir):
        return problems
    for cdir in runtime.list_dirs(pods_dir):
        problems += runtime.destroy(cdir, cgroups.CgroupSet(
            '/sys/fs/cgroup', cgroup_parent, cdir.uuid))
    for name in os.listdir(pods_dir):
        if name.endswith('.json'):
            try:
                with open(os.path.join(pods_dir, name)) as f:
                    rec = json.load(f)
                with open(os.path.join(os.path.dirname(pods_dir),
                                       'node.json')) as f:
                    cluster = json.load(f)['cluster_uuid']
                addresses.release(addresses_dir, '%s/%s'
                                  % (cluster, rec['uid']))
            except (OSError, ValueError, KeyError):
                pass
    return problems
