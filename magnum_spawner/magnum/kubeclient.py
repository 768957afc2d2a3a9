"""The Kubernetes client's configuration: the hub's kubeconfig, never another.

KubeSpawner's shared clients (``kubespawner.clients.shared_client``: every
spawner's ``CoreV1Api``, the pod and event reflectors) copy the client
library's default ``Configuration`` when they are made, and KubeSpawner's
``load_config`` (called by every ``KubeSpawner.__init__``, cached per process)
fills that default from the pod's service account when the hub runs in a pod,
else from the default kubeconfig.  In a pod of another cluster that sends the
servers there; in a pod of the same cluster it works with the service
account's rights, not ``kube_least_privilege``.

MagnumSpawner's only configuration is the kubeconfig made from Magnum's CA and
the certificate Magnum signed (:mod:`.credentials`): :func:`use` loads it as the
default and gives it to every shared client made before, whatever
``load_config`` had found; :func:`in_use` says whether something replaced it
since.
"""

import os

from kubernetes_asyncio.client import Configuration, rest
from kubernetes_asyncio.config import kube_config
from kubespawner import clients

#: the default Configuration as :func:`use` set it
_ours = None


def point_at(path):
    """Make ``path`` the default kubeconfig, so that KubeSpawner's ``load_config``
    outside a pod reads no other (``~/.kube/config``, say).

    kubernetes_asyncio reads ``KUBECONFIG`` once, at import: the module default is
    set as well as the environment.
    """
    os.environ["KUBECONFIG"] = path
    kube_config.KUBE_CONFIG_DEFAULT_LOCATION = path


def in_use():
    """Whether the default configuration is still the one :func:`use` set."""
    return _ours is not None and Configuration.get_default() is _ours


async def use(kubeconfig):
    """Load ``kubeconfig`` as the default configuration, and give it (with new
    connections: the CA, certificate and key are read when a pool is made) to
    every shared client."""
    global _ours
    config = Configuration()
    await kube_config.load_kube_config(config_file=kubeconfig, client_configuration=config)
    Configuration.set_default(config)
    _ours = Configuration.get_default()
    for client in list(clients._client_cache.values()):
        api_client = client.api_client
        old = api_client.rest_client
        api_client.configuration = Configuration.get_default_copy()
        api_client.rest_client = rest.RESTClientObject(api_client.configuration)
        await old.close()


def forget():
    """Drop the default configuration and KubeSpawner's cached load (tests)."""
    global _ours
    _ours = None
    Configuration.set_default(None)
    clients.load_config.cache_clear()
