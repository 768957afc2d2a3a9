"""cgroup v1 groups of one container: memory, cpu (shares), cpuset, freezer.

Zun semantics kept (as Docker applies them):

* ``memory`` (MiB) -> ``memory.limit_in_bytes``; the memory+swap limit
  follows ``[DEFAULT] default_memory_swap`` (-1 = unlimited swap, N = N MiB
  of memory+swap, never below the memory limit).  Every write keeps
  ``memsw >= memory``, else the kernel answers EINVAL.
* ``cpu`` -> ``cpu.shares = int(1024 * cpu)`` (at least 2): a weight under
  contention, not a CFS quota.
* ``cpu_policy: dedicated`` -> a cpuset group pinned to the cores Zun chose;
  ``cpuset.cpus`` and ``cpuset.mems`` are set before any process joins.
"""

import errno
import os
import time

UNLIMITED = -1
_HUGE = 1 << 62  # the kernel reports "unlimited" as ~2**63 rounded to a page


def _read(path):
    with open(path) as f:
        return f.read().strip()


def _write(path, value):
    with open(path, 'w') as f:
        f.write(str(value))


def _as_limit(value):
    """int bytes, UNLIMITED mapped to infinity for comparisons."""
    if value is None or int(value) < 0 or int(value) >= _HUGE:
        return float('inf')
    return int(value)


def memory_limits(memory_mib, default_memory_swap_mib):
    """(memory bytes, memory+swap bytes); UNLIMITED where not limited."""
    if memory_mib is None:
        return UNLIMITED, UNLIMITED
    mem = int(memory_mib) * 1024 * 1024
    if default_memory_swap_mib is None or int(default_memory_swap_mib) < 0:
        return mem, UNLIMITED
    return mem, max(mem, int(default_memory_swap_mib) * 1024 * 1024)


def parse_memory_mib(value):
    """Zun stores memory as a string of MiB ("256"); tolerate a unit."""
    if value is None or value == '':
        return None
    text = str(value).strip().upper()
    factor = 1.0
    for suffix, f in (('GIB', 1024), ('GB', 1024), ('G', 1024),
                      ('MIB', 1), ('MB', 1), ('M', 1),
                      ('KIB', 1 / 1024.0), ('KB', 1 / 1024.0),
                      ('K', 1 / 1024.0)):
        if text.endswith(suffix):
            text, factor = text[:-len(suffix)], f
            break
    return int(float(text) * factor)


def cpu_shares(cpu):
    if cpu is None:
        return None
    return max(2, int(1024 * float(cpu)))


def format_cpuset(ids):
    return ','.join(str(i) for i in sorted(ids))


