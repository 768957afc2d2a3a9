"""The settings of Cinder home volumes and what a server's home is called.

The traits an operator sets (type, name template, mount path, ...; the size
and the deletion with the user are in ``common/home.py``), the
volume's name and identifying metadata for this server, and the volume id the
spawner keeps in the hub's database.  What is done with them (find, create,
grow, delete) is in ``home_volumes``.
"""

from traitlets import Bool, Callable, Dict, Float, List, Unicode, Union, validate

from ..common.home import HomeTraits
from ..common.names import per_server, volume_name
from .cinder import CinderVolumes
from .objects import identity_metadata


class HomeVolumeSettings(HomeTraits):
    """The traits of home volumes (besides the size and the deletion, which
    MagnumSpawner shares: ``common/home.py``), and this server's home as named
    and stored."""

    home_volume_type = Union(
        [Unicode(), Callable()],
        default_value=None,
        allow_none=True,
        config=True,
        help="""
        Cinder volume type for new home volumes (default: Cinder's default type).
        May be a callable taking the spawner (it may be async).  Only used when a
        volume is created; existing volumes keep their type.
        """,
    )

    home_volume_availability_zone = Union(
        [Unicode(), Callable()],
        default_value=None,
        allow_none=True,
        config=True,
        help="""
        Cinder availability zone for new home volumes (default: Cinder's).  It
        must be one from which Zun's hosts can attach volumes; with
        :attr:`availability_zone` set, usually the same zone.  May be a callable.
        """,
    )

    home_volume_name_template = Unicode(
        "home-{username}",
        config=True,
        help="""
        Template of the home volume's name.  Fields: ``{username}``,
        ``{servername}`` (each made safe, so two users never share a name),
        ``{user_server}`` (the two joined without collisions) and ``{hub_id}``.

        With the default, each user has one home volume, shared by all of the
        user's servers - a volume attaches to one container at a time, so a
        second named server of the same user waits for it and then fails.  Use
        ``"home-{user_server}"`` to give each named server its own volume (the
        default server then keeps the user's existing volume).

        Renaming the template is safe: volumes are also found by the metadata
        this hub puts on them (``hub.jupyter.org/hub``, ``.../user``,
        ``.../server``, ``.../managed-by``) and by the id kept in the hub's
        database.
        """,
    )

    home_mount_path = Union(
        [Unicode(), Callable()],
        default_value="/home/jovyan",
        config=True,
        help="""
        Where the home volume is mounted in the container (default
        ``/home/jovyan``, the home of the Jupyter Docker Stacks images).
        May be a callable taking the spawner (it may be async).
        """,
    )

    home_volume_metadata = Union(
        [Dict(), Callable()],
        default_value={},
        config=True,
        help="""
        Extra Cinder metadata for new home volumes (or a callable returning it),
        e.g. ``{"billing": "physics"}``.  The ``hub.jupyter.org/*`` keys that
        identify the hub, user and server are always set and cannot be
        overridden.  Cinder limits keys and values to 255 characters.
        """,
    )

    home_chown = Bool(
        True,
        config=True,
        help="""
        Ask the image to give the home volume to the notebook user: sets
        ``CHOWN_HOME=yes`` and ``CHOWN_HOME_OPTS=-R`` in the environment when a
        home volume is mounted.

        A new volume's file system belongs to root.  The Jupyter Docker Stacks
        images (uid 1000, ``NB_UID``) chown the home directory at start-up only
        when the container starts as root, and then drop to ``NB_UID``.  Zun has
        no ``user`` field, so the image itself must start as root: use an image
        built ``FROM quay.io/jupyter/base-notebook`` with ``USER root``.  On the
        local process cloud every process runs as root.  Turn this off for
        images that handle the home directory's owner themselves.
        """,
    )

    home_hide_globs = List(
        Unicode(),
        ["__pycache__", "*.pyc", "*.pyo", ".DS_Store", "*~", "lost+found"],
        config=True,
        help="""
        File name patterns the notebook server hides from its file browser when
        a home volume is mounted (``--ContentsManager.hide_globs``).

        A new ext4 file system has a ``lost+found`` directory at its root, where
        fsck puts recovered files; it must stay (``e2fsck`` would recreate it),
        so it is hidden instead.  The default is jupyter_server's own list plus
        ``lost+found``.  An empty list passes nothing and leaves the server's
        setting alone.
        """,
    )

    home_volume_timeout = Float(
        30.0,
        config=True,
        help="""
        Seconds start() waits for the home volume: to be created, to be let go
        by the previous container (``in-use``, ``detaching``), to finish
        growing, or for an old volume that is being deleted to be gone.  Keep it
        well below :attr:`start_timeout`.  ``delete_forever`` waits as long for
        the volume to be detached.
        """,
    )

    home_volume_poll_interval = Float(
        1.0,
        config=True,
        help="Seconds between two looks at a home volume's status while waiting.",
    )

    home_volume_id = Unicode(None, allow_none=True)
    #: whether the current start mounts a home volume (set by prepare_home_volume)
    home_volume_mounted = Bool(False)

    @validate("home_volume_name_template")
    def _validate_home_volume_name_template(self, proposal):
        template = proposal["value"]
        try:
            volume_name(template, "user", "server", hub_id="hub")
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(f"home_volume_name_template {template!r}: {e}") from None
        return template

    # -- helpers ----------------------------------------------------------------

    @property
    def cinder(self):
        """The hub's shared Cinder client for this spawner's cloud settings."""
        return CinderVolumes.shared(self.cloud_context(), self.api_workers)

    async def home_zone(self):
        """The Cinder availability zone of a new home (None: Cinder's choice)."""
        return await self.resolve(self.home_volume_availability_zone)

    @property
    def home_volume_name(self):
        return volume_name(
            self.home_volume_name_template,
            self.user.name,
            self.name or "",
            hub_id=self.hub_id,
        )

    @property
    def home_volume_identity(self):
        return identity_metadata(
            self.hub_id,
            self.user.name,
            self.name or "",
            per_server(self.home_volume_name_template),
            user_id=self.user.id,
        )

    # -- state ------------------------------------------------------------------

    def get_state(self):
        state = super().get_state()
        if self.home_volume_id:
            state["home_volume_id"] = self.home_volume_id
        return state

    def load_state(self, state):
        super().load_state(state)
        self.home_volume_id = state.get("home_volume_id") or self.home_volume_id

    def clear_state(self):
        # JupyterHub clears the state after every stop and before every start,
        # but the home volume outlives servers: keep its id, so that the next
        # start finds it first.  delete_forever forgets it.
        volume_id = self.home_volume_id
        super().clear_state()
        self.home_volume_id = volume_id

    def get_args(self):
        args = super().get_args()
        if self.home_volume_mounted:
            args += ["--ContentsManager.hide_globs=%s" % g for g in self.home_hide_globs]
        return args

    def get_env(self):
        env = super().get_env()
        if self.home_chown and self.home_volume_mounted:
            env["CHOWN_HOME"] = "yes"
            env["CHOWN_HOME_OPTS"] = "-R"
        return env
