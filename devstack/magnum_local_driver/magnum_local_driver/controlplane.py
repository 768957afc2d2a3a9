"""The processes of one local cluster and where their files live.

``<state_dir>/<cluster uuid>/``::

    pki/            ca.crt, apiserver.{crt,key}, sa.{key,pub}, *.kubeconfig
    etcd/           etcd's data
    logs/<name>.log stderr/stdout of each process
    pids/<name>     "<pid> <start time>" of each running process
    node.json       the node agent's configuration
    nodes.json, nodes/<n>/  the nodes (:mod:`.kubelets`, :mod:`.kubenode`)
    cinder.json     the cluster's application credential (0600)

Ports: each cluster holds a slot in ``<state_dir>/slots.json`` (under a file
lock); slot N uses ``port_base + 4N`` .. ``+3``.

The processes are children of magnum-conductor, in its process group (so the
local cloud's ``down`` stops them with it), reaped by a thread here (a dead
child must not linger as a zombie) that restarts one that exits.  Stopping is ordered: the node agent,
kube-controller-manager, kube-apiserver (it takes ~20 s to exit once etcd is
gone), then etcd.
"""

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

SLOTS_FILE = 'slots.json'
# Start order; stop order is the reverse.
PROCESSES = ('etcd', 'kube-apiserver', 'kube-controller-manager', 'node')
PORT_NAMES = ('apiserver', 'etcd', 'etcd_peer', 'controller_manager')


class NoFreeSlot(Exception):
    pass


def _load_slots(state_dir):
    try:
        with open(os.path.join(state_dir, SLOTS_FILE)) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def _save_slots(state_dir, slots):
    path = os.path.join(state_dir, SLOTS_FILE)
    with open(path + '.tmp', 'w') as f:
        json.dump(slots, f, sort_keys=True)
    os.replace(path + '.tmp', path)


def port_in_use(port):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(('127.0.0.1', port)) == 0


def ports_of(port_base, slot):
    return {name: port_base + 4 * slot + i
            for i, name in enumerate(PORT_NAMES)}


@contextlib.contextmanager
def _slots_locked(state_dir):
    """The slot table's lock (clusters are made by several conductor
    threads)."""
    os.makedirs(state_dir, exist_ok=True)
    fd = os.open(os.path.join(state_dir, 'slots.lock'),
                 os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def allocate_slot(state_dir, cluster_uuid, port_base, max_clusters):
    """The cluster's slot (the same on every call); skips blocks whose ports
    something else already listens on."""
    with _slots_locked(state_dir):
        slots = _load_slots(state_dir)
        if cluster_uuid in slots:
            return slots[cluster_uuid]
        taken = set(slots.values())
        for slot in range(max_clusters):
            if slot in taken:
                continue
            if any(port_in_use(p) for p in
                   ports_of(port_base, slot).values()):
                continue
            slots[cluster_uuid] = slot
            _save_slots(state_dir, slots)
            return slot
    raise NoFreeSlot('no free port block for another cluster (%d in use)'
                     % len(taken))


def release_slot(state_dir, cluster_uuid):
    with _slots_locked(state_dir):
        slots = _load_slots(state_dir)
        if slots.pop(cluster_uuid, None) is not None:
            _save_slots(state_dir, slots)


def proc_starttime(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rindex(')') + 2:].split()
    if rest[0] in ('Z', 'X'):
        return None
    return int(rest[19])


class ClusterDir(object):

    def __init__(self, state_dir, cluster_uuid):
        self.uuid = cluster_uuid
        self.path = os.path.join(state_dir, cluster_uuid)
        self.pki = os.path.join(self.path, 'pki')
        self.etcd_data = os.path.join(self.path, 'etcd')
        self.logs = os.path.join(self.path, 'logs')
        self.pids = os.path.join(self.path, 'pids')

    def file(self, *parts):
        return os.path.join(self.path, *parts)

    def exists(self):
        return os.path.isdir(self.path)

    def make(self):
        for d in (self.pki, self.etcd_data, self.logs, self.pids):
            os.makedirs(d, exist_ok=True)
        os.chmod(self.pki, 0o700)

    def write(self, name, text, mode=0o600):
        path = self.file(name)
        fd = os.open(path + '.tmp', os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                     mode)
        with os.fdopen(fd, 'w') as f:
            f.write(text)
        os.replace(path + '.tmp', path)
        return path

    def read_json(self, name):
        try:
            with open(self.file(name)) as f:
                return json.load(f)
        except (FileNotFoundError, ValueError):
            return None

    def running(self):
        """{name: pid} of this cluster's processes that still run."""
        out = {}
        try:
            names = os.listdir(self.pids)
        except FileNotFoundError:
            return out
        for name in names:
            try:
                with open(os.path.join(self.pids, name)) as f:
                    pid, start = (int(x) for x in f.read().split())
            except (OSError, ValueError):
                continue
            if proc_starttime(pid) == start:
                out[name] = pid
        return out

    def log_tail(self, name, lines=15):
        try:
            with open(os.path.join(self.logs, name + '.log'), 'rb') as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 8192))
                text = f.read().decode(errors='replace')
        except OSError:
            return ''
        return '\n'.join(text.splitlines()[-lines:])

    def wanted(self):
        """Should its processes run (not deleted, not being stopped)?"""
        return self.exists() and not os.path.exists(self.file('stopping'))

    def count_restart(self, name):
        counts = self.read_json('restarts.json') or {}
        counts[name] = counts.get(name, 0) + 1
        self.write('restarts.json', json.dumps(counts), 0o644)

    def remove(self):
        shutil.rmtree(self.path, ignore_errors=True)


