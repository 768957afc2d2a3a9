"""A local cluster's nodes: their certificates, processes and removal.

(:mod:`.kubenode` has the configurations, :mod:`.nodenet` the network.)
``prepare`` makes the files, ``start`` the processes (children of the
conductor, restarted if they exit, as the control plane's), ``teardown``
removes all of it, even after the processes were killed from outside
(``local-cloud down``): ``python -m magnum_local_driver.kubelets cleanup
<state_dir>``.
"""

import json
import os
import subprocess
import sys
import time

from magnum_local_driver import certs
from magnum_local_driver import controlplane
from magnum_local_driver import images
from magnum_local_driver import kubenode
from magnum_local_driver import nodenet

NODES_FILE = 'nodes.json'
SCHEDULER = 'kube-scheduler'


def node_processes(index):
    return ('containerd-%d' % index, 'kubelet-%d' % index,
            'kube-proxy-%d' % index)


def plan(cluster_uuid, slot, count, node_network, pod_network, name):
    """[{name, index, address, ...}] of the cluster's nodes."""
    out = []
    for i in range(count):
        net = nodenet.NodeNet(cluster_uuid, slot, i, node_network,
                              pod_network)
        out.append({'index': i, 'name': '%s-node-%d' % (name, i),
                    'address': net.address, 'gateway': net.gateway,
                    'pod_cidr': net.pod_cidr, 'netns': net.netns})
    return out


def _net(cdir, saved):
    info = cdir.read_json(NODES_FILE)
    return nodenet.NodeNet(cdir.uuid, info['slot'], saved['index'],
                           info['node_network'], info['pod_network'])


def prepare(cdir, ca, api_port, slot, nodes, opts):
    """Certificates, kubeconfigs and configurations of the nodes and the
    scheduler; the nodes' namespaces and links."""
    pki = cdir.pki
    ca_path = os.path.join(pki, 'ca.crt')
    gateway = nodes[0]['gateway']
    api = 'https://%s:%d' % (gateway, api_port)
    cdir.write(NODES_FILE, json.dumps({
        'slot': slot, 'node_network': opts.node_network,
        'pod_network': opts.pod_network, 'nodes': nodes}, indent=1), 0o644)

    def client(who, cn, orgs):
        crt, key = ca.client(cn, orgs)
        paths = [cdir.write(os.path.join('pki', who + ext), text)
                 for ext, text in (('.crt', crt), ('.key', key))]
        return cdir.write(os.path.join('pki', who + '.kubeconfig'),
                          certs.kubeconfig(api, ca_path, *paths))

    client('scheduler', 'system:kube-scheduler', [])
    proxy = client('kube-proxy', 'system:kube-proxy', [])
    cluster_cidr = nodenet.cluster_pod_cidr(slot, opts.pod_network)
    pause = os.path.join(cdir.path, 'pause.tar')
    images.pause_archive(pause)
    for node in nodes:
        net = _net(cdir, node)
        files = kubenode.NodeFiles(cdir.path, cdir.uuid, node['index'])
        files.make()
        who = 'kubelet-%d' % node['index']
        kubeconfig = client(who, 'system:node:' + node['name'],
                            ['system:nodes'])
        crt, key = ca.server(node['name'], dns=[node['name']],
                             ips=[node['address']])
        serving = [cdir.write(os.path.join('pki', who + '-serving' + ext), t)
                   for ext, t in (('.crt', crt), ('.key', key))]
        with open(files.file('containerd.toml'), 'w') as f:
            f.write(kubenode.containerd_config(files))
        kubenode.write_json(os.path.join(files.cni_conf, '10-pods.conflist'),
                            kubenode.cni_config(net))
        kubenode.write_json(files.file('kubelet.json'),
                            kubenode.kubelet_config(files, net, ca_path,
                                                    *serving))
        kubenode.write_json(files.file('kubeconfig'),
                            json.loads(open(kubeconfig).read()))
        kubenode.write_json(files.file('kube-proxy.json'),
                            kubenode.kube_proxy_config(
                                net, proxy, cluster_cidr, node['name']))
        nodenet.setup(net)
        kubenode.make_mount_namespace(files, [cdir.file('volume-mounts')])
        kubenode.make_cgroups(kubenode.cgroup_root(net))


