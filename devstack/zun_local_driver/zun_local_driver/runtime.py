"""A container's on-disk state and its supervisor, seen from its manager.

Used by the Magnum local cluster's kubelet stand-in
(``devstack/magnum_local_driver``; it was written for the retired
process-backed Zun driver): it describes a container as a spec
(``build_env``), ``launch``es it and ``destroy``s it.

The manager never waits on a container process: it starts a supervisor
(``supervisor.py``) with Popen, reaps the short-lived intermediate process
at once, and afterwards only reads the files the supervisor writes.  All
waits here are short sleeps (green under eventlet), never a blocking
``waitpid`` on a container.
"""

import json
import os
import shutil
import signal as signal_module
import subprocess
import sys
import time

from zun_local_driver import addresses
from zun_local_driver import supervisor as sv

SUPERVISOR_SCRIPT = os.path.abspath(sv.__file__.replace('.pyc', '.py'))
SUPERVISOR_LOG = 'supervisor.log'
REQUESTED_FILE = 'requested.json'

CREATED = 'created'
RUNNING = 'running'
EXITED = 'exited'
MISSING = 'missing'


class StartError(Exception):
    """The container could not be set up (volumes, cgroups, supervisor)."""


def alive(pid, starttime):
    """True if *pid* runs, is not a zombie and is the process we started."""
    if not pid:
        return False
    st = sv.proc_stat(int(pid))
    if st is None or st[0] in ('Z', 'X'):
        return False
    return starttime is None or st[1] == int(starttime)


def parse_signal(value, default=signal_module.SIGKILL):
    """Zun passes signals as strings ('SIGTERM', 'TERM', '15') or None."""
    if value is None or str(value).strip() in ('', 'None'):
        return default
    text = str(value).strip().upper()
    if text.isdigit():
        return int(text)
    if not text.startswith('SIG'):
        text = 'SIG' + text
    try:
        return int(getattr(signal_module, text))
    except AttributeError:
        raise ValueError('unknown signal %r' % value)


class ContainerDir(object):
    """``<state_dir>/<container uuid>/``."""

    def __init__(self, state_dir, uuid):
        self.uuid = uuid
        self.path = os.path.join(state_dir, uuid)

    def file(self, name):
        return os.path.join(self.path, name)

    def exists(self):
        return os.path.isfile(self.file(sv.SPEC_FILE))

    def _read(self, name):
        try:
            with open(self.file(name)) as f:
                return json.load(f)
        except (FileNotFoundError, ValueError):
            return None

    def spec(self):
        return self._read(sv.SPEC_FILE)

    def write_spec(self, spec):
        os.makedirs(self.path, exist_ok=True)
        sv.write_json_atomic(self.file(sv.SPEC_FILE), spec)

    def supervisor(self):
        return self._read(sv.SUPERVISOR_FILE)

    def status(self):
        return self._read(sv.STATUS_FILE)

    def supervisor_alive(self):
        info = self.supervisor()
        return bool(info) and alive(info.get('pid'), info.get('starttime'))

    def child_alive(self):
        info = self.supervisor()
        return bool(info) and alive(info.get('child_pid'),
                                    info.get('child_starttime'))

    def state(self):
        """(state, details) where details carry the times and exit data."""
        if not self.exists():
            return MISSING, {}
        status = self.status()
        info = self.supervisor() or {}
        if status is not None:
            return EXITED, self._with_request(status)
        if info:
            if self.child_alive():
                return RUNNING, {'started_at': info.get('exec_started_at')}
            if not self.supervisor_alive():
                # Both gone and no status written: the supervisor was
                # killed from outside; the exit code is unknown.
                return EXITED, {'exit_code': 255, 'signal': None,
                                'oom': False,
                                'error': 'container supervisor vanished',
                                'started_at': info.get('exec_started_at'),
                                'finished_at': None}
            # Supervisor alive, child gone: status is being written.
            for _ in range(20):
                time.sleep(0.05)
                status = self.status()
                if status is not None:
                    return EXITED, self._with_request(status)
            return RUNNING, {'started_at': info.get('exec_started_at')}
        return CREATED, {}

    def _with_request(self, status):
        request = self._read(REQUESTED_FILE)
        if request:
            status = dict(status, requested=request.get('action'))
        return status

    def mark_requested(self, action):
        """Remember that the API asked for this stop/kill (not an outside
        kill), so the exit is not reported as a failure."""
        sv.write_json_atomic(self.file(REQUESTED_FILE),
                             {'action': action, 'at': sv.utcnow_iso()})

    def clear_run_files(self):
        for name in (sv.STATUS_FILE, sv.SUPERVISOR_FILE, REQUESTED_FILE,
                     sv.PID_FILE):
            try:
                os.unlink(self.file(name))
            except FileNotFoundError:
                pass

    def start(self, python=None, timeout=60):
        """Start the supervisor; returns its report ``{'ok', 'error'}``."""
        python = python or sys.executable
        self.clear_run_files()
        log = open(self.file(SUPERVISOR_LOG), 'ab')
        try:
            proc = subprocess.Popen(
                [python, '-I', '-S', SUPERVISOR_SCRIPT,
                 self.file(sv.SPEC_FILE)],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                cwd='/', close_fds=True, start_new_session=True)
        finally:
            log.close()
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise StartError('container start timed out after %ss' % timeout)
        try:
            return json.loads(out.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise StartError('supervisor gave no start report (see %s)'
                             % self.file(SUPERVISOR_LOG))

    def signal(self, signum):
        """Send *signum* to the container's pid 1; False if not running."""
        info = self.supervisor()
        if not info or not self.child_alive():
            return False
        try:
            os.kill(int(info['child_pid']), signum)
        except ProcessLookupError:
            return False
        return True

    def wait_exited(self, timeout):
        """Wait until pid 1 has gone and its status is written."""
        deadline = time.monotonic() + max(0, timeout)
        delay = 0.02
        while True:
            state, _ = self.state()
            if state != RUNNING:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.25)

    def wait_supervisor_gone(self, timeout):
        deadline = time.monotonic() + max(0, timeout)
        while self.supervisor_alive():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def stop(self, timeout, first_signal=signal_module.SIGTERM):
        """SIGTERM, wait *timeout* s, then SIGKILL (pid 1 of a namespace
        ignores signals it has no handler for)."""
        if self.signal(first_signal):
            if not self.wait_exited(timeout):
                self.signal(signal_module.SIGKILL)
                self.wait_exited(30)
        return self.state()

    def read_log(self, tail=None):
        try:
            with open(self.file(sv.OUTPUT_FILE), 'rb') as f:
                data = f.read()
        except FileNotFoundError:
            return ''
        text = data.decode('utf-8', errors='replace')
        if tail is not None:
            lines = text.splitlines(True)
            text = ''.join(lines[-tail:]) if tail > 0 else ''
        return text

    def remove(self):
        shutil.rmtree(self.path, ignore_errors=True)


