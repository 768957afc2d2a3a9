"""MagnumSpawner: each single-user server is a pod on a Magnum Kubernetes cluster.

KubeSpawner does the Kubernetes work (pods, PVCs, the one hub-wide watch of
pods); this class adds what is Magnum's and what the package shares with
ZunSpawner:

- the cluster (``magnum_cluster``) is found through Magnum's API on the hub's
  one keystoneauth session, and the hub's Kubernetes credentials are a key made
  here and a certificate Magnum signs (:mod:`.cluster`);
- the same ``flavors``/``images``/options form and ``home_volume_size`` as
  ZunSpawner, mapped onto the pod (:mod:`.pods`).
"""

import asyncio
import datetime
import ssl
from functools import partial

from jupyterhub.spawner import SpawnException
from jupyterhub.utils import exponential_backoff
from kubernetes_asyncio.client.rest import ApiException
from kubernetes_asyncio.config import ConfigException
from kubespawner import KubeSpawner
from kubespawner.clients import shared_client
from traitlets import Bool, Enum, Float, List, Unicode, default

from ..common import answering
from ..common.admission import AdmissionMixin, NoTurn
from ..common.answering import AnsweringMixin
from ..common.deadline import own_deadline, timed_out, within
from ..common.errors import AuthenticationFailed, CloudConfigError, CloudError, spawn_error
from ..common.flavors import FlavorMixin
from ..common.home import HomeTraits
from ..common.page import SpawnPage
from . import names as kube_names
from . import access, claims, kubeclient, pods, rbac, stops
from . import progress as steps
from .cluster import (
    READY_STATES,
    ClusterLink,
    ClusterNotReady,
    Identity,
)
from .credentials import MASTERS, KubeconfigDir

#: The process's one link to its cluster and its kubeconfig files
#: (KubeSpawner loads one Kubernetes configuration per process).
_link = None
_files = None


def kubeconfig_files():
    """The process's private kubeconfig directory (see :mod:`.kubeclient`)."""
    global _files
    if _files is None:
        _files = KubeconfigDir()
        kubeclient.point_at(_files.kubeconfig)
    return _files


def reset_link():
    """Forget the cluster link, remove its files and the Kubernetes client's
    configuration read from them (tests)."""
    global _link, _files
    if _files is not None:
        _files.remove()
    _link = _files = None
    kubeclient.forget()