def _wait_socket(path, proc_alive, timeout=30):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline or not proc_alive():
            raise RuntimeError('containerd did not open %s' % path)
        time.sleep(0.1)


def start(children, cdir, bin_dir):
    """Start the nodes (containerd, its pause image, kubelet, kube-proxy)
    and the scheduler."""
    info = cdir.read_json(NODES_FILE)
    for node in info['nodes']:
        net = _net(cdir, node)
        files = kubenode.NodeFiles(cdir.path, cdir.uuid, node['index'])
        containerd, kubelet, proxy = node_processes(node['index'])
        proc = children.spawn(cdir, containerd, kubenode.in_node(net, files, [
            'containerd', '--config', files.file('containerd.toml')]))
        _wait_socket(files.socket, lambda: proc.poll() is None)
        subprocess.run(['ctr', '--address', files.socket, '--namespace',
                        'k8s.io', 'images', 'import',
                        os.path.join(cdir.path, 'pause.tar')],
                       check=True, stdout=subprocess.DEVNULL, timeout=60)
        children.spawn(cdir, kubelet, kubenode.in_node(
            net, files, kubenode.kubelet_argv(
                bin_dir, files, net, node['name'], files.file('kubeconfig'),
                files.file('kubelet.json'))))
        children.spawn(cdir, proxy, kubenode.in_node(net, files, [
            os.path.join(bin_dir, 'kube-proxy'),
            '--config', files.file('kube-proxy.json')]))
    first = _net(cdir, info['nodes'][0])
    children.spawn(cdir, SCHEDULER, kubenode.in_node(
        first, kubenode.NodeFiles(cdir.path, cdir.uuid, 0), [
        os.path.join(bin_dir, 'kube-scheduler'),
        '--kubeconfig', cdir.file('pki', 'scheduler.kubeconfig'),
        '--authentication-kubeconfig', cdir.file('pki',
                                                 'scheduler.kubeconfig'),
        '--authorization-kubeconfig', cdir.file('pki',
                                                'scheduler.kubeconfig'),
        '--leader-elect=false', '--port', '0',
        '--bind-address', '127.0.0.1', '--profiling=false']))


def addresses(cdir):
    info = cdir.read_json(NODES_FILE) or {}
    return [n['address'] for n in info.get('nodes', [])]


def stop_order(cdir):
    """The nodes' processes in the order they stop: kubelets (no new pods),
    kube-proxies, the scheduler, then the containerds."""
    info = cdir.read_json(NODES_FILE) or {}
    names = [node_processes(n['index']) for n in info.get('nodes', [])]
    return [k for _, k, _ in names] + [p for _, _, p in names] + \
        [SCHEDULER] + [c for c, _, _ in names]


def teardown(cdir, timeout=10):
    """Stop the nodes' processes and remove their pods, mounts, cgroups,
    pod namespaces, links and namespaces.  Returns what went wrong."""
    info = cdir.read_json(NODES_FILE)
    if not info:
        return []
    problems = []
    found = {}
    for node in info['nodes']:
        files = kubenode.NodeFiles(cdir.path, cdir.uuid, node['index'])
        found[node['index']] = kubenode.sandbox_netns(files)
    problems += ['%s had to be killed' % n for n in
                 controlplane.stop(cdir, timeout, stop_order(cdir))]
    for node in info['nodes']:
        try:
            kubenode.teardown_node(
                _net(cdir, node),
                kubenode.NodeFiles(cdir.path, cdir.uuid, node['index']),
                found[node['index']])
        except Exception as e:
            problems.append('node %s: %s' % (node['name'], e))
    return problems


def cleanup(state_dir):
    """Tear down the real nodes of every cluster under ``state_dir``."""
    problems = []
    try:
        names = os.listdir(state_dir)
    except FileNotFoundError:
        return problems
    for name in names:
        cdir = controlplane.ClusterDir(state_dir, name)
        if os.path.exists(cdir.file(NODES_FILE)):
            problems += teardown(cdir, timeout=5)
    return problems


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] != 'cleanup':
        sys.exit('usage: python -m magnum_local_driver.kubelets cleanup '
                 '<state_dir>')
    for p in cleanup(argv[1]):
        print('kubelets cleanup: %s' % p, file=sys.stderr)


if __name__ == '__main__':
    main()
