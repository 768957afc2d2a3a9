"""The hub's one Magnum cluster: its state, and the credentials to use it.

:class:`ClusterLink` is made once per hub process (KubeSpawner's clients share
one Kubernetes configuration per process).  It reads the cluster and its
template from Magnum, fetches the cluster's CA, has Magnum sign a CSR for the
hub's own key, writes a kubeconfig (see :mod:`.credentials`) and makes it the
Kubernetes clients' configuration (see :mod:`.kubeclient`).  It signs again when the certificate nears its end, and re-fetches the CA and
signs again when the API's TLS fails (the cluster's CA was rotated).
"""

import asyncio
import datetime
import logging
from dataclasses import dataclass

from . import api, credentials, kubeclient

log = logging.getLogger(__name__)

#: The states in which a cluster's Kubernetes API is there to use.
READY_STATES = ("CREATE_COMPLETE", "UPDATE_COMPLETE")


class ClusterNotReady(Exception):
    """The cluster cannot take servers now; ``str()`` is the user's message."""

    def __init__(self, message, *, detail=""):
        self.detail = detail
        super().__init__(message)


@dataclass(frozen=True)
class ClusterInfo:
    uuid: str
    name: str
    status: str
    #: the Kubernetes API's URL (``https://host:port``)
    server: str
    #: where NodePort services are reached
    node_addresses: tuple
    template_id: str


def _reason(cluster):
    reason = (cluster.get("status_reason") or "").strip()
    return reason[:300] if reason else "no reason given"


def check_cluster(cluster, ready_states=READY_STATES):
    """:class:`ClusterInfo` for a usable cluster, else :class:`ClusterNotReady`.

    Usable: a state in ``ready_states``, not ``UNHEALTHY`` (Magnum reports
    ``UNKNOWN`` or nothing when no health monitor runs: that is accepted), and an
    API address.
    """
    name = cluster.get("name") or cluster.get("uuid")
    status = cluster.get("status") or "UNKNOWN"
    if status not in ready_states:
        raise ClusterNotReady(
            f"The course's cluster is not ready: Magnum reports {status} "
            f"({_reason(cluster)}). Try again later or tell your administrator.",
            detail=f"cluster {name} is {status}: {cluster.get('status_reason')!r}",
        )
    health = cluster.get("health_status")
    if health == "UNHEALTHY":
        why = cluster.get("health_status_reason") or {}
        shown = ", ".join(f"{k}: {v}" for k, v in sorted(why.items()))[:300]
        raise ClusterNotReady(
            "The course's cluster is not ready: Magnum reports it UNHEALTHY"
            f"{f' ({shown})' if shown else ''}. Tell your administrator.",
            detail=f"cluster {name} is {status} but UNHEALTHY: {why!r}",
        )
    address = cluster.get("api_address")
    if not address:
        raise ClusterNotReady(
            f"The course's cluster is not ready: Magnum reports {status} but no "
            "Kubernetes API address yet. Tell your administrator.",
            detail=f"cluster {name} has no api_address",
        )
    return ClusterInfo(
        uuid=cluster["uuid"],
        name=name,
        status=status,
        server=api_server(address),
        node_addresses=tuple(cluster.get("node_addresses") or ()),
        template_id=cluster.get("cluster_template_id"),
    )


def api_server(address):
    """Magnum's ``api_address`` as a URL: drivers give ``https://host:port`` or a
    bare address (then Kubernetes' secure port)."""
    if "://" in address:
        return address.rstrip("/")
    host = f"[{address}]" if ":" in address and not address.startswith("[") else address
    return f"https://{host}:6443"


def check_template(template):
    """Raise ClusterNotReady unless the template makes TLS Kubernetes clusters."""
    coe = template.get("coe")
    name = template.get("name") or template.get("uuid")
    if coe != "kubernetes":
        raise ClusterNotReady(
            "The course's cluster is not a Kubernetes cluster; tell your administrator.",
            detail=f"cluster template {name} has coe {coe!r}; MagnumSpawner needs "
            "'kubernetes'",
        )
    if template.get("tls_disabled"):
        raise ClusterNotReady(
            "The course's cluster is set up without TLS; tell your administrator.",
            detail=f"cluster template {name} has tls_disabled: its Kubernetes API "
            "takes no client certificates and would carry the servers' tokens in "
            "clear; MagnumSpawner refuses it",
        )


@dataclass(frozen=True)
class Identity:
    """Who the hub is to Kubernetes: CN is the user, O the groups."""

    common_name: str
    organizations: tuple = ()


