"""Cinder volumes as sparse ext4 image files, loop-mounted per container.

Zun's real Cinder workflow stays (reserve, initialize_connection, attach,
begin_detaching, terminate_connection, detach), so Cinder shows the volume
``in-use`` and ``available`` as on a cloud.  Only what needs a storage
fabric and root helpers is replaced:

* os-brick ``connect_volume`` -> make (first attach) or find the image file
  ``<volumes_dir>/<cinder volume id>.img`` of the volume's size, growing it
  with ``resize2fs`` after a Cinder extend;
* os-brick ``disconnect_volume`` -> nothing (the data stays until the
  Cinder volume is deleted);
* os-brick ``get_connector_properties`` -> a static connector (the real one
  shells out through sudo);
* the host ``mount(8)`` of the device -> nothing: the supervisor loop-mounts
  the image at the destination inside the container's mount namespace.
"""

import os
import socket
import subprocess
import uuid

import logging

LOG = logging.getLogger(__name__)

GiB = 1024 ** 3
IMAGE_SUFFIX = '.img'


def _run(cmd):
    res = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if res.returncode != 0:
        raise RuntimeError('%s failed (%d): %s' % (
            ' '.join(cmd), res.returncode,
            res.stderr.decode(errors='replace').strip()))
    return res.stdout.decode(errors='replace')


class VolumeImages(object):
    """The image files under ``volumes_dir``, keyed on Cinder volume id."""

    def __init__(self, volumes_dir):
        self.volumes_dir = volumes_dir

    def path(self, volume_id):
        # Volume ids are uuids; refuse anything that could escape the dir.
        vid = str(uuid.UUID(str(volume_id)))
        return os.path.join(self.volumes_dir, vid + IMAGE_SUFFIX)

    def ids(self):
        try:
            names = os.listdir(self.volumes_dir)
        except FileNotFoundError:
            return []
        return [n[:-len(IMAGE_SUFFIX)] for n in names
                if n.endswith(IMAGE_SUFFIX)]

    @staticmethod
    def in_use(path):
        """True if a loop device is backed by *path* (mounted somewhere)."""
        if not os.path.exists(path):
            return False
        return bool(_run(['losetup', '-j', path]).strip())

    def ensure(self, volume_id, size_gib):
        """Path of the volume's image: created and formatted on first use,
        grown when Cinder's size is larger than the file."""
        os.makedirs(self.volumes_dir, exist_ok=True)
        path = self.path(volume_id)
        size = int(size_gib) * GiB
        if not os.path.exists(path):
            tmp = path + '.new'
            with open(tmp, 'wb') as f:
                f.truncate(size)
            # -m 0: no blocks reserved for root; a fresh filesystem is
            # owned by root, as a freshly formatted cloud volume is.
            _run(['mkfs.ext4', '-q', '-F', '-m', '0',
                  '-L', str(volume_id)[:16], tmp])
            os.rename(tmp, path)
            LOG.info('Created %d GiB volume image %s', size_gib, path)
        elif os.path.getsize(path) < size:
            if self.in_use(path):
                LOG.warning('Volume image %s is mounted; not growing it to '
                            '%d GiB now', path, size_gib)
            else:
                with open(path, 'r+b') as f:
                    f.truncate(size)
                _run(['e2fsck', '-f', '-p', path])
                _run(['resize2fs', path])
                LOG.info('Grew volume image %s to %d GiB', path, size_gib)
        return path

    def remove(self, volume_id):
        path = self.path(volume_id)
        if self.in_use(path):
            LOG.warning('Volume image %s still mounted; kept', path)
            return False
        try:
            os.unlink(path)
            LOG.info('Removed volume image %s', path)
        except FileNotFoundError:
            pass
        return True


def local_connector_properties():
    """What os-brick would report, without shelling out through sudo."""
    import zun.conf
    conf = zun.conf.CONF
    return {'platform': os.uname().machine, 'os_type': 'linux',
            'ip': conf.my_block_storage_ip or conf.my_ip,
            'host': conf.host or socket.gethostname(),
            'multipath': False, 'enforce_multipath': False,
            'initiator': 'iqn.2026-01.local.zun:%s' % (conf.host or 'host')}


def build_cinder_driver(images):
    """A ``zun.volume.driver.Cinder`` whose device work is *images*.

    Imported lazily: zun is only importable inside zun-compute's venv.
    """
    from oslo_serialization import jsonutils
    from oslo_utils import excutils

    from zun.volume import cinder_workflow
    from zun.volume import driver as zun_volume_driver

    # Module-level: Zun's workflow calls this function by its global name.
    cinder_workflow.get_volume_connector_properties = \
        local_connector_properties

    class ImageFileWorkflow(cinder_workflow.CinderWorkflow):
        """Zun's workflow with os-brick's device calls replaced."""

        def __init__(self, context, volmap):
            super(ImageFileWorkflow, self).__init__(context)
            self.volmap = volmap

        def _connect_volume(self, conn_info):
            volume_id = self.volmap.cinder_volume_id
            size = self.cinder_api.get(volume_id).size
            return {'type': 'file', 'path': images.ensure(volume_id, size)}

        def _disconnect_volume(self, conn_info):
            # Keep the data: the image goes when the Cinder volume does.
            return None

    class ImageFileCinder(zun_volume_driver.Cinder):
        """Zun's Cinder volume driver, mounting nothing on the host."""

        def attach(self, context, volmap):
            workflow = ImageFileWorkflow(context, volmap)
            if volmap.connection_info:
                # Re-attach (zun-compute restart): find the image again.
                conn_info = jsonutils.loads(volmap.connection_info)
                device = workflow._connect_volume(conn_info)
                conn_info['data']['device_path'] = device['path']
                volmap.connection_info = jsonutils.dumps(conn_info)
                volmap.save(context)
            else:
                workflow.attach_volume(volmap)

        def detach(self, context, volmap):
            ImageFileWorkflow(context, volmap).detach_volume(context, volmap)

        def delete(self, context, volmap):
            super(ImageFileCinder, self).delete(context, volmap)
            try:
                images.remove(volmap.cinder_volume_id)
            except Exception:
                with excutils.save_and_reraise_exception(reraise=False):
                    LOG.exception('Could not remove the image of volume %s',
                                  volmap.cinder_volume_id)

        def _mount_device(self, volmap, devpath):
            return None

        def _unmount_device(self, volmap):
            return None

        def bind_mount(self, context, volmap):
            return (images.path(volmap.cinder_volume_id),
                    volmap.container_path)

    return ImageFileCinder()