def build_env(environment, runtime_dir, addr, hostname, default_path):
    """The environment of a container's pid 1: the requested one with "all
    interfaces" pointed at *addr*, the runtime's ``bin/`` first in PATH."""
    env = addresses.localise_env(environment or {}, addr)
    base_path = env.get('PATH') or default_path
    env['PATH'] = os.path.join(runtime_dir, 'bin') + ':' + base_path
    env.setdefault('VIRTUAL_ENV', runtime_dir)
    env.setdefault('HOME', '/root')
    env.setdefault('HOSTNAME', hostname)
    env.setdefault('LANG', 'C.UTF-8')
    return env


def launch(cdir, cgroupset, python=None, timeout=60, **limits):
    """Create the container's cgroups (*limits*: ``CgroupSet.create``'s
    arguments), record them in its spec and start its supervisor.

    Returns the supervisor's report.  Raises ``StartError`` when set-up
    failed before exec (a mount, a cgroup): Docker's start fails the same
    way.  A command that cannot be exec'd is an exit (127/126), not an
    error here.
    """
    spec = cdir.spec()
    spec.update(cgroupset.create(**limits))
    cdir.write_spec(spec)
    report = cdir.start(python=python, timeout=timeout)
    if not report.get('ok'):
        # The status file follows the report within milliseconds.
        for _ in range(100):
            if cdir.status() is not None:
                break
            time.sleep(0.02)
        status = cdir.status() or {}
        if status.get('exit_code') in (125, 255) or not status:
            raise StartError(report.get('error')
                             or 'container failed to start')
    return report


def destroy(cdir, cgroupset, timeout=30):
    """SIGKILL pid 1 if it runs, wait for the supervisor to exit (the
    volumes' loop devices go with its mount namespace), remove the cgroups
    and the state directory.  Returns what could not be cleaned (text)."""
    problems = []
    if cdir.exists():
        if cdir.child_alive():
            cdir.signal(signal_module.SIGKILL)
            if cgroupset.frozen():
                cgroupset.freeze(False)
            cdir.wait_exited(timeout)
        if not cdir.wait_supervisor_gone(timeout):
            problems.append('supervisor of %s still running' % cdir.uuid)
        if not cgroupset.remove():
            problems.append('cgroups of %s not removed (busy)' % cdir.uuid)
        cdir.remove()
    return problems


def list_dirs(state_dir):
    try:
        names = os.listdir(state_dir)
    except FileNotFoundError:
        return []
    return [ContainerDir(state_dir, n) for n in names
            if os.path.isfile(os.path.join(state_dir, n, sv.SPEC_FILE))]
