"""The home settings both spawners read the same way.

A user's home is a Cinder volume on the Zun path (``zun/home_settings.py``, which
adds that path's own settings) and a PersistentVolumeClaim on the Magnum path
(on Magnum clusters Cinder CSI makes each claim a Cinder volume).  How large it
is and whether it goes when its user goes mean the same on both: declared once
here, each help text saying what it is on each path.  ``home_mount_path`` is
not here: on the Zun path it may be a callable, on the Magnum path it is a
plain path (KubeSpawner builds the pod's volume mounts from it).
"""

from traitlets import Bool, Callable, Integer, Union

from .host import Host


class HomeTraits(Host):
    home_volume_size = Union(
        [Integer(), Callable()],
        default_value=1,
        allow_none=True,
        config=True,
        help="""
        Size in GiB of each user's home, mounted at :attr:`home_mount_path`,
        that keeps the user's files across restarts: a Cinder volume
        (ZunSpawner) or a PersistentVolumeClaim (MagnumSpawner; on Magnum
        clusters Cinder CSI makes it a Cinder volume), kept when the server
        stops.

        0 or None turns homes off (the home directory is then the container's
        or pod's own and is lost when the server stops).  May be a callable
        taking the spawner and returning the size (it may be async), e.g. to
        give some groups more room.

        ZunSpawner: raising the size grows existing volumes at their next start
        (Cinder extend); lowering it never shrinks a volume.  Every volume
        counts against the cloud project's Cinder quotas (``volumes``,
        ``gigabytes``): see docs/home-volumes.md.
        """,
    )

    delete_home_volume_on_delete = Bool(
        False,
        config=True,
        help="""
        Delete the user's home (ZunSpawner: the Cinder volume; MagnumSpawner:
        the claim), with all the user's files, when the user (or the named
        server) is deleted from the hub.

        Off by default: deleting a user keeps their data until an administrator
        removes it.

        ZunSpawner: a named server's own volume (a per-server template) goes
        with that server; the user's shared home (the default
        ``home-{username}``) goes only with the user, never when one of the
        user's named servers is deleted.  Only volumes this hub made are ever
        deleted (those with ``hub.jupyter.org/managed-by=magnum-spawner`` and
        this :attr:`hub_id`); volumes an administrator made are left alone.
        """,
    )
