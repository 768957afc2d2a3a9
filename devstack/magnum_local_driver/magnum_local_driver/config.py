"""Options of the ``[local_cluster]`` group (magnum.conf), registered on import."""

from oslo_config import cfg

GROUP = 'local_cluster'

OPTS = [
    cfg.StrOpt('state_dir', default='/var/lib/magnum-local',
               help='Directory with one sub-directory per cluster (ports, '
                    'certificates, etcd data, logs, nodes) and the shared '
                    'port table and volume images.'),
    cfg.StrOpt('kube_bin_dir', default='/usr/local/bin',
               help='Directory holding kube-apiserver, '
                    'kube-controller-manager, kube-scheduler, kubelet '
                    'and kube-proxy (devstack/magnum/build-kube --node).'),
    cfg.StrOpt('etcd', default='/usr/bin/etcd',
               help='The etcd server binary.'),
    cfg.PortOpt('port_base', default=16443,
                help='First port of the per-cluster port blocks: cluster '
                     'slot N uses port_base + 4N (kube-apiserver), +1 (etcd '
                     'client), +2 (etcd peer), +3 (kube-controller-manager).'),
    cfg.IntOpt('max_clusters', default=32,
               help='Number of port blocks, i.e. clusters at once.'),
    cfg.StrOpt('node_network', default='10.250.0.0/16',
               help='The nodes\' addresses (one per node) '
                    'and, its first address, the local cloud as the nodes '
                    'reach it (the API server, the hub, the registry).'),
    cfg.StrOpt('pod_network', default='10.244.0.0/16',
               help='One /24 of pod IPs per node, routed '
                    'from the local cloud.'),
    cfg.ListOpt('registries', default=[],
                help='Registries on the local cloud\'s '
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
