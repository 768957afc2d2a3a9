"""A Cinder volume driver that keeps each volume as a file (cinder-volume,
``volume_driver = docker_parts.file_volume.FileVolumeDriver``).

Why a stand-in: this kernel has no iSCSI target (``CONFIG_TARGET_CORE``), no
device-mapper (no LVM) and no NFS server, so no upstream backend can export a
volume here.  What is left is the simplest export os-brick knows: the
``local`` connection, a path on the compute host.  Each volume is a sparse
file of its size under ``[<backend>] file_volume_dir``; ``initialize_connection``
hands out ``{"driver_volume_type": "local", "data": {"device_path": <file>}}``,
so Zun's own Cinder path runs unchanged: reserve, initialize_connection,
os-brick's ``LocalConnector``, attach, ``mkfs`` on first use and ``mount``
(util-linux mounts a file through a loop device), the bind mount into the
container, and the reverse on detach.  The data lives with the Cinder volume:
a new container that attaches it finds the files, and its size is the file
system's size (ENOSPC beyond it).  Every compute host of the local cloud is on
this machine, so every one reaches the file.
"""

import os

from oslo_config import cfg
from oslo_log import log as logging

from cinder import exception
from cinder.volume import driver

LOG = logging.getLogger(__name__)

file_opts = [
    cfg.StrOpt("file_volume_dir",
               help="Directory that holds one file per volume (volume-<id>)."),
]
cfg.CONF.register_opts(file_opts, group="backend_defaults")

GiB = 1024 ** 3


class FileVolumeDriver(driver.VolumeDriver):
    """Volumes as sparse files, exported as os-brick ``local`` connections."""

    VERSION = "1.0.0"
    # No CI of Cinder's own runs this driver: it only serves the local cloud.
    SUPPORTED = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.configuration.append_config_values(file_opts)
        self.backend_name = (self.configuration.safe_get("volume_backend_name")
                             or "file")

    # ---------------------------------------------------------- set-up
    def _dir(self):
        return self.configuration.safe_get("file_volume_dir")

    def do_setup(self, context):
        os.makedirs(self._dir(), exist_ok=True)

    def check_for_setup_error(self):
        if not self._dir() or not os.path.isdir(self._dir()):
            raise exception.VolumeBackendAPIException(
                data="file_volume_dir %r is not a directory" % self._dir())

    def _path(self, volume):
        return os.path.join(self._dir(), "volume-%s" % volume.id)

    # ---------------------------------------------------------- volumes
    def create_volume(self, volume):
        path = self._path(volume)
        # Sparse: a 10 GiB volume takes the space its files take.
        with open(path, "xb") as f:
            f.truncate(volume.size * GiB)
        LOG.info("Volume %s: %s GiB file %s", volume.id, volume.size, path)
        return {}

    def delete_volume(self, volume):
        try:
            os.unlink(self._path(volume))
        except FileNotFoundError:
            pass

    def extend_volume(self, volume, new_size):
        # The file system grows with the next resize2fs; the file first.
        with open(self._path(volume), "r+b") as f:
            f.truncate(new_size * GiB)

    def create_cloned_volume(self, volume, src_vref):
        raise NotImplementedError()

    # ---------------------------------------------------------- exports
    def create_export(self, context, volume, connector):
        return {}

    def ensure_export(self, context, volume):
        return {}

    def remove_export(self, context, volume):
        return None

    def initialize_connection(self, volume, connector):
        return {"driver_volume_type": "local",
                "data": {"device_path": self._path(volume)}}

    def terminate_connection(self, volume, connector, **kwargs):
        return None

    # ---------------------------------------------------------- stats
    def _update_volume_stats(self):
        st = os.statvfs(self._dir())
        self._stats = {
            "volume_backend_name": self.backend_name,
            "vendor_name": "magnum-spawner local cloud",
            "driver_version": self.VERSION,
            "storage_protocol": "local",
            "total_capacity_gb": st.f_blocks * st.f_frsize // GiB,
            "free_capacity_gb": st.f_bavail * st.f_frsize // GiB,
            "reserved_percentage": 0,
            # sparse files: overcommit as thin provisioning does
            "thin_provisioning_support": True,
            "max_over_subscription_ratio": 20.0,
            "multiattach": False,
        }
