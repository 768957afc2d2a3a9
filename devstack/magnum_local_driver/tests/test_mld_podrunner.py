"""The kubelet stand-in's pod runner with real processes (root, cgroup v1).

The API server is replaced by the two lookups the runner makes (secrets and
config maps); everything else is real: namespaces, cgroups, the pod IP.
Marked ``localcloud`` (run by ``make e2e``) like the Zun driver's
supervisor tests.
"""
import base64
import os
import time
import uuid

import pytest

import mld_testing
from magnum_local_driver import pods

pytestmark = [pytest.mark.localcloud, pytest.mark.skipif(
    mld_testing.can_run_containers() is not None,
    reason=str(mld_testing.can_run_containers()))]

CLUSTER = '00000000-0000-4000-8000-%012d' % 1


class Objects(object):
    """What the runner reads from the API: secrets and config maps."""

    def __init__(self, objects):
        self.objects = objects

    def find(self, path):
        return self.objects.get(path)


@pytest.fixture
def runner(tmp_path):
    conf = {'cluster_uuid': CLUSTER, 'pods_dir': str(tmp_path / 'pods'),
            'volumes_dir': str(tmp_path / 'volumes'),
            'addresses_dir': str(tmp_path),
            'pod_address_base': '127.77.0.0/16', 'images': [],
            'cgroup_parent': 'magnum-local-test-%s' % uuid.uuid4().hex[:6],
            'csi_driver': 'cinder.csi.openstack.org'}
    os.makedirs(conf['pods_dir'])
    secret = {'data': {'token': base64.b64encode(b'abc').decode()}}
    r = pods.PodRunner(conf, Objects({'/api/v1/namespaces/ns/secrets/hub': secret}))
    yield r
    for rec in r.records():
        r.stop_pod(rec, 0)
    for ctrl in ('memory', 'cpu', 'cpuacct', 'freezer'):
        path = os.path.join('/sys/fs/cgroup', ctrl, conf['cgroup_parent'])
        if os.path.isdir(path):
            os.rmdir(path)


def pod(name, containers, volumes=(), policy='Never'):
    return {'metadata': {'name': name, 'namespace': 'ns', 'uid': str(uuid.uuid4())},
            'spec': {'nodeName': 'n0', 'restartPolicy': policy,
                     'volumes': list(volumes), 'containers': containers}}


def wait_state(runner, rec, container, want, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        st, state, details = runner.container_status(rec, container)
        if state == want:
            return st
        assert time.monotonic() < deadline, (state, details)
        time.sleep(0.1)


def test_command_env_workdir_hostname_secret_volume_and_pod_ip(runner, tmp_path):
    out = tmp_path / 'out'
    c = {'name': 'main', 'image': 'busybox', 'command': ['sh', '-c'],
         'args': ['echo "$A $(pwd) $(hostname) $MYIP $(cat /etc/hub/token) $$" > %s' % out],
         'env': [{'name': 'A', 'value': 'x'},
                 {'name': 'MYIP', 'valueFrom': {'fieldRef': {'fieldPath': 'status.podIP'}}}],
         'workingDir': '/tmp/mld-wd',
         'volumeMounts': [{'name': 'tok', 'mountPath': '/etc/hub'}]}
    p = pod('p1', [c], [{'name': 'tok', 'secret': {'secretName': 'hub'}}])
    rec = runner.start_pod(p)
    st = wait_state(runner, rec, c, pods.runtime.EXITED)
    assert st['state']['terminated']['exitCode'] == 0
    assert st['state']['terminated']['reason'] == 'Completed'
    assert rec['ip'].startswith('127.77.')
    assert out.read_text().split() == ['x', '/tmp/mld-wd', 'p1', rec['ip'], 'abc', '1']
    assert not os.path.exists('/etc/hub/token')  # mounted inside only


def test_memory_limit_oom_killed_and_cpu_shares(runner):
    c = {'name': 'hog', 'image': 'busybox',
         'command': ['python3', '-c', 'x = []\nwhile True: x.append(bytearray(1 << 20))'],
         'resources': {'limits': {'memory': '48Mi'}, 'requests': {'cpu': '500m'}}}
    p = pod('hog', [c])
    rec = runner.start_pod(p)
    cid = rec['containers']['hog']
    with open(os.path.join(runner.cgroup(cid).path('cpu'), 'cpu.shares')) as f:
        assert int(f.read()) == 512
    st = wait_state(runner, rec, c, pods.runtime.EXITED)
    term = st['state']['terminated']
    assert (term['exitCode'], term['reason']) == (137, 'OOMKilled')


def test_stop_pod_removes_processes_cgroups_state_and_address(runner):
    c = {'name': 'main', 'image': 'busybox', 'command': ['sleep', '60']}
    rec = runner.start_pod(pod('s', [c]))
    wait_state(runner, rec, c, pods.runtime.RUNNING)
    cid = rec['containers']['main']
    pid = runner.cdir(cid).supervisor()['child_pid']
    t0 = time.monotonic()
    runner.stop_pod(rec, 1)  # sleep as pid 1 ignores SIGTERM: killed after 1 s
    assert time.monotonic() - t0 < 5
    assert pods.runtime.sv.proc_stat(pid) is None or \
        pods.runtime.sv.proc_stat(pid)[0] == 'Z'
    assert not os.path.exists(runner.cdir(cid).path)
    assert not os.path.isdir(runner.cgroup(cid).path('memory'))
    assert runner.records() == []
    assert pods.addresses.allocations(runner.conf['addresses_dir']) == {}