class ClusterLink:
    """The hub's link to its Magnum cluster; one per process (see module doc)."""

    def __init__(self, cloud_context, cluster, *, identity, admin=None, grant=None,
                 ready_states=READY_STATES, renew_before=datetime.timedelta(days=30),
                 kubeconfig_dir=None):
        """``identity`` is who the hub works as.  With ``admin`` (an identity in
        ``system:masters``) and ``grant`` (``async grant(admin_kubeconfig)``),
        every signing also signs an admin certificate, runs ``grant`` with it
        (see :mod:`.rbac`) and removes it."""
        self._cloud_context = cloud_context
        self.cluster_ident = cluster
        self.identity = identity
        self.admin = admin
        self.grant = grant
        self.ready_states = tuple(ready_states)
        self.renew_before = renew_before
        self.files = kubeconfig_dir or credentials.KubeconfigDir()
        self.info = None
        self.cert = None
        #: the API's URL the files were written for
        self.server = None
        self.signed = 0
        self._lock = None

    @property
    def ready(self):
        """Whether the kubeconfig is in place."""
        return self.cert is not None

    async def _to_thread(self, fn, *args):
        return await asyncio.to_thread(fn, self._cloud_context(), *args)

    async def check(self):
        """Read the cluster from Magnum; its :class:`ClusterInfo` or ClusterNotReady."""
        cluster = await self._to_thread(api.get_cluster, self.cluster_ident)
        self.info = check_cluster(cluster, self.ready_states)
        return self.info

    def _due(self):
        if self.cert is None:
            return "no certificate yet"
        if self.server != self.info.server:
            return f"the API moved to {self.info.server}"
        left = credentials.remaining(self.cert)
        if left < self.renew_before:
            return f"the certificate expires in {left}"
        return None

    async def ensure(self, force=None, recheck=True):
        """Check the cluster, and sign (again) when needed; the :class:`ClusterInfo`.

        ``force`` (a reason) signs again whatever the certificate's age: after a
        TLS failure, say.  Without ``recheck``, a link that has a certificate
        with time left asks Magnum nothing (poll() runs for every server, every
        interval).  Concurrent callers wait for one signing.
        """
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if not (recheck or force) and self.ready and self._due() is None:
                return self.info
            info = await self.check()
            why = force or self._due()
            if why:
                log.info("Signing a client certificate for cluster %s: %s", info.name, why)
                await self._sign(info)
            return info

    async def _sign(self, info):
        template = await self._to_thread(api.get_cluster_template, info.template_id)
        check_template(template)
        ca_pem = await self._to_thread(api.get_ca, info.uuid)
        if self.admin is not None and self.grant is not None:
            cert_pem, key = await self._signed(info, ca_pem, self.admin)
            path = self.files.write(
                server=info.server, ca_pem=ca_pem, cert_pem=cert_pem,
                key_text=credentials.key_pem(key), cluster_name=info.name, role="admin",
            )
            try:
                await self.grant(path)
            except Exception as e:
                raise ClusterNotReady(
                    "The hub could not set itself up on the course's cluster; "
                    "tell your administrator.",
                    detail=f"granting {self.identity.common_name} its role on cluster "
                    f"{info.name} as {self.admin.common_name}: {e}",
                ) from None
            finally:
                self.files.discard("admin")
        cert_pem, key = await self._signed(info, ca_pem, self.identity)
        cert = credentials.load_cert(cert_pem)
        path = self.files.write(
            server=info.server, ca_pem=ca_pem, cert_pem=cert_pem,
            key_text=credentials.key_pem(key), cluster_name=info.name,
        )
        self.cert, self.server = cert, info.server
        self.signed += 1
        await kubeclient.use(path)
        log.info(
            "Kubernetes credentials for cluster %s (%s) as %s, valid until %s",
            info.name, info.server, cert.subject.rfc4514_string(),
            credentials.expires_at(cert).isoformat(),
        )

    async def _signed(self, info, ca_pem, identity):
        """A new key and Magnum's certificate for it, checked against the CA."""
        key = await asyncio.to_thread(credentials.new_key)
        csr = credentials.make_csr(key, identity.common_name, identity.organizations)
        cert_pem = await self._to_thread(api.sign, info.uuid, csr)
        try:
            credentials.check_signed(cert_pem, ca_pem, key, identity.common_name)
        except ValueError as e:
            raise ClusterNotReady(
                "The hub could not get credentials for the course's cluster; "
                "tell your administrator.",
                detail=f"Magnum's certificate for cluster {info.name}: {e}",
            ) from None
        return cert_pem, key
