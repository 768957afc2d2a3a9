"""Real nodes' plan: addresses that never collide, configurations that keep
each node to its own files, cgroups and network."""
import io
import json
import os
import tarfile

import pytest

import mld_testing  # noqa: F401  (sys.path)
from magnum_local_driver import images
from magnum_local_driver import kubelets
from magnum_local_driver import kubenode
from magnum_local_driver import nodenet

UUID_A = '0a1b2c3d-0000-4000-8000-000000000001'
UUID_B = '9f8e7d6c-0000-4000-8000-000000000002'
NODES, PODS = '10.250.0.0/16', '10.244.0.0/16'


def test_nodes_of_all_clusters_have_distinct_addresses_pods_and_names():
    seen = {'address': set(), 'pod_cidr': set(), 'netns': set(),
            'host_link': set()}
    for slot, uuid in ((0, UUID_A), (1, UUID_B), (31, UUID_A[::-1])):
        for i in range(nodenet.MAX_NODES):
            net = nodenet.NodeNet(uuid, slot, i, NODES, PODS)
            assert net.gateway == '10.250.0.1'
            assert len(net.host_link) <= 15  # IFNAMSIZ
            for key, values in seen.items():
                value = getattr(net, key)
                assert value not in values, (key, value)
                values.add(value)
    assert '10.250.0.1' not in seen['address']


def test_the_cluster_pod_range_holds_its_nodes_pods():
    import ipaddress
    cidr = ipaddress.ip_network(nodenet.cluster_pod_cidr(3, PODS))
    for i in range(nodenet.MAX_NODES):
        pods = ipaddress.ip_network(
            nodenet.NodeNet(UUID_A, 3, i, NODES, PODS).pod_cidr)
        assert pods.subnet_of(cidr)
    other = ipaddress.ip_network(
        nodenet.NodeNet(UUID_A, 4, 0, NODES, PODS).pod_cidr)
    assert not other.subnet_of(cidr)


def test_too_many_nodes_or_clusters_is_a_clear_error():
    with pytest.raises(ValueError, match='at most'):
        nodenet.NodeNet(UUID_A, 0, nodenet.MAX_NODES, NODES, PODS)
    with pytest.raises(ValueError, match='too small'):
        nodenet.NodeNet(UUID_A, 70, 0, NODES, PODS)


def test_plan_names_nodes_after_the_cluster():
    plan = kubelets.plan(UUID_A, 0, 2, NODES, PODS, 'course')
    assert [n['name'] for n in plan] == ['course-node-0', 'course-node-1']
    assert plan[0]['address'] != plan[1]['address']


def test_each_node_keeps_to_its_own_files_cgroups_and_sockets(tmp_path):
    configs = []
    for i in range(2):
        net = nodenet.NodeNet(UUID_A, 0, i, NODES, PODS)
        files = kubenode.NodeFiles(str(tmp_path), UUID_A, i)
        assert len(files.socket) < 100  # unix socket path limit (108)
        kubelet = kubenode.kubelet_config(files, net, 'ca', 'crt', 'key')
        assert kubelet['cgroupDriver'] == 'cgroupfs'
        assert kubelet['failSwapOn'] is False
        containerd = kubenode.containerd_config(files)
        configs.append((kubelet['cgroupRoot'], files.socket,
                        files.containerd_root, kubelet['volumePluginDir'],
                        kubenode.cni_config(net)['name']))
        assert json.dumps(files.socket) in containerd
        assert json.dumps(files.cni_conf) in containerd
        proxy = kubenode.kube_proxy_config(net, 'kc', '10.244.0.0/22', 'n')
        # the machine-wide conntrack table is left alone
        assert proxy['conntrack']['maxPerCore'] == 0
        assert proxy['nodePortAddresses'] == [net.address + '/32']
    for a, b in zip(*configs):
        assert a != b


def test_kubelet_runs_in_the_node_namespaces_without_a_new_sys(tmp_path):
    net = nodenet.NodeNet(UUID_A, 0, 0, NODES, PODS)
    files = kubenode.NodeFiles(str(tmp_path), UUID_A, 0)
    argv = kubenode.in_node(net, files, ['kubelet'])
    assert argv[:3] == ['nsenter', '--net=/run/netns/' + net.netns,
                        '--mount=' + files.run + '/mnt']
    assert argv[3:] == ['kubelet']

    assert kubenode.KUBELET_SYSCTLS['kernel/panic_on_oops'] == '1'


def test_the_pause_image_archive_is_one_layer_with_its_command(tmp_path):
    path = images.pause_archive(str(tmp_path / 'pause.tar'))
    with tarfile.open(path) as t:
        manifest = json.load(t.extractfile('manifest.json'))[0]
        assert manifest['RepoTags'] == ['local/pause:3.2']
        config = json.load(t.extractfile(manifest['Config']))
        layer = tarfile.open(fileobj=io.BytesIO(
            t.extractfile(manifest['Layers'][0]).read()))
    assert config['config']['Cmd'][0] == '/bin/sleep'
    assert {'bin/busybox', 'bin/sleep'} <= set(layer.getnames())
    assert not os.path.exists(path + '.tmp')


def test_stop_order_kubelets_first_containerd_last(tmp_path):
    from magnum_local_driver import controlplane
    cdir = controlplane.ClusterDir(str(tmp_path), UUID_A)
    cdir.make()
    cdir.write(kubelets.NODES_FILE, json.dumps({'nodes': [
        {'index': 0}, {'index': 1}]}))
    order = kubelets.stop_order(cdir)
    assert order[:2] == ['kubelet-0', 'kubelet-1']
    assert order[-2:] == ['containerd-0', 'containerd-1']
    assert order.index('kube-scheduler') < order.index('containerd-0')
