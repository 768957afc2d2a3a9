"""Per-container supervisor of zun_local_driver's runtime (the kubelet stand-in's).

Run as a script by a fresh interpreter (``python -I -S supervisor.py
<spec.json>``); it imports nothing but the standard library, so it never
sees eventlet even when zun-compute started it.

Life of one container start::

    zun-compute --Popen--> intermediate --fork--> supervisor --fork--> pid 1
                               |                      |
                               exits once the         waits for pid 1, then
                               exec outcome is known  writes status.json

* The intermediate process lets zun-compute reap its only child within
  milliseconds; the supervisor is re-parented to the host's init and
  outlives a zun-compute restart.
* The supervisor unshares mount, pid and UTS namespaces, makes every mount
  private, loop/bind-mounts the container's volumes, then forks the
  container's first process (pid 1 of the new pid namespace).  It puts that
  process in the container's cgroups *before* releasing it to exec.
* When pid 1 dies the kernel kills the rest of the namespace; the
  supervisor unmounts the volumes, removes the mount points no other container
  still uses (``MountPoints``) and writes ``status.json`` (exit code, signal,
  OOM flag, finish time)
  atomically.

Files in the container's state directory (all written atomically):

``supervisor.json``  pid + start time of the supervisor and of pid 1
``status.json``      how pid 1 ended (absent while it runs)
``output.log``       stdout and stderr of the container
"""

import ctypes
import datetime
import errno
import fcntl
import json
import os
import re
import signal
import socket
import subprocess
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWPID = 0x20000000
CLONE_NEWCGROUP = 0x02000000
MS_BIND = 0x1000
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MNT_DETACH = 0x2

SPEC_FILE = 'spec.json'
SUPERVISOR_FILE = 'supervisor.json'
STATUS_FILE = 'status.json'
OUTPUT_FILE = 'output.log'
# Plain-text pid of the container's pid 1, which leads its own process
# group: `kill -- -<pid>` stops the container (what local-cloud's `down`
# does).  Present only while pid 1 lives.
PID_FILE = 'pid'

_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, '%s: %s' % (what, os.strerror(err)))


def unshare(flags):
    _check(_libc.unshare(ctypes.c_int(flags)), 'unshare')


def mount(source, target, fstype, flags=0, data=None):
    def enc(value):
        return value.encode() if value is not None else None
    _check(_libc.mount(enc(source), enc(target), enc(fstype),
                       ctypes.c_ulong(flags), enc(data)),
           'mount %s on %s' % (source, target))


def umount(target, flags=0):
    _check(_libc.umount2(target.encode(), ctypes.c_int(flags)),
           'umount %s' % target)


