"""Magnum's API as the spawner needs it: a cluster, its template, its CA, signing.

The calls go through the openstacksdk ``Connection`` made on the hub's one
keystoneauth session (its ``container_infrastructure_management`` proxy, a
keystoneauth adapter that finds Magnum in the catalog), as raw JSON: the
openstacksdk ``Cluster`` resource reads ``status_reason`` from a ``reason`` key
that Magnum never sends, and the message a user sees must name the reason.

Every function here blocks; callers run them with ``asyncio.to_thread``.
"""

from keystoneauth1 import exceptions as ks_exc

from ..common.errors import error_for_status, from_keystoneauth

SERVICE = "magnum"


def _proxy(cloud):
    """The ``container_infrastructure_management`` proxy of the cloud context's
    Connection (Magnum's ``container-infra`` catalog entry)."""
    return cloud.connection().container_infrastructure_management


def _detail(response):
    """Magnum's own explanation: ``{"errors": [{"title", "detail", ...}]}``."""
    try:
        body = response.json()
    except ValueError:
        return (response.text or "").strip()[:500] or f"HTTP {response.status_code}"
    errors = body.get("errors") if isinstance(body, dict) else None
    if errors and isinstance(errors[0], dict):
        first = errors[0]
        return str(first.get("detail") or first.get("title") or first)[:500]
    return str(body)[:500]


def _call(cloud, method, path, **kwargs):
    try:
        response = _proxy(cloud).request(path, method, raise_exc=False, **kwargs)
    except ks_exc.ClientException as e:
        raise from_keystoneauth(e, SERVICE) from None
    if response.status_code >= 400:
        raise error_for_status(
            response.status_code, _detail(response),
            request_id=response.headers.get("x-openstack-request-id"),
            service=SERVICE,
        )
    return response.json()


def get_cluster(cloud, ident):
    """The cluster ``ident`` (name or uuid) as Magnum shows it."""
    return _call(cloud, "GET", f"/clusters/{ident}")


def get_cluster_template(cloud, ident):
    return _call(cloud, "GET", f"/clustertemplates/{ident}")


def get_ca(cloud, cluster_uuid):
    """The cluster's CA certificate (PEM text)."""
    return _call(cloud, "GET", f"/certificates/{cluster_uuid}")["pem"]


def sign(cloud, cluster_uuid, csr_pem):
    """Have Magnum sign ``csr_pem`` with the cluster's CA; the certificate (PEM)."""
    body = {"cluster_uuid": cluster_uuid, "csr": csr_pem}
    return _call(cloud, "POST", "/certificates", json=body)["pem"]
