"""Port blocks, process records and the ordered stop of a local cluster."""
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

import mld_testing  # noqa: F401  (sys.path)
from magnum_local_driver import controlplane


def _free_block(base_guess=40000):
    """A port_base whose first two blocks are free."""
    for base in range(base_guess, 60000, 97):
        if not any(controlplane.port_in_use(base + i) for i in range(8)):
            return base
    raise RuntimeError('no free ports')


def test_each_cluster_keeps_its_own_ports(tmp_path):
    base = _free_block()
    a = controlplane.allocate_slot(str(tmp_path), 'a', base, 4)
    b = controlplane.allocate_slot(str(tmp_path), 'b', base, 4)
    assert a != b
    assert controlplane.allocate_slot(str(tmp_path), 'a', base, 4) == a
    pa, pb = controlplane.ports_of(base, a), controlplane.ports_of(base, b)
    assert len(set(pa.values()) | set(pb.values())) == 8
    controlplane.release_slot(str(tmp_path), 'a')
    assert controlplane.allocate_slot(str(tmp_path), 'c', base, 4) == a


def test_a_block_something_else_listens_on_is_skipped(tmp_path):
    base = _free_block()
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(('127.0.0.1', base + 1))  # slot 0's etcd port
        s.listen()
        assert controlplane.allocate_slot(str(tmp_path), 'x', base, 4) == 1


def test_no_free_slot_is_a_clear_error(tmp_path):
    base = _free_block()
    controlplane.allocate_slot(str(tmp_path), 'x', base, 1)
    try:
        controlplane.allocate_slot(str(tmp_path), 'y', base, 1)
    except controlplane.NoFreeSlot as e:
        assert 'no free port block' in str(e)
    else:
        raise AssertionError('a second cluster got the only block')


STUBBORN = ('import signal, time\n'
            'signal.signal(signal.SIGTERM, signal.SIG_IGN)\n'
            'print("ready", flush=True)\n'
            'time.sleep(60)\n')
# Prints when it got SIGTERM, then exits.
POLITE = ('import signal, sys, time\n'
          'def bye(*a):\n'
          '    print(time.time(), flush=True)\n'
          '    sys.exit(0)\n'
          'signal.signal(signal.SIGTERM, bye)\n'
          'print("ready", flush=True)\n'
          'time.sleep(60)\n')


def test_stop_is_ordered_kills_the_stubborn_and_reaps(tmp_path):
    cdir = controlplane.ClusterDir(str(tmp_path), 'c1')
    cdir.make()
    children = controlplane.Children()
    procs = {name: children.spawn(cdir, name, [sys.executable, '-c', code])
             for name, code in (('etcd', POLITE), ('kube-apiserver', STUBBORN),
                                ('node', POLITE))}
    def ready(name):
        with open(os.path.join(cdir.logs, name + '.log')) as f:
            return 'ready' in f.read()
    deadline = time.monotonic() + 20
    while not all(ready(n) for n in procs):  # handlers installed
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert set(cdir.running()) == {'etcd', 'kube-apiserver', 'node'}
    t0 = time.monotonic()
    killed = controlplane.stop(cdir, timeout=1)
    assert killed == ['kube-apiserver']
    assert time.monotonic() - t0 < 5

    def termed_at(name):
        with open(os.path.join(cdir.logs, name + '.log')) as f:
            return float(f.read().split()[1])
    # Reverse start order: the node first, etcd only after the API server
    # (which ignored SIGTERM for its 1 s and was killed).
    assert termed_at('etcd') - termed_at('node') > 0.9
    assert cdir.running() == {}
    # The reaper collects the children: none is left a zombie.
    deadline = time.monotonic() + 5
    while any(p.returncode is None for p in procs.values()):
        assert time.monotonic() < deadline, 'children not reaped'
        time.sleep(0.1)
    assert procs['kube-apiserver'].returncode == -signal.SIGKILL
    assert procs['etcd'].returncode == 0


def test_running_ignores_a_recorded_pid_that_is_someone_else(tmp_path):
    cdir = controlplane.ClusterDir(str(tmp_path), 'c2')
    cdir.make()
    other = subprocess.Popen(['sleep', '30'])
    try:
        with open(os.path.join(cdir.pids, 'etcd'), 'w') as f:
            f.write('%d 12345\n' % other.pid)  # wrong start time
        assert cdir.running() == {}
    finally:
        other.kill()
        other.wait()


@pytest.mark.slow
def test_a_process_that_exits_is_restarted_until_the_cluster_stops(tmp_path):
    # kube-controller-manager exits when the API server is slow to answer.
    cdir = controlplane.ClusterDir(str(tmp_path), 'c3')
    cdir.make()
    marker = tmp_path / 'ran-once'
    children = controlplane.Children()
    children.spawn(cdir, 'kube-controller-manager', [
        'sh', '-c', 'test -f %s || { touch %s; exit 1; }; exec sleep 60'
        % (marker, marker)], delay=0.2)
    deadline = time.monotonic() + 10
    while 'kube-controller-manager' not in cdir.running() or \
            not cdir.read_json('restarts.json'):
        assert time.monotonic() < deadline, 'not restarted'
        time.sleep(0.1)
    assert cdir.read_json('restarts.json') == {'kube-controller-manager': 1}
    controlplane.stop(cdir, timeout=1)
    time.sleep(1.5)  # longer than the next restart delay
    assert cdir.running() == {}
