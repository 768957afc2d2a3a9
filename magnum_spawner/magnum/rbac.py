"""Least privilege on the cluster: what the hub's working identity may do.

Magnum signs whatever subject it is asked for, ``O=system:masters`` included
(cluster-admin).  The hub uses such a certificate only to make its namespace
and a Role with a RoleBinding for its own working identity (a CN without
groups), then forgets it: a leaked working key reaches one namespace's pods,
claims, services and events, not the cluster.
"""

from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException
from kubernetes_asyncio.config import kube_config

ROLE = "magnum-spawner"
#: What KubeSpawner does in the namespace: create and delete pods, home claims
#: and (``server_access = "node_port"``) services, and watch pods and events.
RULES = [
    {"apiGroups": [""], "resources": ["pods", "persistentvolumeclaims", "services"],
     "verbs": ["get", "list", "watch", "create", "delete"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list", "watch"]},
    # to record the owner's id on a claim made before ids were (claims.py)
    {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["patch"]},
]


def role_manifest(namespace):
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": ROLE, "namespace": namespace},
        "rules": RULES,
    }


def binding_manifest(namespace, user):
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": ROLE, "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ROLE},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }


async def _create_or_replace(create, replace, namespace, body):
    try:
        await create(namespace, body)
    except ApiException as e:
        if e.status != 409:
            raise
        await replace(body["metadata"]["name"], namespace, body)


async def grant(admin_kubeconfig, namespace, user):
    """As the admin of ``admin_kubeconfig``: make ``namespace`` and let ``user``
    do there what the hub does (idempotent: run at every signing)."""
    config = client.Configuration()
    await kube_config.load_kube_config(
        config_file=admin_kubeconfig, client_configuration=config
    )
    async with client.ApiClient(config) as api:
        core = client.CoreV1Api(api)
        try:
            await core.create_namespace({"metadata": {"name": namespace}})
        except ApiException as e:
            if e.status != 409:
                raise
        rbac = client.RbacAuthorizationV1Api(api)
        await _create_or_replace(
            rbac.create_namespaced_role, rbac.replace_namespaced_role,
            namespace, role_manifest(namespace),
        )
        await _create_or_replace(
            rbac.create_namespaced_role_binding, rbac.replace_namespaced_role_binding,
            namespace, binding_manifest(namespace, user),
        )
