"""Options of the ``[local_cluster]`` group (magnum.conf), registered on import."""

from oslo_config import cfg

GROUP = 'local_cluster'

OPTS = [
    cfg.StrOpt('state_dir', default='/var/lib/magnum-local',
               help='Directory with one sub-directory per cluster (ports, '
                    'certificates, etcd data, logs, pods) and the shared '
                    'port, pod address and volume image tables.'),
    cfg.StrOpt('kube_bin_dir', default='/usr/local/bin',
               help='Directory holding kube-apiserver and '
                    'kube-controller-manager, and for real nodes kubelet, '
                    'kube-proxy and kube-scheduler (devstack/magnum/'
                    'build-kube).'),
    cfg.StrOpt('etcd', default='/usr/bin/etcd',
               help='The etcd server binary.'),
    cfg.PortOpt('port_base', default=16443,
                help='First port of the per-cluster port blocks: cluster '
                     'slot N uses port_base + 4N (kube-apiserver), +1 (etcd '
                     'client), +2 (etcd peer), +3 (kube-controller-manager).'),
    cfg.IntOpt('max_clusters', default=32,
               help='Number of port blocks, i.e. clusters at once.'),
    cfg.StrOpt('pod_address_base', default='127.20.0.0/16',
               help='Loopback network from which each pod gets its own IP.'),
    cfg.ListOpt('images', default=[],
                help='Image name to runtime directory map for pods, as a '
                     'comma list of "image:runtime_dir" (as the Zun '
                     'process driver\'s [local_driver] images). Other '
                     'images run on the host\'s own programs.'),
    cfg.StrOpt('cgroup_parent', default='magnum-local',
               help='Parent group of the pods\' containers in each cgroup '
                    'v1 hierarchy.'),
    cfg.StrOpt('node_runtime', default='containerd',
               choices=[('containerd', 'real nodes: containerd, kubelet, '
                         'kube-proxy per node, kube-scheduler per cluster '
                         '(kubelets.py)'),
                        ('standin', 'one node agent runs pods as processes '
                         '(node.py)')],
               help='What runs a cluster\'s pods.'),
    cfg.StrOpt('node_network', default='10.250.0.0/16',
               help='With real nodes: the nodes\' addresses (one per node) '
                    'and, its first address, the local cloud as the nodes '
                    'reach it (the API server, the hub, the registry).'),
    cfg.StrOpt('pod_network', default='10.244.0.0/16',
               help='With real nodes: one /24 of pod IPs per node, routed '
                    'from the local cloud.'),
    cfg.ListOpt('registries', default=[],
                help='With real nodes: registries on the local cloud\'s '
                     'loopback ("127.0.0.1:PORT") that images are pulled '
                     'from; their ports are carried to the same address '
                     'inside each node (forward.py).'),
    cfg.IntOpt('start_timeout', default=120,
               help='Seconds a cluster may take from create to an API that '
                    'answers healthz before it is CREATE_FAILED.'),
]


def register_opts(conf):
    conf.register_opts(OPTS, group=GROUP)


def list_opts():
    return [(GROUP, OPTS)]


register_opts(cfg.CONF)
