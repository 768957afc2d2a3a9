"""What every part of the Zun path builds on: its settings, the server's
container (name, labels, the ids in the state) and the hub's Zun client.

The settings every spawner shares (credentials, ``hub_id``, ``image``) are in
:class:`~magnum_spawner.common.host.Host`; flavors, home volumes and
reachability bring their own.
"""

from traitlets import (
    Bool,
    Callable,
    Dict,
    Float,
    Integer,
    List,
    TraitError,
    Unicode,
    Union,
    default,
    validate,
)

from ..common import names
from ..common.catalog import check_cpu, check_memory_mib, memory_mib
from ..common.host import Host
from . import objects
from .client import DEFAULT_API_VERSION, ZunClient


class ZunHost(Host):
    zun_api_version = Unicode(
        DEFAULT_API_VERSION,
        config=True,
        help="""
        Zun API microversion to request (sent as ``OpenStack-API-Version:
        container X.Y``).  The server's range is read on first use: a server whose
        maximum is lower is used at its maximum when that still has every feature
        the spawner needs (1.28), and refused with a clear message otherwise.
        """,
    )

    # -- what runs ------------------------------------------------------------

    name_template = Unicode(
        "jupyter-{user_server}",
        config=True,
        help="""
        Template of the container name.  Fields: ``{username}``, ``{servername}``
        (each made safe for Zun), ``{user_server}`` (the two joined so that two
        different user/server pairs never give one name) and ``{hub_id}``.  The
        result must match ``^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`` and be at most 63
        characters.
        """,
    )

    labels = Union(
        [Dict(), Callable()],
        default_value={},
        config=True,
        help="""
        Extra labels for every container (or a callable returning them).  The
        ``hub.jupyter.org/*`` labels that identify the hub, user and server are
        always added and cannot be overridden.
        """,
    )

    network = Unicode(
        None,
        allow_none=True,
        config=True,
        help="""
        Neutron network (uuid or name) to attach containers to, sent as ``nets``.
        The hub connects to the container's address on this network, so it must
        be reachable from the hub.  Default: Zun's choice, and the first IPv4
        address the container gets.
        """,
    )

    security_groups = List(
        Unicode(), config=True,
        help="Security groups (names or uuids) for the containers' ports.",
    )

    availability_zone = Unicode(
        None, allow_none=True, config=True,
        help="Availability zone to run containers in (default: Zun's).",
    )

    hints = Dict(
        config=True,
        help="Scheduler hints passed to Zun as ``hints``.",
    )

    restart_policy = Unicode(
        "no",
        config=True,
        help="""
        Zun restart policy: ``no`` (default: a crashed server shows as stopped
        in the hub, which lets the user start it again), ``on-failure[:N]``,
        ``always`` or ``unless-stopped``.
        """,
    )

    workdir = Unicode(
        None,
        allow_none=True,
        config=True,
        help="""
        Working directory of the server process inside the container (Zun
        ``workdir``).  Default: the image's own.
        """,
    )

    secret_environment_names = List(
        Unicode(),
        default_value=list(objects.SECRET_NAME_PATTERNS),
        config=True,
        help="""
        Environment variables (shell-style patterns, matched case-insensitively)
        whose values are secrets.  The default matches ``*TOKEN*``, ``*SECRET*``,
        ``*PASSWORD*`` and the like.  Zun shows a container's ``environment`` to
        every member of the cloud project, so these are passed as files instead
        (Zun's ``bind`` mounts, microversion 1.23+) and read into the server's
        environment by a small ``/bin/sh`` launcher before it runs :attr:`cmd`.
        The image needs ``/bin/sh`` and ``cat``.

        Setting this replaces the default patterns.  JupyterHub's own token
        variables (``JUPYTERHUB_API_TOKEN``, ``JPY_API_TOKEN``, and any variable
        holding the server's API token) are secret whatever this list says.
        Example: ``c.ZunSpawner.secret_environment_names = ["*TOKEN*", "S3_*"]``.
        """,
    )

    secrets_dir = Unicode(
        objects.SECRETS_DIR,
        config=True,
        help="""
        Directory inside the container where the secret variables' files appear
        (one file per variable, named after it).  See
        :attr:`secret_environment_names`.
        """,
    )

    unknown_grace_period = Integer(
        300,
        config=True,
        help="""
        Seconds a container may stay in Zun's ``Unknown`` status before poll()
        reports the server as stopped.  Zun's Docker driver reports ``Unknown``
        when Docker gives no state it knows for the container; a short hiccup
        must not stop a user's server, a container that stays so must not leave
        the user unable to start again.  A lost compute host is not ``Unknown``
        on Zun 18: its containers keep their last status (operator-guide.md §10).
        """,
    )

    delete_timeout = Integer(
        120,
        config=True,
        help="""
        Seconds stop() waits for Zun to delete a container.  A container that is
        not gone by then (Zun answering errors, or refusing while the container
        is Creating or Unknown) is not forgotten: it stays in the server's state
        and the hub keeps deleting it in the background, with backoff, and
        before the server's next start.
        """,
    )

    delete_stopped_containers = Bool(
        True,
        config=True,
        help="""
        When poll() finds that a server's container has ended (Stopped, Error,
        Dead, or Unknown beyond :attr:`unknown_grace_period`), delete the
        container before reporting the exit status, like KubeSpawner's
        ``delete_stopped_pods``.  JupyterHub calls stop() only for servers that
        poll() reports running, so without this an ended container stays in Zun
        with the home volume still attached.  Turn off only to inspect crashed
        containers; the next start of the server removes them then.
        """,
    )

    use_hub_poller = Bool(
        True,
        config=True,
        help="""
        Answer poll() from one hub-wide loop (frequent lists of the containers
        that need action, a periodic list of all) instead of one Zun request per
        server per poll.
        """,
    )

    hub_poll_interval = Float(
        15.0,
        config=True,
        help="""
        Seconds between two lists of the containers that need action (Stopped,
        Error, Dead, Deleted, Unknown) in the hub-wide poll loop.  Grows by itself
        when one list takes more than a quarter of it.  See the README's
        "Detection delay" for what it buys.
        """,
    )

    hub_full_poll_interval = Float(
        60.0,
        config=True,
        help="""
        Seconds between two lists of all the hub's containers, which notice
        containers that vanished (absent from two lists in a row = gone).  Each
        costs Zun about 1.15 ms per container; it grows by itself when one list
        takes more than a quarter of it.
        """,
    )

    hub_gc_freeze = Bool(
        True,
        config=True,
        help="""
        At the hub's first start and when the hub-wide poll loop starts (its
        first poll; JupyterHub has loaded every user and server by then), move
        every object that exists into the garbage collector's permanent
        generation (``gc.freeze()``).  A full collection then looks only at what
        is newer; without it, one full collection of a hub holding thousands of
        servers stalls every request for 0.4-2 s on a small machine
        (``benchmarks/poller_at_scale.py``), and one early in a burst of 200
        starts for ~250 ms of CPU (``benchmarks/spawn_burst_gc.py``).  The cost:
        a reference cycle among those start-up objects that becomes garbage
        later is never collected (until the hub restarts).
        """,
    )

    cleanup_orphans = Bool(
        False,
        config=True,
        help="""
        Delete containers that carry this hub's labels (``hub_id``) but belong to
        no server in the hub's database, once they have been orphans for
        :attr:`orphan_grace_period` seconds.  Checked after each full list of the
        hub-wide poll loop (needs :attr:`use_hub_poller`).  Containers only: home
        volumes are never deleted this way, and other hubs' containers (another
        ``hub_id``) are never touched.  Off by default: turn it on once each hub
        sharing the project has its own ``hub_id``.
        """,
    )

    orphan_grace_period = Float(
        600.0,
        config=True,
        help="""
        Seconds a container must have been an orphan (in every full list) before
        :attr:`cleanup_orphans` deletes it.  Leaves room for a start whose state
        is not saved yet and for an administrator's own repairs.
        """,
    )

    # Inside a container the server listens on all interfaces at a fixed port;
    # the hub connects to the container's own address (from Zun's addresses).
    @default("ip")
    def _default_ip(self):
        return "0.0.0.0"

    @default("port")
    def _default_port(self):
        return 8888

    @validate("mem_limit")
    def _validate_mem_limit(self, proposal):
        value = proposal["value"]
        try:
            check_memory_mib(memory_mib(value))
        except ValueError as e:
            raise TraitError(f"ZunSpawner: {e}") from None
        return value

    @validate("cpu_limit")
    def _validate_cpu_limit(self, proposal):
        value = proposal["value"]
        try:
            check_cpu(value)
        except ValueError as e:
            raise TraitError(f"ZunSpawner: {e}") from None
        return value

    @validate("restart_policy")
    def _validate_restart_policy(self, proposal):
        try:
            objects.restart_policy(proposal["value"])
        except ValueError as e:
            raise TraitError(f"ZunSpawner: {e}") from None
        return proposal["value"]

    # -- state ------------------------------------------------------------------

    container_id = Unicode(None, allow_none=True)
    container_name_in_state = Unicode(None, allow_none=True)
    state_fields = ({"container_id": "container_id", "container_name": "container_name_in_state"},)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._zun = None

    # -- the server's container and the Zun client ------------------------------

    @property
    def container_name(self):
        return names.container_name(
            self.name_template,
            self.user.name,
            self.name or "",
            hub_id=self.hub_id,
        )

    @property
    def own_labels(self):
        return names.hub_labels(self.hub_id, self.user.name, self.name or "")

    @property
    def zun(self):
        """The hub's shared Zun client for these settings.

        Looked up once per spawner: poll() runs for every server on every
        interval, and the lookup hashes the settings and environment.
        """
        if self._zun is None:
            self._zun = self._shared_zun_client()
        return self._zun

    def _shared_zun_client(self):
        context = self.cloud_context()
        return context.shared(
            ("zun", self.zun_api_version, self.api_workers),
            lambda: ZunClient(
                context.session,
                api_version=self.zun_api_version,
                max_workers=self.api_workers,
                **context.endpoint_args(),
            ),
        )