def proc_stat(pid):
    """(state, start time in clock ticks) of a process, or None."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            data = f.read()
    except (OSError, ValueError):
        return None
    rest = data[data.rindex(')') + 2:].split()
    return rest[0], int(rest[19])


def utcnow_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime(
        '%Y-%m-%dT%H:%M:%S.%fZ')


def write_json_atomic(path, data):
    tmp = '%s.tmp.%d' % (path, os.getpid())
    with open(tmp, 'w') as f:
        json.dump(data, f, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def read_oom_kills(memory_cgroup):
    """The ``oom_kill`` counter of a v1 memory cgroup (0 if unknown).

    *memory_cgroup* is a path or an open directory fd (the supervisor keeps
    one: the container's cgroup view hides the path in their namespace).
    """
    if memory_cgroup is None or memory_cgroup == '':
        return 0
    try:
        if isinstance(memory_cgroup, int):
            opener = lambda path, flags: os.open(  # noqa: E731
                path, flags, dir_fd=memory_cgroup)
            f = open('memory.oom_control', opener=opener)
        else:
            f = open(os.path.join(memory_cgroup, 'memory.oom_control'))
        with f:
            for line in f:
                key, _, value = line.partition(' ')
                if key == 'oom_kill':
                    return int(value)
    except OSError:
        pass
    return 0


def makedirs_recorded(path, created):
    """``mkdir -p`` that appends every directory it creates to *created*."""
    missing = []
    path = os.path.abspath(path)
    while not os.path.isdir(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for p in reversed(missing):
        os.mkdir(p, 0o755)
        created.append(p)


def loop_image_in_use(image):
    out = subprocess.run(['losetup', '-j', image], capture_output=True,
                         text=True).stdout
    return bool(out.strip())


def setup_mounts(mounts, created_dirs):
    """Mount volumes; returns the targets mounted (in order)."""
    mounted = []
    for m in mounts:
        source, target = m['source'], m['target']
        if m.get('type') == 'bind' and os.path.isfile(source):
            parent = os.path.dirname(target)
            makedirs_recorded(parent, created_dirs)
            if not os.path.exists(target):
                open(target, 'a').close()
                created_dirs.append(target)
        else:
            makedirs_recorded(target, created_dirs)
        if m.get('type') == 'bind':
            mount(source, target, None, 0x1000 | MS_REC)  # MS_BIND
        else:
            if loop_image_in_use(source):
                raise RuntimeError('volume image %s is already loop-mounted '
                                   '(attached to another container?)'
                                   % source)
            cmd = ['mount', '-t', m.get('fstype', 'ext4'),
                   '-o', m.get('options', 'loop,discard'), source, target]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                raise RuntimeError('%s failed: %s' % (' '.join(cmd),
                                                      res.stderr.strip()))
        mounted.append(target)
    return mounted


def _unescape_mountinfo(field):
    return re.sub(r'\\([0-7]{3})', lambda m: chr(int(m.group(1), 8)), field)


#: The host's /proc, opened before the container mounts its own over /proc in
#: the namespace the supervisor shares with it.
_host_proc = None


def open_host_proc():
    global _host_proc
    if _host_proc is None:
        _host_proc = os.open('/proc', os.O_RDONLY | os.O_DIRECTORY)


def paths_in_use_elsewhere():
    """Mount points of every other mount namespace, and every process's cwd.

    Containers share the host's file system, so two containers mounting at one
    path (a home at /home/jovyan, a Zun-injected file) share the mount point.
    Since Linux 3.18 removing a path that is a mount point in another namespace
    succeeds and detaches that mount there: a stopping container must not remove
    a mount point (or working directory) another one still uses.
    Returns None when /proc cannot be read (then nothing may be removed).
    """
    proc = _host_proc
    if proc is None:
        return None

    def opener(path, flags):
        return os.open(path, flags, dir_fd=proc)

    try:
        own = os.readlink('self/ns/mnt', dir_fd=proc)
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return None
    seen, points = {own}, set()
    for pid in pids:
        try:
            points.add(os.readlink(pid + '/cwd', dir_fd=proc))
            ns = os.readlink(pid + '/ns/mnt', dir_fd=proc)
            if ns in seen:
                continue
            seen.add(ns)
            with open(pid + '/mountinfo', opener=opener) as f:
                for line in f:
                    points.add(_unescape_mountinfo(line.split()[4]))
        except OSError:
            continue
    return points


class MountPoints:
    """The mount points and directories supervisors created on the shared host.

    One lock and one registry (a JSON list) per state directory: a path is
    recorded by the container that creates it and removed by whichever container
    stops last while it is unused, so neither the creator's early exit nor a
    later user leaves or breaks anything.
    """

    def __init__(self, lock_path):
        self.lock_path = lock_path
        self.registry_path = lock_path + '.json' if lock_path else None
        self._fd = None

    def __enter__(self):
        if self.lock_path:
            self._fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _read(self):
        try:
            with open(self.registry_path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return []

    def _write(self, paths):
        tmp = '%s.tmp.%d' % (self.registry_path, os.getpid())
        with open(tmp, 'w') as f:
            json.dump(paths, f)
        os.replace(tmp, self.registry_path)

    def record(self, created):
        if self.registry_path and created:
            known = self._read()
            self._write(known + [p for p in created if p not in known])

    def remove_unused(self, created):
        """Remove what nobody uses any more: ours and what earlier ones left."""
        paths = list(created)
        if self.registry_path:
            paths = self._read() + [p for p in created if p not in paths]
        busy = paths_in_use_elsewhere()
        if busy is None:
            return  # cannot tell: leave everything (empty paths) in place
        left = []
        # deepest first: a directory empties before its parent is tried
        for path in sorted(paths, key=lambda p: p.count('/'), reverse=True):
            if path in busy or not _remove_if_empty(path):
                left.append(path)
        if self.registry_path:
            self._write([p for p in paths if p in left])


def _remove_if_empty(path):
    """True when ``path`` is gone afterwards."""
    try:
        if os.path.isdir(path):
            os.rmdir(path)
        elif os.path.isfile(path) and os.path.getsize(path) == 0:
            os.unlink(path)
        return not os.path.lexists(path)
    except OSError:
        return False


def teardown_mounts(mounted, created_dirs, lock_path=None):
    for target in reversed(mounted):
        try:
            umount(target)
        except OSError:
            try:
                umount(target, MNT_DETACH)
            except OSError:
                pass
    with MountPoints(lock_path) as points:
        points.remove_unused(created_dirs)


def cgroup_view(views):
    """Show the container its own cgroups, as Docker's cgroup namespace does.

    Runs in the container's first process once it is in its groups: a cgroup
    namespace rooted there (``/proc/self/cgroup`` reads ``/``) and each group
    bind-mounted over its hierarchy's mount point in the container's (private)
    mount namespace, so ``/sys/fs/cgroup/memory/memory.limit_in_bytes`` is the
    container's limit.  The namespace is the supervisor's too, so these mounts
    go with it and ``exec`` sees the same; the supervisor reads the OOM count
    through a directory fd it opened before.
    """
    if not views:
        return
    unshare(CLONE_NEWCGROUP)
    for group, hierarchy in views:
        if os.path.isdir(group) and os.path.isdir(hierarchy):
            mount(group, hierarchy, None, MS_BIND)


class ExecError(Exception):
    """(exit code, message) of a command that could not be exec'd."""


def child_main(spec, go_r, err_w, log_fd):
    """Runs as pid 1 of the new pid namespace; never returns."""
    try:
        os.read(go_r, 1)  # wait until placed in cgroups
        os.close(go_r)
        hostname = spec.get('hostname')
        if hostname:
            try:
                socket.sethostname(hostname)
            except OSError:
                pass
        mount('proc', '/proc', 'proc', MS_NOSUID | MS_NODEV | MS_NOEXEC)
        cgroup_view(spec.get('cgroup_views') or [])
        os.setsid()
        for sig in range(1, signal.NSIG):
            if sig in (signal.SIGKILL, signal.SIGSTOP):
                continue
            try:
                signal.signal(sig, signal.SIG_DFL)
            except (OSError, ValueError, RuntimeError):
                pass
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        null = os.open('/dev/null', os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.chdir(spec.get('cwd') or '/')
        argv = spec['argv']
        env = spec.get('env') or {}
        try:
            os.execvpe(argv[0], argv, env)
        except FileNotFoundError:
            where = 'no such file' if '/' in argv[0] else \
                'executable file not found in $PATH'
            raise ExecError(127, 'exec: "%s": %s' % (argv[0], where))
        except PermissionError:
            raise ExecError(126, 'exec: "%s": permission denied' % argv[0])
    except BaseException as e:  # report and die like a shell would
        if isinstance(e, ExecError):
            code, msg = e.args
        else:
            code = 126 if isinstance(e, OSError) and e.errno in (
                errno.EACCES, errno.ENOEXEC) else 127
            msg = 'container init failed: %s: %s' % (type(e).__name__, e)
        try:
            os.write(err_w, json.dumps({'code': code,
                                        'error': msg}).encode())
        finally:
            os._exit(code)


class Reporter(object):
    """Sends the start-up outcome to the intermediate process, once."""

    def __init__(self, fd):
        self.fd = fd

    def send(self, ok, error=None):
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        try:
            os.write(fd, json.dumps({'ok': ok, 'error': error}).encode())
        except OSError:
            pass
        finally:
            os.close(fd)


def run_supervisor(state_dir, spec, reporter):
    """The long-lived supervisor; returns the exit status dict."""
    started = {'pid': os.getpid(),
               'starttime': proc_stat(os.getpid())[1],
               'started_at': utcnow_iso()}
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    memory_cgroup = spec.get('memory_cgroup')
    # one lock for all the containers of this state directory (one host)
    lock_path = os.path.join(os.path.dirname(os.path.abspath(state_dir)),
                             '.mount-points.lock')
    created_dirs = []
    mounted = []
    status = None
    try:
        open_host_proc()
        unshare(CLONE_NEWNS | CLONE_NEWUTS)
        mount(None, '/', None, MS_REC | MS_PRIVATE)
        with MountPoints(lock_path) as points:
            try:
                mounted = setup_mounts(spec.get('mounts') or [], created_dirs)
                cwd = spec.get('cwd') or '/'
                if not os.path.isdir(cwd):
                    makedirs_recorded(cwd, created_dirs)
            finally:
                points.record(created_dirs)
        # The first process forked after this becomes pid 1 of the new
        # namespace, so nothing may fork (mount(8) above did) from here on
        # except the container itself.
        unshare(CLONE_NEWPID)
    except Exception as e:
        teardown_mounts(mounted, created_dirs, lock_path)
        status = {'exit_code': 125, 'signal': None, 'oom': False,
                  'error': 'container set-up failed: %s' % e,
                  'finished_at': utcnow_iso(), 'started_at': None}
        return status

    log_fd = os.open(os.path.join(state_dir, OUTPUT_FILE),
                     os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    go_r, go_w = os.pipe()
    err_r, err_w = os.pipe()
    if memory_cgroup:
        try:
            memory_cgroup = os.open(memory_cgroup, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            memory_cgroup = None
    oom_before = read_oom_kills(memory_cgroup)
    pid = os.fork()
    if pid == 0:
        os.close(go_w)
        os.close(err_r)
        child_main(spec, go_r, err_w, log_fd)
    os.close(go_r)
    os.close(err_w)
    os.close(log_fd)

    child = None
    forward = {}

    def _forward(signum, frame):
        try:
            os.kill(pid, signum)
        except OSError:
            pass
    try:
        for group in spec.get('cgroups') or []:
            with open(os.path.join(group, 'cgroup.procs'), 'w') as f:
                f.write(str(pid))
        child_stat = proc_stat(pid)
        child = {'pid': pid, 'starttime': child_stat[1] if child_stat
                 else None}
        started['child_pid'] = pid
        started['child_starttime'] = child['starttime']
        started['exec_started_at'] = utcnow_iso()
        write_json_atomic(os.path.join(state_dir, SUPERVISOR_FILE), started)
        pid_tmp = os.path.join(state_dir, PID_FILE + '.tmp')
        with open(pid_tmp, 'w') as f:
            f.write('%d\n' % pid)
        os.rename(pid_tmp, os.path.join(state_dir, PID_FILE))
        forward[signal.SIGTERM] = signal.signal(signal.SIGTERM, _forward)
        os.write(go_w, b'g')
    except Exception as e:
        os.kill(pid, signal.SIGKILL)
        setup_error = 'container set-up failed: %s' % e
    else:
        setup_error = None
    finally:
        os.close(go_w)

    # Exec outcome: EOF on the close-on-exec pipe means exec succeeded.
    chunks = []
    while True:
        try:
            data = os.read(err_r, 4096)
        except InterruptedError:
            continue
        if not data:
            break
        chunks.append(data)
    os.close(err_r)
    exec_error = None
    if chunks:
        try:
            exec_error = json.loads(b''.join(chunks).decode())['error']
        except ValueError:
            exec_error = b''.join(chunks).decode(errors='replace')
    reporter.send(not (exec_error or setup_error), setup_error or exec_error)

    while True:
        try:
            _, wstatus = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
        except ChildProcessError:
            wstatus = None
            break
    finished_at = utcnow_iso()
    try:
        os.unlink(os.path.join(state_dir, PID_FILE))
    except FileNotFoundError:
        pass
    oom = read_oom_kills(memory_cgroup) > oom_before
    if wstatus is None:
        code, sig = 255, None
    elif os.WIFSIGNALED(wstatus):
        sig = os.WTERMSIG(wstatus)
        code = 128 + sig
    else:
        sig = None
        code = os.WEXITSTATUS(wstatus)
    teardown_mounts(mounted, created_dirs, lock_path)
    return {'exit_code': code, 'signal': sig, 'oom': oom,
            'error': setup_error or exec_error,
            'started_at': started.get('exec_started_at'),
            'finished_at': finished_at}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    spec_path = os.path.abspath(argv[0])
    state_dir = os.path.dirname(spec_path)
    with open(spec_path) as f:
        spec = json.load(f)
    report_r, report_w = os.pipe()
    pid = os.fork()
    if pid:
        # Intermediate: relay the exec outcome, then exit so the caller
        # can reap us at once.
        os.close(report_w)
        chunks = []
        while True:
            data = os.read(report_r, 4096)
            if not data:
                break
            chunks.append(data)
        report = b''.join(chunks).decode() or json.dumps(
            {'ok': False, 'error': 'supervisor died during start-up'})
        sys.stdout.write(report + '\n')
        sys.stdout.flush()
        os._exit(0)
    os.close(report_r)
    # Detach from the caller's stdio: the supervisor outlives it.
    null = os.open('/dev/null', os.O_RDWR)
    for fd in (0, 1):
        os.dup2(null, fd)
    os.close(null)
    reporter = Reporter(report_w)
    status = None
    try:
        status = run_supervisor(state_dir, spec, reporter)
    except BaseException as e:
        status = {'exit_code': 255, 'signal': None, 'oom': False,
                  'error': 'supervisor failed: %s' % e,
                  'started_at': None, 'finished_at': utcnow_iso()}
    finally:
        try:
            if status is not None:
                # Written before the report: a caller that hears of a
                # failed start finds the status file already there.
                write_json_atomic(os.path.join(state_dir, STATUS_FILE),
                                  status)
                reporter.send(False, status.get('error'))
        finally:
            os._exit(0)


if __name__ == '__main__':
    main()
