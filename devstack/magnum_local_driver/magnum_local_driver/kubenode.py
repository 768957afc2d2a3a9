"""Real Kubernetes nodes of a local cluster.

Each node ``n`` of a cluster is, in its own network namespace
(:mod:`.nodenet`):

* a **containerd** (Debian's 1.6) with its own root, state and socket, CRI
  on, Debian's CNI plugins (bridge + host-local on the node's pod /24,
  portmap; loopback is containerd's own), its sandbox ("pause") image
  imported from a local archive (:mod:`.images`); the local registry's
  loopback port is carried into the node (:mod:`.forward`);
* a **kubelet** 1.20 talking CRI to it (``--container-runtime=remote``),
  cgroupfs driver, its pods under its own cgroup root, its own root dir;
* a **kube-proxy** (iptables mode, the node's own iptables).

The cluster's **kube-scheduler** runs in the first node's namespace (its
ports are then the namespace's own).  Files: ``<cluster dir>/nodes/<n>/``;
sockets under ``/run/mlc-<uuid 8>-<n>/`` (short unix socket paths).
"""

import json
import os
import shutil
import signal
import subprocess
import time

from magnum_local_driver import nodenet

CNI_BIN_DIR = '/usr/lib/cni'
PAUSE_IMAGE = 'docker.io/local/pause:3.2'
KUBELET_PORT = 10250


class NodeFiles(object):
    """Where node ``index`` of a cluster keeps its files."""

    def __init__(self, cluster_path, cluster_uuid, index):
        self.index = index
        self.path = os.path.join(cluster_path, 'nodes', str(index))
        self.run = '/run/mlc-%s-%d' % (cluster_uuid.replace('-', '')[:8],
                                       index)
        self.containerd_root = os.path.join(self.path, 'containerd')
        # short: the kubelet's unix sockets live under it (108 bytes)
        self.kubelet_root = os.path.join(self.run, 'kubelet')
        self.cni_conf = os.path.join(self.path, 'cni')
        self.socket = os.path.join(self.run, 'containerd.sock')

    def file(self, name):
        return os.path.join(self.path, name)

    def make(self):
        for d in (self.path, self.containerd_root, self.kubelet_root,
                  self.cni_conf, self.run):
            os.makedirs(d, exist_ok=True)


def cgroup_root(net):
    """The node's pods' cgroup parent: two kubelets on one machine must not
    see each other's pods as orphans to remove."""
    return '/' + net.netns


def containerd_config(files):
    """containerd 1.6's config (TOML, version 2)."""
    return '\n'.join([
        'version = 2',
        'root = %s' % json.dumps(files.containerd_root),
        'state = %s' % json.dumps(os.path.join(files.run, 'state')),
        'disabled_plugins = ["io.containerd.internal.v1.opt", '
        '"io.containerd.snapshotter.v1.aufs", '
        '"io.containerd.snapshotter.v1.btrfs", '
        '"io.containerd.snapshotter.v1.zfs", '
        '"io.containerd.snapshotter.v1.devmapper"]',
        '[grpc]',
        '  address = %s' % json.dumps(files.socket),
        '[ttrpc]',
        '  address = %s' % json.dumps(files.socket + '.ttrpc'),
        '[debug]',
        '  address = ""',
        '[metrics]',
        '  address = ""',
        '[plugins."io.containerd.grpc.v1.cri"]',
        '  sandbox_image = %s' % json.dumps(PAUSE_IMAGE),
        '  disable_apparmor = true',
        '  restrict_oom_score_adj = true',
        '  [plugins."io.containerd.grpc.v1.cri".containerd]',
        '    snapshotter = "overlayfs"',
        '    default_runtime_name = "runc"',
        '    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]',
        '      runtime_type = "io.containerd.runc.v2"',
        '  [plugins."io.containerd.grpc.v1.cri".cni]',
        '    bin_dir = %s' % json.dumps(CNI_BIN_DIR),
        '    conf_dir = %s' % json.dumps(files.cni_conf),
        '    max_conf_num = 1',
        ''])


def cni_config(net):
    return {
        'cniVersion': '0.4.0',
        'name': net.netns,
        'plugins': [
            {'type': 'bridge', 'bridge': 'cni0', 'isGateway': True,
             'ipMasq': False, 'hairpinMode': True,
             'ipam': {'type': 'host-local',
                      'dataDir': '/var/lib/cni/networks',
                      'ranges': [[{'subnet': net.pod_cidr}]],
                      'routes': [{'dst': '0.0.0.0/0'}]}},
            {'type': 'portmap', 'capabilities': {'portMappings': True}},
        ]}


