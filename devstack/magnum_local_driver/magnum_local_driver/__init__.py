"""A Magnum cluster driver for the local test cloud.

A cluster is a real Kubernetes control plane on 127.0.0.1 (etcd,
kube-apiserver trusting the cluster CA Magnum generated,
kube-controller-manager, kube-scheduler) with real nodes (containerd,
kubelet, kube-proxy) and a node agent standing in for Cinder CSI.  See
README.md.
"""
