"""The claims' volume images: made sparse, grown, removed."""
import os
import shutil
import subprocess
import uuid

import pytest

import mld_testing  # noqa: F401  (sys.path)
from magnum_local_driver import volume_images as volumes

pytestmark = pytest.mark.skipif(shutil.which('mkfs.ext4') is None and
                                not os.path.exists('/usr/sbin/mkfs.ext4'),
                                reason='needs e2fsprogs')
os.environ['PATH'] = os.environ.get('PATH', '') + ':/usr/sbin:/sbin'


def block_count(path):
    out = subprocess.run(['dumpe2fs', '-h', path], capture_output=True,
                         text=True).stdout
    fields = dict(line.split(':', 1) for line in out.splitlines()
                  if ':' in line)
    return int(fields['Block count']) * int(fields['Block size'])


def test_image_created_sparse_grown_and_removed(tmp_path):
    images = volumes.VolumeImages(str(tmp_path / 'vols'))
    vid = str(uuid.uuid4())
    path = images.ensure(vid, 1)
    assert path == images.path(vid)
    st = os.stat(path)
    assert st.st_size == 1024 ** 3
    assert st.st_blocks * 512 < 100 * 1024 ** 2  # sparse
    assert block_count(path) == 1024 ** 3
    mtime = st.st_mtime
    assert images.ensure(vid, 1) == path and os.stat(path).st_mtime == mtime
    images.ensure(vid, 2)  # Cinder extended the volume
    assert block_count(path) == 2 * 1024 ** 3
    assert images.ids() == [vid]
    assert not images.in_use(path)
    assert images.remove(vid) and not os.path.exists(path)


def test_ids_must_be_uuids(tmp_path):
    images = volumes.VolumeImages(str(tmp_path))
    with pytest.raises(ValueError):
        images.path('../../etc/passwd')