def kubelet_config(files, net, ca, cert, key):
    return {
        'apiVersion': 'kubelet.config.k8s.io/v1beta1',
        'kind': 'KubeletConfiguration',
        'address': net.address,
        'port': KUBELET_PORT,
        'readOnlyPort': 0,
        'healthzBindAddress': '127.0.0.1',
        'tlsCertFile': cert,
        'tlsPrivateKeyFile': key,
        'authentication': {'x509': {'clientCAFile': ca},
                           'webhook': {'enabled': False},
                           'anonymous': {'enabled': False}},
        'authorization': {'mode': 'AlwaysAllow'},
        'cgroupDriver': 'cgroupfs',
        'cgroupRoot': cgroup_root(net),
        'failSwapOn': False,
        # the machine's disk is shared and may be fuller than the kubelet's
        # defaults allow (a node under disk pressure takes no pods)
        'evictionHard': {'memory.available': '100Mi',
                         'nodefs.available': '1%', 'nodefs.inodesFree': '1%',
                         'imagefs.available': '1%'},
        'imageGCHighThresholdPercent': 100,
        'imageGCLowThresholdPercent': 99,
        'serializeImagePulls': False,
        'volumePluginDir': os.path.join(files.path, 'volume-plugins'),
        'hairpinMode': 'hairpin-veth',
        'nodeStatusUpdateFrequency': '10s',
        'registerNode': True,
    }


def kubelet_argv(bin_dir, files, net, node_name, kubeconfig, config_path):
    return [os.path.join(bin_dir, 'kubelet'),
            '--config', config_path,
            '--kubeconfig', kubeconfig,
            '--root-dir', files.kubelet_root,
            '--cert-dir', os.path.join(files.path, 'pki'),
            '--container-runtime', 'remote',
            '--container-runtime-endpoint', 'unix://' + files.socket,
            '--runtime-request-timeout', '5m',
            '--hostname-override', node_name,
            '--node-ip', net.address,
            '--node-labels', 'magnum.openstack.org/role=worker',
            '--v', '1']


def kube_proxy_config(net, kubeconfig, cluster_cidr, node_name):
    return {
        'apiVersion': 'kubeproxy.config.k8s.io/v1alpha1',
        'kind': 'KubeProxyConfiguration',
        'clientConnection': {'kubeconfig': kubeconfig},
        'hostnameOverride': node_name,
        'bindAddress': net.address,
        'clusterCIDR': cluster_cidr,
        'mode': 'iptables',
        'nodePortAddresses': [net.address + '/32'],
        'healthzBindAddress': '127.0.0.1:10256',
        'metricsBindAddress': '127.0.0.1:10249',
        # leave the machine-wide conntrack settings alone
        'conntrack': {'maxPerCore': 0, 'min': 0,
                      'tcpEstablishedTimeout': '0s',
                      'tcpCloseWaitTimeout': '0s'},
    }


# What a kubelet sets at its start when they differ (vm.overcommit_memory=1,
# kernel.panic=10, kernel.panic_on_oops=1, vm.panic_on_oom=0): machine-wide
# sysctls.  In the node's mount namespace their files read the kubelet's
# values (bind-mounted files), so it writes none of them.
KUBELET_SYSCTLS = {'vm/overcommit_memory': '1', 'vm/panic_on_oom': '0',
                   'kernel/panic': '10', 'kernel/panic_on_oops': '1',
                   'kernel/keys/root_maxkeys': '1000000',
                   'kernel/keys/root_maxbytes': '25000000'}


def mount_namespace(files):
    return os.path.join(files.run, 'mnt')


def in_node(net, files, argv):
    """``argv`` in the node's network and mount namespaces.  nsenter, not
    ``ip netns exec``: that mounts a new /sys, which hides the cgroup
    hierarchies."""
    return ['nsenter', '--net=' + net.netns_path,
            '--mount=' + mount_namespace(files)] + list(argv)


def make_mount_namespace(files, shared_dirs=()):
    """The node's own mount namespace, kept at ``<run>/mnt``: what its
    containerd and kubelet mount (overlays, volumes, pod namespaces) stays
    in it, and goes with it.  ``shared_dirs`` (made shared mounts first) are
    seen in it as they change on the machine (the claims' mounts)."""
    for d in shared_dirs:
        os.makedirs(d, exist_ok=True)
        # (a bind mount on the same filesystem is no os.path.ismount)
        if d not in mounts_under([d]):
            subprocess.run(['mount', '--bind', d, d], check=True)
        subprocess.run(['mount', '--make-shared', d], check=True)
    path = mount_namespace(files)
    os.makedirs(files.run, exist_ok=True)
    if not os.path.ismount(path):
        open(path, 'w').close()
        subprocess.run(['unshare', '--mount=' + path, '--propagation',
                        'unchanged', 'true'], check=True)
    fakes = os.path.join(files.run, 'sysctl')
    os.makedirs(fakes, exist_ok=True)
    script = []
    for name, value in KUBELET_SYSCTLS.items():
        fake = os.path.join(fakes, name.replace('/', '.'))
        with open(fake, 'w') as f:
            f.write(value + '\n')
        script.append('mount --bind %s /proc/sys/%s' % (fake, name))
    subprocess.run(['nsenter', '--mount=' + path, 'sh', '-ec',
                    '; '.join(script)], check=True)


