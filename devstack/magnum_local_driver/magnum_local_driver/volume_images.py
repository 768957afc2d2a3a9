"""Volumes as sparse ext4 image files.

The Cinder CSI stand-in's claims (:mod:`.provisioner`), as the retired
process-backed Zun driver kept its volumes: ``<volumes_dir>/<volume id>.img``
of the volume's size, made on first use and grown with ``resize2fs`` after an
extend, loop-mounted for the nodes.
"""

import os
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
