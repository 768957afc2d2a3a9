"""How the hub reaches a server on the cluster (``server_access``).

- ``pod_ip``: the pod's own address.  For a hub that runs inside the cluster
  (as zero-to-jupyterhub deploys it) or on a network routed to the pods'.
- ``node_port``: a NodePort Service per server, reached on an address Magnum
  reports for the cluster's nodes (``node_addresses``).  For a hub outside the
  cluster - a VM on the nodes' Neutron network, or anywhere the nodes'
  addresses (floating IPs) and ports 30000-32767 can be reached; the nodes'
  security group must let the hub in, and should let no one else.
"""

POD_IP = "pod_ip"
NODE_PORT = "node_port"
CHOICES = (POD_IP, NODE_PORT)


def as_node_port(service):
    """KubeSpawner's per-server Service (ClusterIP) as a NodePort Service."""
    service.spec.type = "NodePort"
    return service


def node_port_url(service, node_addresses):
    """``http://node:nodePort`` of a created NodePort ``service``; ValueError
    naming what is missing."""
    if not node_addresses:
        raise ValueError("Magnum reports no node addresses for the cluster")
    ports = [p for p in (service.spec.ports or []) if p.node_port]
    if not ports:
        raise ValueError(f"service {service.metadata.name} has no node port")
    host = node_addresses[0]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{ports[0].node_port}"