def _tls_failure(error):
    """Whether ``error`` says the cluster's API refused our TLS (or we its)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, ssl.SSLError):
            return True
        if isinstance(error, ApiException) and error.status == 401:
            return True
        if type(error).__name__ in ("ClientConnectorCertificateError", "ClientSSLError"):
            return True
        error = error.__cause__ or error.__context__
    return False


class MagnumSpawner(FlavorMixin, AdmissionMixin, AnsweringMixin, HomeTraits, SpawnPage,
                    KubeSpawner):
    """Spawn single-user servers as pods on a Magnum Kubernetes cluster."""

    #: the node's URL of a server reached through its NodePort Service, and the
    #: uid of the pod (KubeSpawner's ``pod_id``, set at start)
    state_fields = ({"node_url": "_node_url"}, {"pod_uid": "pod_id"})

    # The cloud settings (cloud, auth, region_name, interface, verify), image and
    # hub_id are the package's own (common.host.Host), as for ZunSpawner.

    magnum_cluster = Unicode(
        None,
        allow_none=True,
        config=True,
        help="""
        The Magnum cluster (name or uuid) that runs the servers, in the project
        of the hub's cloud credentials.  It must exist: the hub never creates or
        resizes it.  Its template must have ``coe`` ``kubernetes`` and TLS on.
        The hub's credentials must be allowed Magnum's ``certificate:create``
        and ``certificate:get`` (by default: the cluster's creator, or admin).

        One hub process talks to one cluster (KubeSpawner's clients share one
        Kubernetes configuration per process).  In a pod or not, the hub works
        on this cluster with the certificate Magnum signed for it
        (:attr:`kube_user`), never with a pod's service account; KubeSpawner's
        ``k8s_api_host``, ``k8s_api_ssl_ca_cert`` and ``k8s_api_verify_ssl`` are
        not used.
        """,
    )

    magnum_ready_states = List(
        Unicode(),
        default_value=list(READY_STATES),
        config=True,
        help="""
        Magnum cluster states in which servers are started.  In any other state
        (or when Magnum's health monitor reports ``UNHEALTHY``) the spawn page
        says that the course's cluster is not ready, with Magnum's state and
        ``status_reason``.  Add ``UPDATE_IN_PROGRESS`` to keep spawning while
        the cluster is being resized.
        """,
    )

    magnum_renew_days = Float(
        30.0,
        config=True,
        help="""
        Sign a new client certificate when the current one has fewer days left
        than this (Magnum signs for its ``[x509] term_of_validity``, 5 years by
        default).  A certificate the cluster refuses (its CA was rotated with
        ``openstack coe ca rotate``) is replaced at once.
        """,
    )

    kube_user = Unicode(
        config=True,
        help="""
        The Kubernetes user name (certificate CN) the hub works as on the
        cluster.  With :attr:`kube_least_privilege` it has no group and may only
        manage pods, claims and services in :attr:`namespace`; otherwise its
        group is ``system:masters`` (cluster-admin).  Default:
        ``magnum-spawner:<hub_id>``: two hubs on one cluster are two users, each
        with its own namespace.
        """,
    )

    @default("kube_user")
    def _default_kube_user(self):
        return f"magnum-spawner:{self.hub_id}"

    kube_least_privilege = Bool(
        True,
        config=True,
        help="""
        Work as :attr:`kube_user` with only the rights KubeSpawner needs in
        :attr:`namespace` (a Role and RoleBinding there).  A certificate in
        ``system:masters`` (CN ``<kube_user>-admin``) is signed by Magnum only to
        create the namespace, the Role and the RoleBinding, and its key is
        removed right after.  Off: the hub works as cluster-admin.
        """,
    )

    server_access = Enum(
        list(access.CHOICES),
        default_value=access.POD_IP,
        config=True,
        help="""
        How the hub reaches the servers: ``pod_ip``, the pod's own address (a
        hub inside the cluster, or on a network routed to the pods), or
        ``node_port``, a NodePort Service per server on the first of the node
        addresses Magnum reports (a hub outside the cluster that can reach the
        nodes: open ports 30000-32767 to the hub, and only to it, in the nodes'
        security group).
        """,
    )

    # -- home: its size and deletion as ZunSpawner's (common/home.py) -----------

    home_storage_class = Unicode(
        None,
        allow_none=True,
        config=True,
        help="""
        StorageClass of the home claims.  Default: the cluster's default class
        (on Magnum clusters, Cinder CSI: each claim is a Cinder volume).
        """,
    )

    home_mount_path = Unicode(
        "/home/jovyan",
        config=True,
        help="Where the home claim is mounted in the pod.",
    )

    # -- defaults that differ from KubeSpawner's ---------------------------------

    @default("pvc_name_template")
    def _default_pvc_name_template(self):
        # one home per user, as ZunSpawner's home-{username}
        return "home-{username}"

    def _expand_user_properties(self, template, slug_scheme=None):
        """KubeSpawner's expansion, with this package's collision-free
        ``{username}``, ``{servername}`` and ``{user_server}`` (see .names)."""
        if slug_scheme is None:
            # (a slug_scheme is given only to look up pre-7 KubeSpawner names)
            template = kube_names.fill(
                template, kube_names.fields(self.user.name, self.name or "")
            )
        return super()._expand_user_properties(template, slug_scheme)

    def _namespace_default(self):
        # the hub's own namespace, named after hub_id (KubeSpawner's default
        # outside a cluster is "default"): with least privilege, the only one
        # the hub may work in
        return kube_names.slug(self.hub_id, 63)

    @default("cmd")
    def _default_cmd(self):
        # as ZunSpawner (JupyterHub's Spawner): KubeSpawner's default is the
        # image's own command, which drops ``args`` and starts whatever the
        # image starts
        return ["jupyterhub-singleuser"]

    @default("storage_access_modes")
    def _default_storage_access_modes(self):
        return ["ReadWriteOnce"]

    def __init__(self, **kwargs):
        self._k8s_api = None
        self._node_url = None
        self.pod_id = None
        #: pods of stops that did not finish (see .stops); clear_state keeps them
        self._unfinished = []
        kubeconfig_files()
        try:
            super().__init__(**kwargs)
        except ConfigException:
            # KubeSpawner's load_config found no configuration (outside a pod,
            # before the first signing); the first start/poll/stop writes the
            # hub's kubeconfig and makes it the clients' (.kubeclient), in a
            # pod as well; the client is made on first use.
            pass

    # KubeSpawner sets ``self.api`` at the end of __init__; here it is made on
    # first use, once the kubeconfig exists.
    @property
    def api(self):
        if self._k8s_api is None:
            self._k8s_api = shared_client("CoreV1Api")
        return self._k8s_api

    @api.setter
    def api(self, value):
        self._k8s_api = value

    # -- the cluster --------------------------------------------------------------

    def cluster_link(self):
        """The process's :class:`ClusterLink` (made by the first spawner to ask)."""
        global _link
        if _link is None:
            if self.kube_least_privilege:
                namespace, user = self.namespace, self.kube_user

                async def grant(admin_kubeconfig):
                    await rbac.grant(admin_kubeconfig, namespace, user)

                extra = {"admin": Identity(f"{user}-admin", (MASTERS,)), "grant": grant}
                identity = Identity(user)
            else:
                extra = {}
                identity = Identity(self.kube_user, (MASTERS,))
            _link = ClusterLink(
                self.cloud_context, self.magnum_cluster,
                identity=identity, **extra,
                ready_states=self.magnum_ready_states,
                renew_before=datetime.timedelta(days=self.magnum_renew_days),
                kubeconfig_dir=kubeconfig_files(),
            )
        return _link

    def _not_ready(self, message, detail):
        return spawn_error(message, reason="cluster-not-ready", status_code=503,
                           log_message=detail)

    async def ensure_cluster(self, force=None, recheck=True):
        """Check the cluster, sign when due, and load the kubeconfig once.

        start() rechecks the cluster's state in Magnum; poll() and stop() only
        make sure the credentials are there (no Magnum call once they are).
        """
        if not self.magnum_cluster:
            raise self._not_ready(
                "The hub has no cluster to start servers on; tell your administrator.",
                "MagnumSpawner.magnum_cluster is not set",
            )
        link = self.cluster_link()
        if link.cluster_ident != self.magnum_cluster:
            raise self._not_ready(
                "The hub is set up for two clusters at once; tell your administrator.",
                f"this hub process uses cluster {link.cluster_ident}; "
                f"{self._log_name} asks for {self.magnum_cluster}: one process "
                "talks to one cluster",
            )
        try:
            info = await link.ensure(force=force, recheck=recheck)
        except ClusterNotReady as e:
            raise self._not_ready(str(e), e.detail) from None
        except (CloudConfigError, AuthenticationFailed) as e:
            raise self._not_ready(
                "The hub cannot log in to its cloud; tell your administrator.", str(e)
            ) from None
        except CloudError as e:
            raise self._not_ready(
                f"The course's cluster cannot be reached through Magnum ({e.detail}); "
                "tell your administrator.", str(e),
            ) from None
        if not kubeclient.in_use():
            # KubeSpawner's load_config (a later spawner's __init__) replaced it
            await kubeclient.use(link.files.kubeconfig)
        return info

    # -- user options: the shared flavors and images, onto the pod -----------------

    async def load_user_options(self):
        """KubeSpawner's hook for ``user_options``: the shared flavor choice."""
        choice = self._choice = await self.apply_flavor()
        home = await self.resolve(self.home_volume_size)
        pods.apply(self, choice, home_gib=home)
        # KubeSpawner makes a Service per server when this is set
        self.services_enabled = self.server_access == access.NODE_PORT

    def get_pvc_manifest(self):
        return claims.mark_manifest(self, super().get_pvc_manifest())

    async def get_pod_manifest(self):
        pod = await super().get_pod_manifest()
        # the chosen image; ``image`` stays the operator's (the form's default)
        chosen = getattr(self, "_choice", None)
        if chosen is not None and chosen.image:
            pod.spec.containers[0].image = chosen.image
        return pod

    # -- reaching the server ------------------------------------------------------

    def get_service_manifest(self, owner_reference, port):
        return access.as_node_port(super().get_service_manifest(owner_reference, port))

    def _get_pod_url(self, pod):
        if self.server_access == access.NODE_PORT and self._node_url:
            return self._node_url
        return super()._get_pod_url(pod)

    async def _reach(self, url):
        """The URL the hub uses: the pod's, or the node port's."""
        if self.server_access != access.NODE_PORT:
            return url
        service = await self.api.read_namespaced_service(self.pod_name, self.namespace)
        info = self.cluster_link().info
        try:
            self._node_url = access.node_port_url(service, info.node_addresses)
        except ValueError as e:
            await self.stop(now=True)
            raise self._not_ready(
                "The hub cannot reach servers on the course's cluster; tell your "
                "administrator.", f"server_access node_port: {e}",
            ) from None
        return self._node_url

    # -- the spawn page's progress -------------------------------------------------

    async def progress(self):
        """The start's own steps (the start queue's words, common/page.py) and
        the pod's events (KubeSpawner's), as plain steps (:mod:`.progress`)."""
        async for event in steps.page(self.page_steps(), self._pod_progress()):
            yield event

    async def _pod_progress(self):
        """KubeSpawner's progress(), once the hub's kubeconfig is the clients'.

        Its event reflector lists the pod's events with the client as it is when
        the reflector is made: made before the start has loaded the hub's
        kubeconfig (the spawn page opens while the first start signs its
        certificate), it lists nowhere and fails, and every later page would wait
        on that failed reflector: no step of the pod ever reached the page.
        """
        try:
            await self.ensure_cluster(recheck=False)
        except SpawnException:
            return  # the start fails with the same sentence, on the same page
        if steps.failed(self.event_reflector):
            await self._start_watching_events(replace=True)
        async for event in KubeSpawner.progress(self):
            yield event

    # -- life cycle -------------------------------------------------------------

    async def _start_once(self):
        if await self.resolve(self.home_volume_size):
            # the claim's size comes from the user's choice, which KubeSpawner
            # loads only in its own _start (after this)
            await self.load_user_options()
            # which claim is this user's (a rename keeps the id, not the name)
            await claims.own_home_claim(self)
        return await self._start_kube_pod()

    async def start(self):
        """The pod's start in this hub's start queue, until its server answers
        (common/admission.py, common/answering.py), ended by its own deadline
        with the phase named (common/deadline.py)."""
        deadline = own_deadline(self.start_timeout)
        self._phase = "starting"
        self.new_page()
        self._start_future = None  # KubeSpawner's progress() waits for this start's
        try:
            async with self.admitted(deadline):
                # a cut pod start is stopped by JupyterHub, as after any failure
                return await within(self._start_pod(deadline), deadline,
                                    self.start_timeout, lambda: self._phase)
        except (NoTurn, asyncio.CancelledError):  # cancelled: JupyterHub's start_timeout
            raise timed_out(self.start_timeout, self._phase) from None

    async def _wait_answer(self, url, deadline):
        async def alive():
            if await KubeSpawner.poll(self) is not None:
                raise ProcessLookupError("the pod stopped")

        self._phase = "waiting for the server to answer"
        self.log.info("%s: server at %s; waiting for it to answer", self._log_name, url)
        try:
            await answering.wait_for_answer(
                answering.answer_url(url, self.server.base_url if self.server else "/"),
                deadline=deadline, alive=alive, check_every=self.answer_check_interval,
                interval=self.answer_interval)
        except (TimeoutError, ProcessLookupError) as e:
            await self.stop(now=True)
            message = ("Your server stopped while starting." if isinstance(e, ProcessLookupError)
                       else f"Your server did not answer within {self.start_timeout} s of "
                       "the start (the hub was still waiting for the server to answer); "
                       "try again in a few minutes.")
            raise spawn_error(message, reason="timeout") from None

    async def _start_pod(self, deadline):
        self._phase = "reaching the course's cluster"
        await self.ensure_cluster()
        # a stop that did not finish: its pod goes before a new one starts
        self._phase = "removing the previous server"
        await self._finish_stops()
        self._phase = "starting the server's pod"
        try:
            url = await self._start_once()
        except Exception as e:
            if not _tls_failure(e):
                raise
            self.log.warning(
                "%s: the cluster refused the hub's TLS (%s); signing again", self._log_name, e
            )
            await self.ensure_cluster(force="the cluster's API refused the hub's TLS")
            url = await self._start_once()
        url = await self._reach(url)
        if self.wait_for_answer:
            await self._wait_answer(url, deadline)
        return url

    #: Seconds between two looks at the pod's events for an image that cannot
    #: be pulled (KubeSpawner's own progress() reads them every second).
    event_check_interval = 1.0

    async def _start_kube_pod(self):
        """KubeSpawner's start, ended at once when the pod's events say its image
        cannot be pulled (the kubelet would retry until ``start_timeout``): the
        pod is removed and the spawn page gets the event's sentence."""
        started = asyncio.ensure_future(super().start())
        try:
            while True:
                done, _ = await asyncio.wait([started], timeout=self.event_check_interval)
                if done:
                    return started.result()
                failed = next((e for e in self.events if steps.image_failure(e)), None)
                if failed is not None:
                    break
        except asyncio.CancelledError:  # start()'s deadline: the pod's start ends too
            started.cancel()
            await asyncio.gather(started, return_exceptions=True)
            raise
        started.cancel()
        await asyncio.gather(started, return_exceptions=True)
        await self.stop(now=True)
        raise spawn_error(
            steps.failure(failed), reason="image", status_code=500,
            log_message=f"{self._log_name}: {failed.get('reason')}: {failed.get('message')}",
        )

    async def poll(self):
        try:
            await self.ensure_cluster(recheck=False)
        except SpawnException as e:
            # never report a server stopped because Magnum blipped
            self.log.warning("Polling %s: %s; assuming it runs", self._log_name, e.log_message)
            return None
        return await super().poll()

    async def stop(self, now=False):
        # kept in the state until the pod is gone, whatever happens here
        this = stops.entry(self.namespace, self.pod_name, self.pod_id)
        self._unfinished = stops.with_entry(self._unfinished, this)
        try:
            await self.ensure_cluster(recheck=False)
            await super().stop(now=now)
        except BaseException as e:
            self.log.error(
                "%s: pod %s/%s is not deleted yet (%s): the server's state keeps it; "
                "it is deleted when the cluster answers again, at the latest when "
                "the server starts again or is deleted", self._log_name,
                self.namespace, this["pod"], getattr(e, "log_message", None) or repr(e),
            )
            self._retry_stops()
            raise
        if this in self._unfinished:  # (a retry may have finished it meanwhile)
            self._unfinished.remove(this)
        if self._unfinished:
            try:
                await self._finish_stops()
            except Exception as e:
                self.log.warning("%s: earlier stops still unfinished: %s", self._log_name, e)
                self._retry_stops()

    async def _finish_stops(self, only_known=False):
        """Delete the pods of unfinished stops (``only_known``: those whose uid
        is known, the only ones another start may not have replaced by now)."""
        for item in list(self._unfinished):
            if only_known and not item.get("uid"):
                continue
            await stops.delete(self.api, item, self.delete_grace_period)
            self.log.info("%s: pod %s/%s of an unfinished stop is gone",
                          self._log_name, item["namespace"], item["pod"])
            if item in self._unfinished:
                self._unfinished.remove(item)

    def _retry_stops(self):
        async def finish():
            await self.ensure_cluster(recheck=False)
            await self._finish_stops(only_known=True)

        if any(item.get("uid") for item in self._unfinished):
            stops.retry_later(finish, self._log_name)

    def get_state(self):
        state = super().get_state()
        if self._unfinished:
            state[stops.STATE_KEY] = list(self._unfinished)
        return state

    def load_state(self, state):
        super().load_state(state)
        self._unfinished = list(state.get(stops.STATE_KEY) or [])
        # the claim the hub's record names (evidence of whose it is)
        self._state_pvc_name = state.get("pvc_name")

    async def delete_forever(self):
        """The server's unfinished stops, and with ``delete_home_volume_on_delete``
        its home claim: the user's (the default server), or a named server's
        own (a template that names the server)."""
        if self._unfinished:
            await self.ensure_cluster(recheck=False)
            await self._finish_stops()
        if not self.delete_home_volume_on_delete:
            self.log.info("%s: home claim %s kept (delete_home_volume_on_delete off)",
                          self._log_name, self.pvc_name)
            return
        if self.name and not kube_names.names_server(self.pvc_name_template):
            self.log.info("%s: home claim %s is the user's, kept", self._log_name,
                          self.pvc_name)
            return
        await self.ensure_cluster(recheck=False)
        if not await claims.may_delete(self):
            return  # another user's (a new user with a renamed user's name)
        await exponential_backoff(
            partial(self._make_delete_pvc_request, self.pvc_name,
                    self.k8s_api_request_timeout),
            f"Could not delete the home claim {self.pvc_name}",
            timeout=self.k8s_api_request_retry_timeout,
        )
