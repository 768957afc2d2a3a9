"""Small images made here, from Debian's ``busybox-static``, for real nodes.

No registry but the local one can be reached, so the sandbox ("pause")
image every pod needs is built here: one layer holding the static busybox,
``sleep`` as its command (containerd stops a sandbox with SIGKILL).  It is a
Docker image archive (``manifest.json``, config, layer), which ``ctr images
import`` loads into a node's containerd before its kubelet starts.
"""

import hashlib
import io
import json
import os
import tarfile

BUSYBOX = '/bin/busybox'


def _layer(busybox):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=tarfile.PAX_FORMAT) as t:
        for d in ('bin', 'tmp'):
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if d == 'tmp' else 0o755
            t.addfile(info)
        t.add(busybox, arcname='bin/busybox')
        for name in ('sh', 'sleep'):
            info = tarfile.TarInfo('bin/' + name)
            info.type = tarfile.SYMTYPE
            info.linkname = 'busybox'
            t.addfile(info)
    return buf.getvalue()


def busybox_archive(path, name, cmd, busybox=BUSYBOX):
    """Write a Docker image archive of ``name`` (``repo:tag``) running
    ``cmd`` to ``path`` (atomically); returns ``path``."""
    layer = _layer(busybox)
    diff_id = 'sha256:' + hashlib.sha256(layer).hexdigest()
    config = json.dumps({
        'architecture': 'amd64', 'os': 'linux',
        'config': {'Cmd': list(cmd), 'Env': ['PATH=/bin'],
                   'WorkingDir': '/'},
        'rootfs': {'type': 'layers', 'diff_ids': [diff_id]},
        'history': [{'created_by': 'magnum_local_driver.images'}],
    }, sort_keys=True).encode()
    config_name = hashlib.sha256(config).hexdigest() + '.json'
    manifest = json.dumps([{'Config': config_name, 'RepoTags': [name],
                            'Layers': ['layer.tar']}]).encode()
    tmp = path + '.tmp'
    with tarfile.open(tmp, mode='w') as t:
        for member, data in (('layer.tar', layer), (config_name, config),
                             ('manifest.json', manifest)):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            info.mode = 0o644
            t.addfile(info, io.BytesIO(data))
    os.replace(tmp, path)
    return path


def pause_archive(path):
    return busybox_archive(path, 'local/pause:3.2',
                           ['/bin/sleep', '2147483647'])


def push_busybox(registry, repository, tag, cmd, busybox=BUSYBOX):
    """Push the same one-layer image to a registry (``host:port``, plain
    HTTP, registry API v2); returns ``registry/repository:tag``."""
    import gzip
    import urllib.request

    layer = gzip.compress(_layer(busybox), mtime=0)
    diff_id = 'sha256:' + hashlib.sha256(gzip.decompress(layer)).hexdigest()
    config = json.dumps({
        'architecture': 'amd64', 'os': 'linux',
        'config': {'Cmd': list(cmd), 'Env': ['PATH=/bin'], 'WorkingDir': '/'},
        'rootfs': {'type': 'layers', 'diff_ids': [diff_id]},
    }, sort_keys=True).encode()
    base = 'http://%s/v2/%s' % (registry, repository)

    def blob(data):
        digest = 'sha256:' + hashlib.sha256(data).hexdigest()
        start = urllib.request.Request(base + '/blobs/uploads/', method='POST')
        with urllib.request.urlopen(start) as resp:
            location = resp.headers['Location']
        if location.startswith('/'):
            location = 'http://%s%s' % (registry, location)
        sep = '&' if '?' in location else '?'
        put = urllib.request.Request(location + sep + 'digest=' + digest,
                                     data=data, method='PUT', headers={
                                         'Content-Type':
                                             'application/octet-stream'})
        urllib.request.urlopen(put).close()
        return {'digest': digest, 'size': len(data)}

    manifest = json.dumps({
        'schemaVersion': 2,
        'mediaType': 'application/vnd.docker.distribution.manifest.v2+json',
        'config': dict(blob(config), mediaType=(
            'application/vnd.docker.container.image.v1+json')),
        'layers': [dict(blob(layer), mediaType=(
            'application/vnd.docker.image.rootfs.diff.tar.gzip'))],
    }).encode()
    put = urllib.request.Request(
        '%s/manifests/%s' % (base, tag), data=manifest, method='PUT',
        headers={'Content-Type':
                 'application/vnd.docker.distribution.manifest.v2+json'})
    urllib.request.urlopen(put).close()
    return '%s/%s:%s' % (registry, repository, tag)
