#!/usr/bin/env python3
"""End-to-end check of the process driver through the real Zun and Cinder APIs.

Needs a running local cloud (devstack/local-cloud up) and keystoneauth1 +
PyYAML (the zun venv has both)::

    .cache/local-cloud/venvs/zun/bin/python devstack/zun_local_driver/e2e.py

Options: --cloud-dir (default <repo>/.cache/local-cloud), --cloud (default
``local``), --skip-volume, --skip-oom.  Prints one line per step with its
timing; exits non-zero on the first failure.
"""

import argparse
import configparser
import json
import os
import signal
import sys
import time
import urllib.parse
import urllib.request
import uuid

# The cloud's own smoke test has the same set-up steps: use them.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
from smoke import ZUN_HEADERS, fail, step  # noqa: E402
from smoke import connect as _connect  # noqa: E402

IMAGE = 'quay.io/jupyter/base-notebook'


def connect(cloud_dir, cloud):
    _session, zun, cinder = _connect(cloud_dir, cloud)
    return zun, cinder


def zun_state_dir(cloud_dir):
    cp = configparser.RawConfigParser(strict=False)
    cp.read(os.path.join(cloud_dir, 'etc', 'zun', 'zun.conf'))
    return cp.get('local_driver', 'state_dir')


def show(zun, cid):
    r = zun.get('/containers/%s' % cid, headers=ZUN_HEADERS,
                raise_exc=False)
    if r.status_code == 404:
        return None
    r.raise_for_status()
    return r.json()


def list_one(zun, cid):
    """GET /containers reads only the DB (no RPC to zun-compute)."""
    r = zun.get('/containers', headers=ZUN_HEADERS)
    for c in r.json()['containers']:
        if c['uuid'] == cid:
            return c
    return None


def wait_for(fn, what, timeout):
    t = time.monotonic()
    while time.monotonic() - t < timeout:
        value = fn()
        if value:
            return value, time.monotonic() - t
        time.sleep(0.2)
    fail('timed out after %ss waiting for %s' % (timeout, what))


def create(zun, body, run=True):
    r = zun.post('/containers' + ('?run=true' if run else ''), json=body,
                 headers=ZUN_HEADERS, raise_exc=False)
    if r.status_code != 202:
        fail('create: %s %s' % (r.status_code, r.text))
    return r.json()['uuid']


def wait_status(zun, cid, statuses, timeout=60, use_list=False):
    def check():
        c = list_one(zun, cid) if use_list else show(zun, cid)
        return c if c and c['status'] in statuses else None
    return wait_for(check, '%s in %s' % (cid, statuses), timeout)


def delete(zun, cid):
    t = time.monotonic()
    r = zun.delete('/containers/%s?stop=true' % cid, headers=ZUN_HEADERS,
                   raise_exc=False)
    if r.status_code != 204:
        fail('delete: %s %s' % (r.status_code, r.text))
    wait_for(lambda: show(zun, cid) is None, 'delete of %s' % cid, 60)
    return time.monotonic() - t


def volume_status(cinder, vid):
    r = cinder.get('/volumes/%s' % vid, raise_exc=False)
    return r.json()['volume']['status'] if r.status_code == 200 else None