class Children(object):
    """Popen children of this process, reaped by one background thread,
    which also restarts one that exits (1, 2, 4 ... 30 s later) until its
    cluster is being stopped: kube-controller-manager, for one, exits when
    the API server is not answering within 10 s of its start, which a busy
    machine can make it miss."""

    MAX_DELAY = 30.0

    def __init__(self):
        self._procs = {}    # pid -> (proc, cdir, name, argv, env, delay)
        self._pending = []  # (due, cdir, name, argv, env, delay)
        self._lock = threading.Lock()
        self._thread = None

    def _start(self, cdir, name, argv, env):
        log = open(os.path.join(cdir.logs, name + '.log'), 'ab')
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT,
                                    cwd=cdir.path, env=env, close_fds=True)
        finally:
            log.close()
        start = None
        for _ in range(50):
            start = proc_starttime(proc.pid)
            if start is not None or proc.poll() is not None:
                break
            time.sleep(0.01)
        with open(os.path.join(cdir.pids, name), 'w') as f:
            f.write('%d %s\n' % (proc.pid, start or 0))
        return proc

    def spawn(self, cdir, name, argv, env=None, delay=1.0):
        proc = self._start(cdir, name, argv, env)
        with self._lock:
            self._procs[proc.pid] = (proc, cdir, name, argv, env, delay)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._reap,
                                                name='local-cluster-reaper',
                                                daemon=True)
                self._thread.start()
        return proc

    def _reap(self):
        while True:
            due = []
            with self._lock:
                for pid, entry in list(self._procs.items()):
                    proc, cdir, name, argv, env, delay = entry
                    if proc.poll() is None:
                        continue
                    del self._procs[pid]
                    if cdir.wanted():
                        cdir.count_restart(name)
                        self._pending.append((time.monotonic() + delay, cdir,
                                              name, argv, env, delay))
                now = time.monotonic()
                due = [p for p in self._pending if p[0] <= now]
                self._pending = [p for p in self._pending if p[0] > now]
            for _, cdir, name, argv, env, delay in due:
                if cdir.wanted():
                    self.spawn(cdir, name, argv, env,
                               min(self.MAX_DELAY, delay * 2))
            time.sleep(0.5)


def stop(cdir, timeout=10, names=None):
    """Stop the cluster's processes (or those of ``names``, in that order)
    in reverse start order: TERM, then KILL after *timeout* s.  Returns the
    names that had to be killed."""
    killed = []
    if cdir.exists():
        with open(cdir.file('stopping'), 'w'):
            pass  # no restarts from here on
    running = cdir.running()
    if names is not None:
        order = [n for n in names if n in running]
    else:
        order = [n for n in reversed(PROCESSES) if n in running] + \
            [n for n in running if n not in PROCESSES]
    for name in order:
        pid = running[name]
        start = proc_starttime(pid)
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        deadline = time.monotonic() + timeout
        while proc_starttime(pid) == start and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc_starttime(pid) == start:
            killed.append(name)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            for _ in range(100):
                if proc_starttime(pid) != start:
                    break
                time.sleep(0.05)
        try:
            os.unlink(os.path.join(cdir.pids, name))
        except FileNotFoundError:
            pass
    return killed
