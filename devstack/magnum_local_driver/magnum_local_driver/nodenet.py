"""The network of a local cluster's nodes.

Each node is a network namespace ``mlc-<cluster uuid 8>-<n>`` joined to the
local cloud's own namespace by a veth pair, point to point:

* the local cloud's side of every node's link has one and the same address,
  ``gateway`` (the first address of ``node_network``, a /32): what the nodes
  (and their pods) reach the local cloud at - kube-apiserver, the hub, the
  registry;
* the node's side has the node's address (``node_addresses`` in Magnum), a
  /32 with a route to the gateway and a default route through it;
* the local cloud routes each node's pod network (a /24 of ``pod_network``)
  to the node: the hub reaches pods by their IP, and pods on two nodes reach
  each other through the local cloud (which forwards).

All of it lives in the local cloud's namespace and in the nodes' own:
deleting a node's namespace removes its link, its routes and its iptables
rules (kube-proxy's); ``teardown`` does that and removes the route.
"""

import ipaddress
import os
import subprocess

NETNS_DIR = '/run/netns'
MAX_NODES = 4  # per cluster: a cluster slot holds 4 node addresses


class NodeNet(object):
    """Addresses and names of node ``index`` of the cluster in ``slot``."""

    def __init__(self, cluster_uuid, slot, index, node_network, pod_network):
        if not 0 <= index < MAX_NODES:
            raise ValueError('a local cluster has at most %d nodes'
                             % MAX_NODES)
        net = ipaddress.ip_network(node_network)
        pods = ipaddress.ip_network(pod_network)
        n = slot * MAX_NODES + index
        self.gateway = str(net.network_address + 1)
        # node n's address: the 4th and following addresses, one each
        self.address = str(net.network_address + 4 + n)
        if ipaddress.ip_address(self.address) not in net:
            raise ValueError('node_network %s is too small for slot %d'
                             % (node_network, slot))
        subnets = list(pods.subnets(new_prefix=24)) if pods.prefixlen <= 24 \
            else []
        if n >= len(subnets):
            raise ValueError('pod_network %s is too small for slot %d'
                             % (pod_network, slot))
        self.pod_cidr = str(subnets[n])
        short = cluster_uuid.replace('-', '')[:8]
        self.netns = 'mlc-%s-%d' % (short, index)
        # interface names: at most 15 characters
        self.host_link = 'mlc%sh%d' % (short[:6], index)
        self.node_link = 'eth0'

    @property
    def netns_path(self):
        return os.path.join(NETNS_DIR, self.netns)


def cluster_pod_cidr(slot, pod_network):
    """The pods of all nodes of a slot: the /22 holding their four /24s."""
    pods = ipaddress.ip_network(pod_network)
    first = list(pods.subnets(new_prefix=24))[slot * MAX_NODES]
    return str(ipaddress.ip_network('%s/22' % first.network_address,
                                    strict=False))


def _ip(*args, netns=None, check=True):
    argv = ['ip'] + (['-n', netns] if netns else []) + list(args)
    proc = subprocess.run(argv, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    if check and proc.returncode:
        raise RuntimeError('%s: %s' % (' '.join(argv), proc.stderr.strip()))
    return proc


def _sysctl(name, value, netns=None):
    """A sysctl of the network namespace the caller (or ``netns``) is in."""
    argv = ['sysctl', '-q', '-w', '%s=%s' % (name, value)]
    if netns:
        argv = ['nsenter', '--net=' + os.path.join(NETNS_DIR, netns)] + argv
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)


def setup(node):
    """Make node's namespace, link, addresses and routes (idempotent)."""
    teardown(node)
    _ip('netns', 'add', node.netns)
    _ip('link', 'set', 'lo', 'up', netns=node.netns)
    _ip('link', 'add', node.host_link, 'type', 'veth', 'peer', 'name',
        node.node_link, 'netns', node.netns)
    _ip('addr', 'add', node.gateway + '/32', 'dev', node.host_link)
    _ip('link', 'set', node.host_link, 'up')
    _ip('addr', 'add', node.address + '/32', 'dev', node.node_link,
        netns=node.netns)
    _ip('link', 'set', node.node_link, 'up', netns=node.netns)
    _ip('route', 'add', node.gateway + '/32', 'dev', node.node_link,
        netns=node.netns)
    _ip('route', 'add', 'default', 'via', node.gateway, 'dev',
        node.node_link, netns=node.netns)
    _ip('route', 'add', node.address + '/32', 'dev', node.host_link)
    _ip('route', 'add', node.pod_cidr, 'via', node.address, 'dev',
        node.host_link)
    # The node forwards between its pods and its link (the CNI bridge
    # plugin would too); the local cloud forwards between two nodes.
    _sysctl('net.ipv4.ip_forward', 1, netns=node.netns)
    _sysctl('net.ipv4.ip_forward', 1)


def teardown(node):
    """Remove what setup made; what is already gone is not an error."""
    _ip('route', 'del', node.pod_cidr, check=False)
    _ip('link', 'del', node.host_link, check=False)  # and its peer, routes
    if os.path.exists(node.netns_path):
        _ip('netns', 'del', node.netns, check=False)