class CgroupSet(object):
    """The groups of one container, named ``<root>/<ctrl>/<parent>/<name>``."""

    # cpuacct: CPU time for ``stats`` (its own hierarchy on some hosts,
    # co-mounted with cpu on others: then both names reach the same group).
    CONTROLLERS = ('memory', 'cpu', 'cpuacct', 'freezer')

    def __init__(self, root, parent, name):
        self.root = root
        self.parent = parent
        self.name = name

    def path(self, controller):
        return os.path.join(self.root, controller, self.parent, self.name)

    def available(self, controller):
        return os.path.isdir(os.path.join(self.root, controller))

    def _ensure_parent(self, controller):
        parent = os.path.join(self.root, controller, self.parent)
        os.makedirs(parent, exist_ok=True)
        if controller == 'cpuset':
            for key in ('cpuset.cpus', 'cpuset.mems'):
                if not _read(os.path.join(parent, key)):
                    _write(os.path.join(parent, key),
                           _read(os.path.join(self.root, 'cpuset', key)))

    def _make(self, controller):
        self._ensure_parent(controller)
        path = self.path(controller)
        os.makedirs(path, exist_ok=True)
        return path

    def set_memory(self, mem_bytes, memsw_bytes):
        path = self.path('memory')
        limit = os.path.join(path, 'memory.limit_in_bytes')
        memsw = os.path.join(path, 'memory.memsw.limit_in_bytes')
        if not os.path.exists(memsw):
            _write(limit, mem_bytes)
            return
        current_memsw = _as_limit(_read(memsw))
        if _as_limit(mem_bytes) > current_memsw:
            # Raising: memsw first so that memsw >= memory throughout.
            _write(memsw, memsw_bytes)
            _write(limit, mem_bytes)
        else:
            _write(limit, mem_bytes)
            _write(memsw, memsw_bytes)

    def set_cpu_shares(self, shares):
        _write(os.path.join(self.path('cpu'), 'cpu.shares'),
               shares if shares is not None else 1024)

    def create(self, memory_mib=None, default_memory_swap_mib=-1, cpu=None,
               cpuset_cpus=None, cpuset_mems=None):
        """Create (or reset) the groups; returns the supervisor's view:
        ``{'cgroups': [paths to join], 'memory_cgroup': path}``."""
        groups = []
        for controller in self.CONTROLLERS:
            if self.available(controller):
                groups.append(self._make(controller))
        if self.available('memory'):
            mem, memsw = memory_limits(memory_mib, default_memory_swap_mib)
            self.set_memory(mem, memsw)
        if self.available('cpu'):
            self.set_cpu_shares(cpu_shares(cpu))
        if self.available('freezer'):
            _write(os.path.join(self.path('freezer'), 'freezer.state'),
                   'THAWED')
        if cpuset_cpus:
            path = self._make('cpuset')
            mems = cpuset_mems or _read(os.path.join(
                self.root, 'cpuset', self.parent, 'cpuset.mems'))
            # Both must be set before a process joins (else ENOSPC).
            _write(os.path.join(path, 'cpuset.cpus'),
                   cpuset_cpus if isinstance(cpuset_cpus, str)
                   else format_cpuset(cpuset_cpus))
            _write(os.path.join(path, 'cpuset.mems'),
                   mems if isinstance(mems, str) else format_cpuset(mems))
            groups.append(path)
        elif os.path.isdir(self.path('cpuset')):
            self._rmdir(self.path('cpuset'))
        # What the container sees at /sys/fs/cgroup/<controller>: its own
        # group (as under Docker's cgroup namespace), so it can read its
        # limits.  Real paths: cpu may be a symlink to cpu,cpuacct.
        views = []
        for group in groups:
            controller_root = os.path.realpath(os.path.join(
                self.root, os.path.relpath(group, self.root).split(os.sep)[0]))
            view = [os.path.realpath(group), controller_root]
            if view not in views:
                views.append(view)
        return {'cgroups': groups,
                'cgroup_views': views,
                'memory_cgroup': self.path('memory')
                if self.available('memory') else None}

    def update(self, memory_mib=None, default_memory_swap_mib=-1, cpu=None):
        if memory_mib is not None and os.path.isdir(self.path('memory')):
            self.set_memory(*memory_limits(memory_mib,
                                           default_memory_swap_mib))
        if cpu is not None and os.path.isdir(self.path('cpu')):
            self.set_cpu_shares(cpu_shares(cpu))

    def freeze(self, frozen=True):
        path = os.path.join(self.path('freezer'), 'freezer.state')
        _write(path, 'FROZEN' if frozen else 'THAWED')
        want = 'FROZEN' if frozen else 'THAWED'
        for _ in range(100):
            if _read(path) == want:
                return
            time.sleep(0.02)

    def frozen(self):
        try:
            return _read(os.path.join(self.path('freezer'),
                                      'freezer.state')) == 'FROZEN'
        except OSError:
            return False

    def pids(self):
        try:
            return [int(p) for p in _read(os.path.join(
                self.path('memory'), 'cgroup.procs')).split()]
        except OSError:
            return []

    def cpu_usage_ns(self):
        """CPU time used by the container's processes (cpuacct.usage)."""
        try:
            return int(_read(os.path.join(self.path('cpuacct'),
                                          'cpuacct.usage')))
        except (OSError, ValueError):
            return None

    def memory_cache(self):
        """Inactive page cache, which Docker's stats leave out of "usage"."""
        try:
            with open(os.path.join(self.path('memory'), 'memory.stat')) as f:
                for line in f:
                    key, _, value = line.partition(' ')
                    if key == 'total_inactive_file':
                        return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def memory_stats(self):
        path = self.path('memory')
        try:
            usage = int(_read(os.path.join(path, 'memory.usage_in_bytes')))
            limit = int(_read(os.path.join(path, 'memory.limit_in_bytes')))
        except OSError:
            return None
        return usage, limit

    @staticmethod
    def _rmdir(path, attempts=50):
        for _ in range(attempts):
            try:
                os.rmdir(path)
                return True
            except FileNotFoundError:
                return True
            except OSError as e:
                if e.errno != errno.EBUSY:
                    raise
                time.sleep(0.05)
        return False

    def remove(self):
        ok = True
        for controller in self.CONTROLLERS + ('cpuset',):
            path = self.path(controller)
            if os.path.isdir(path):
                ok = self._rmdir(path) and ok
        return ok


def remove_stale(root, parent, keep):
    """rmdir the empty per-container groups whose name is not in *keep*
    (left behind when a state directory was wiped); returns their names."""
    removed = set()
    for controller in CgroupSet.CONTROLLERS + ('cpuset',):
        base = os.path.join(root, controller, parent)
        try:
            names = os.listdir(base)
        except OSError:
            continue
        for name in names:
            path = os.path.join(base, name)
            if name in keep or not os.path.isdir(path):
                continue
            try:
                if _read(os.path.join(path, 'cgroup.procs')):
                    continue
                os.rmdir(path)
                removed.add(name)
            except OSError:
                pass
    return sorted(removed)