def write_json(path, data):
    with open(path + '.tmp', 'w') as f:
        json.dump(data, f, indent=1)
    os.replace(path + '.tmp', path)
    return path


# ---------------------------------------------------------------- teardown

def mounts_under(prefixes):
    out = []
    with open('/proc/self/mountinfo') as f:
        for line in f:
            point = line.split()[4].encode().decode('unicode_escape')
            if any(point == p or point.startswith(p.rstrip('/') + '/')
                   for p in prefixes):
                out.append(point)
    # deepest first
    return sorted(set(out), key=lambda p: -p.count('/'))


def unmount_under(prefixes):
    """Unmount everything under ``prefixes`` (stacked mounts too)."""
    for _ in range(10):
        points = mounts_under(prefixes)
        if not points:
            return
        for point in points:
            subprocess.run(['umount', '-l', point], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)


def _pids_in_cgroup_tree(root):
    pids = set()
    base = '/sys/fs/cgroup/memory' + root
    for d, _, names in os.walk(base):
        if 'cgroup.procs' in names:
            try:
                with open(os.path.join(d, 'cgroup.procs')) as f:
                    pids.update(int(x) for x in f.read().split())
            except OSError:
                pass
    return pids


def make_cgroups(root):
    """The kubelet's cgroup root in every v1 hierarchy (it must exist);
    cpuset's needs its parent's CPUs and memory nodes."""
    for h in os.listdir('/sys/fs/cgroup'):
        base = os.path.join('/sys/fs/cgroup', h)
        if not os.path.isdir(base) or os.path.islink(base):
            continue
        path = base + root
        os.makedirs(path, exist_ok=True)
        for name in ('cpuset.cpus', 'cpuset.mems'):
            if os.path.exists(os.path.join(path, name)):
                with open(os.path.join(base, name)) as f:
                    value = f.read().strip()
                with open(os.path.join(path, name), 'w') as f:
                    f.write(value)


def remove_cgroups(root):
    """Remove cgroup ``root`` (and its children) from every v1 hierarchy."""
    try:
        hierarchies = os.listdir('/sys/fs/cgroup')
    except OSError:
        return
    for h in hierarchies:
        base = os.path.join('/sys/fs/cgroup', h) + root
        if not os.path.isdir(base):
            continue
        for d, _, _ in sorted(os.walk(base), key=lambda w: -w[0].count('/')):
            try:
                os.rmdir(d)
            except OSError:
                pass


def sandbox_netns(files):
    """The pod network namespaces containerd made for this node's pods."""
    out = []
    if not os.path.exists(files.socket):
        return out
    ctr = ['ctr', '--address', files.socket, '--namespace', 'k8s.io']
    try:
        ids = subprocess.run(ctr + ['containers', 'ls', '-q'], timeout=20,
                             capture_output=True, text=True).stdout.split()
        for cid in ids:
            info = subprocess.run(ctr + ['containers', 'info', cid],
                                  timeout=20, capture_output=True,
                                  text=True).stdout
            try:
                spec = json.loads(info).get('Spec') or {}
            except ValueError:
                continue
            for ns in (spec.get('linux') or {}).get('namespaces') or []:
                path = ns.get('path') or ''
                if ns.get('type') == 'network' and \
                        os.path.dirname(path) in ('/var/run/netns',
                                                  '/run/netns'):
                    out.append(os.path.basename(path))
    except (OSError, subprocess.SubprocessError):
        pass
    return sorted(set(out))


def kill_pods(net, files):
    """Kill what runs in the node's pods (their shims too)."""
    root = cgroup_root(net)
    for _ in range(3):
        pids = _pids_in_cgroup_tree(root)
        # containerd's shims: not in the pods' cgroups
        for pid in os.listdir('/proc'):
            if not pid.isdigit():
                continue
            try:
                with open('/proc/%s/cmdline' % pid, 'rb') as f:
                    argv = f.read().split(b'\0')
            except OSError:
                continue
            if argv and argv[0].endswith(b'containerd-shim-runc-v2') and \
                    files.socket.encode() in argv:
                pids.add(int(pid))
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.3)


def teardown_node(net, files, pod_netns=()):
    """After the node's processes are stopped: its pods, mounts, cgroups,
    pod namespaces, network and files."""
    kill_pods(net, files)
    # the node's mount namespace (and all mounted in it) goes with the last
    # process in it and this file
    unmount_under([files.path, files.run])
    for ns in pod_netns:
        subprocess.run(['ip', 'netns', 'del', ns], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    remove_cgroups(cgroup_root(net))
    ipam = os.path.join('/var/lib/cni/networks', net.netns)
    shutil.rmtree(ipam, ignore_errors=True)
    nodenet.teardown(net)
    shutil.rmtree(files.run, ignore_errors=True)