def main():
    repo = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    ap = argparse.ArgumentParser()
    ap.add_argument('--cloud-dir', default=os.environ.get(
        'MAGNUM_CLOUD_DIR', os.path.join(repo, '.cache', 'local-cloud')))
    ap.add_argument('--cloud', default='local')
    ap.add_argument('--skip-volume', action='store_true')
    ap.add_argument('--skip-oom', action='store_true')
    args = ap.parse_args()
    zun, cinder = connect(args.cloud_dir, args.cloud)
    state_dir = zun_state_dir(args.cloud_dir)
    tag = uuid.uuid4().hex[:6]

    # 1. http.server: Running, answers on its own address.
    t = time.monotonic()
    cid = create(zun, {'name': 'e2e-http-' + tag, 'image': IMAGE,
                       'command': ['python3', '-m', 'http.server', '8888',
                                   '--bind', '0.0.0.0'],
                       'memory': '256', 'cpu': 0.5})
    c, _ = wait_status(zun, cid, ('Running', 'Error', 'Stopped'))
    if c['status'] != 'Running':
        fail('http container %s: %s' % (c['status'], c['status_reason']))
    step('create ?run=true -> Running in %.2f s (%s)' % (
        time.monotonic() - t, c['status_detail']))
    net, ports = next(iter(c['addresses'].items()))
    addr = ports[0]['addr']
    body, took = wait_for(lambda: _http(addr), 'HTTP on %s:8888' % addr, 20)
    step('GET http://%s:8888/ -> 200 (%d bytes) after %.2f s; network %s'
         % (addr, len(body), took, net))

    # 2. Killed from outside -> Stopped at the next periodic sync.
    with open(os.path.join(state_dir, cid, 'supervisor.json')) as f:
        pid = json.load(f)['child_pid']
    os.kill(pid, signal.SIGKILL)
    c, took = wait_status(zun, cid, ('Stopped',), timeout=90, use_list=True)
    step('kill -9 %d from outside -> Stopped in the DB after %.1f s: %s / %s'
         % (pid, took, c['status_detail'], c['status_reason']))

    # 3. Delete with ?stop=true -> 404.
    step('DELETE ?stop=true -> 404 after %.2f s' % delete(zun, cid))

    # 4. Unknown image -> Error with a clear reason.
    cid = create(zun, {'name': 'e2e-noimg-' + tag, 'image': 'no/such-image',
                       'command': ['true']})
    c, took = wait_status(zun, cid, ('Error',), timeout=30)
    step('unknown image -> Error after %.2f s: %s' % (took,
                                                      c['status_reason']))
    delete(zun, cid)

    # 5. A 1 GiB Cinder volume at /home/jovyan.
    if not args.skip_volume:
        r = cinder.post('/volumes', json={'volume': {
            'size': 1, 'name': 'e2e-vol-' + tag}})
        vid = r.json()['volume']['id']
        wait_for(lambda: volume_status(cinder, vid) == 'available',
                 'volume available', 60)
        t = time.monotonic()
        cid = create(zun, {
            'name': 'e2e-vol-' + tag, 'image': IMAGE,
            'command': ['sh', '-c', 'df -k /home/jovyan; stat -c "%U %a" '
                        '/home/jovyan; echo data > /home/jovyan/f; '
                        'exec sleep 600'],
            'mounts': [{'source': vid, 'destination': '/home/jovyan'}],
            'memory': '128'})
        c, _ = wait_status(zun, cid, ('Running', 'Error', 'Stopped'))
        if c['status'] != 'Running':
            fail('volume container %s: %s' % (c['status'], c['status_reason']))
        step('container with 1 GiB volume Running in %.2f s; Cinder: %s'
             % (time.monotonic() - t, volume_status(cinder, vid)))
        logs, _ = wait_for(lambda: _logs(zun, cid), 'df output', 20)
        df = logs.splitlines()[1].split()
        step('df inside: %s KiB total (%.0f MiB), owner/mode: %s' % (
            df[1], int(df[1]) / 1024, logs.splitlines()[2]))
        if not 900 * 1024 < int(df[1]) <= 1024 * 1024:
            fail('unexpected volume size %s' % df[1])
        r = zun.post('/containers/%s/execute?run=true&command=%s' % (
            cid, urllib.parse.quote('df -k /home/jovyan')),
            headers=ZUN_HEADERS, raise_exc=False)
        if r.status_code != 200:
            fail('exec: %s %s' % (r.status_code, r.text))
        res = r.json()
        step('exec "df -k /home/jovyan": exit %s, %s' % (
            res['exit_code'], res['output'].splitlines()[-1]))
        if os.path.exists('/home/jovyan/f'):
            fail('the volume is visible on the host')
        step('DELETE ?stop=true -> 404 after %.2f s' % delete(zun, cid))
        st, took = wait_for(
            lambda: volume_status(cinder, vid) == 'available' and 'ok',
            'volume available again', 30)
        step('Cinder volume back to available after %.2f s' % took)
        # The data outlives the container: a new one sees the file.
        cid = create(zun, {
            'name': 'e2e-vol2-' + tag, 'image': IMAGE,
            'command': ['sh', '-c', 'cat /home/jovyan/f'],
            'mounts': [{'source': vid, 'destination': '/home/jovyan'}]})
        c, _ = wait_status(zun, cid, ('Stopped', 'Error'))
        out = zun.get('/containers/%s/logs' % cid, headers=ZUN_HEADERS)
        text = out.json() if out.headers.get('Content-Type', '').startswith(
            'application/json') else out.text
        step('re-attached in a new container: %s, file reads %r' % (
            c['status_detail'], text.strip()))
        if text.strip() != 'data':
            fail('data did not survive')
        delete(zun, cid)
        wait_for(lambda: volume_status(cinder, vid) == 'available',
                 'volume available', 30)
        cinder.delete('/volumes/%s' % vid)

    # 6. Memory hog under 128 MiB -> Stopped, Exited(137), OOM.
    if not args.skip_oom:
        t = time.monotonic()
        cid = create(zun, {'name': 'e2e-oom-' + tag, 'image': IMAGE,
                           'command': ['python3', '-c',
                                       'x = []\nwhile True: '
                                       'x.append(bytearray(1 << 20))'],
                           'memory': '128'})
        c, _ = wait_status(zun, cid, ('Stopped', 'Error'), timeout=90)
        step('memory hog -> %s after %.2f s: %s / %s' % (
            c['status'], time.monotonic() - t, c['status_detail'],
            c['status_reason']))
        if not (c['status_detail'] or '').startswith('Exited(137)') or \
                'OOM' not in (c['status_reason'] or ''):
            fail('OOM not reported')
        delete(zun, cid)
    step('all checks passed')


def _http(addr):
    try:
        return urllib.request.urlopen('http://%s:8888/' % addr,
                                      timeout=2).read()
    except OSError:
        return None


def _logs(zun, cid):
    r = zun.get('/containers/%s/logs' % cid, headers=ZUN_HEADERS,
                raise_exc=False)
    if r.status_code != 200:
        return None
    text = r.json() if r.headers.get('Content-Type', '').startswith(
        'application/json') else r.text
    return text if isinstance(text, str) and 'root' in text else None


if __name__ == '__main__':
    main()
