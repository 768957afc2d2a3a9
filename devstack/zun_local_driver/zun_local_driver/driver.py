"""``ProcessDriver``: Zun containers as supervised local processes.

Select it in zun.conf with ``[DEFAULT] container_driver = process`` (entry
point ``zun.container.driver:process``) and ``capsule_driver = process``.
"""

import json
import os
import platform
import shlex
import subprocess
import time
import uuid

from oslo_log import log as logging
from oslo_utils import units
import psutil

from zun.common import consts
from zun.common import context as zun_context
from zun.common import exception
import zun.conf
from zun.container import driver
from zun import objects

from zun_local_driver import addresses
from zun_local_driver import cgroups
from zun_local_driver import config  # noqa: F401  (registers the options)
from zun_local_driver import images as image_map
from zun_local_driver import runtime
from zun_local_driver import volumes

CONF = zun.conf.CONF
LOG = logging.getLogger(__name__)

# `docker stop` without -t (Zun's Docker driver passes none when the API
# request has no timeout).
DOCKER_STOP_TIMEOUT = 10
ADDRESS_NAMESPACE = uuid.UUID('6d3c1a52-4a7e-4d0c-9a58-3f3b3d0f6a11')


def _opts():
    return CONF.local_driver


def _iso_to_display(value):
    """'2026-11-26T09:15:00.123Z' -> '2026-11-26 09:15:00 UTC'."""
    if not value:
        return 'unknown time'
    return value[:19].replace('T', ' ') + ' UTC'


def _signal_name(signum):
    import signal as signal_module
    try:
        return signal_module.Signals(signum).name
    except ValueError:
        return 'signal %d' % signum


def describe_exit(details, memory_mib=None):
    """(status_detail, status_reason) for an exited container.

    ``status_detail`` follows Docker's ``Exited(<code>)`` form with an
    absolute time (a changing "n ago" would mean a DB write per sync).
    """
    code = details.get('exit_code')
    detail = 'Exited(%s) %s' % (code, _iso_to_display(
        details.get('finished_at')))
    reason = None
    if details.get('oom'):
        limit = (' (memory limit %s MiB)' % memory_mib) if memory_mib else ''
        reason = 'OOMKilled: the container ran out of memory%s' % limit
    elif details.get('error'):
        reason = details['error']
    elif details.get('requested'):
        reason = None  # stopped or killed through the API, as asked
    elif details.get('signal'):
        reason = 'Killed by %s' % _signal_name(details['signal'])
    return detail, reason


def _set_if_changed(obj, field, value):
    if getattr(obj, field) != value:
        setattr(obj, field, value)


class ProcessDriver(driver.BaseDriver, driver.ContainerDriver,
                    driver.CapsuleDriver):
    """Runs each Zun container as a local process; see README.md."""

    capabilities = {
        'support_sandbox': False,
        'support_standalone': True,
        'runtime': 'process',
    }

    def __init__(self):
        super(ProcessDriver, self).__init__()
        opts = _opts()
        self.state_dir = opts.state_dir
        os.makedirs(self.state_dir, exist_ok=True)
        self.images = image_map.parse_image_map(opts.images)
        self.volume_images = volumes.VolumeImages(opts.volumes_dir)
        if 'cinder' in self.volume_drivers:
            self.volume_drivers['cinder'] = volumes.build_cinder_driver(
                self.volume_images)
        self._last_volume_sweep = 0.0
        missing = [c for c in ('memory', 'cpu') if not os.path.isdir(
            os.path.join(opts.cgroup_root, c))]
        if missing:
            # e.g. under `ip netns exec`, which mounts a fresh /sys without
            # the cgroup hierarchies: limits would silently not apply.
            LOG.warning('No cgroup v1 %s hierarchy under %s: containers '
                        'will run WITHOUT memory/CPU limits',
                        ' or '.join(missing), opts.cgroup_root)
        try:
            stale = cgroups.remove_stale(
                opts.cgroup_root, opts.cgroup_parent,
                set(d.uuid for d in runtime.list_dirs(self.state_dir)))
            if stale:
                LOG.info('Removed %d stale container cgroup(s)', len(stale))
        except Exception:
            LOG.exception('Could not clean stale cgroups')
        LOG.info('Process container driver: state in %s, %d image(s): %s',
                 self.state_dir, len(self.images),
                 ', '.join('%s%s -> %s' % (r, ':' + t if t else '', d)
                           for (r, t), d in sorted(self.images.items(),
                                                   key=str)))

    # ------------------------------------------------------------------
    # helpers

    def _dir(self, container):
        return runtime.ContainerDir(self.state_dir, container.uuid)

    def _cgroups(self, container_uuid):
        opts = _opts()
        return cgroups.CgroupSet(opts.cgroup_root, opts.cgroup_parent,
                                 container_uuid)

    def _memory_mib(self, container):
        return cgroups.parse_memory_mib(container.memory)

    def _runtime_dir(self, repo, tag):
        runtime_dir = image_map.lookup(self.images, repo, tag)
        if runtime_dir and os.path.isdir(runtime_dir):
            return runtime_dir
        name = '%s:%s' % (repo, tag) if tag else repo
        if runtime_dir:
            raise exception.ImageNotFound(
                'image %s not found: its runtime directory %s does not exist '
                'on host %s' % (name, runtime_dir, CONF.host))
        raise exception.ImageNotFound(
            'image %s not found on host %s (the process driver only runs '
            'images listed in [local_driver] images)' % (name, CONF.host))

    def _populate(self, container, force=False):
        """Copy the on-disk state into *container* (fields changed only)."""
        if container.task_state and not force:
            return container
        cdir = self._dir(container)
        state, details = cdir.state()
        if state == runtime.MISSING:
            if container.container_id and container.status not in (
                    consts.CREATING, consts.DELETING, consts.DELETED,
                    consts.ERROR):
                _set_if_changed(container, 'status', consts.ERROR)
                _set_if_changed(container, 'status_reason',
                                'container %s has no state on host %s'
                                % (container.uuid, CONF.host))
                _set_if_changed(container, 'status_detail', None)
            return container
        if state == runtime.RUNNING:
            paused = self._cgroups(container.uuid).frozen()
            detail = 'Up since %s%s' % (
                _iso_to_display(details.get('started_at')),
                ' (paused)' if paused else '')
            _set_if_changed(container, 'status',
                            consts.PAUSED if paused else consts.RUNNING)
            _set_if_changed(container, 'status_detail', detail)
            _set_if_changed(container, 'status_reason', None)
        elif state == runtime.EXITED:
            if container.status == consts.ERROR and \
                    not details.get('started_at'):
                # Set-up failed before exec: keep the Error the manager
                # recorded (Docker's start would have failed the same way).
                return container
            detail, reason = describe_exit(details, self._memory_mib(container))
            _set_if_changed(container, 'status', consts.STOPPED)
            _set_if_changed(container, 'status_detail', detail)
            _set_if_changed(container, 'status_reason', reason)
        elif state == runtime.CREATED:
            if container.status in (consts.CREATING, None):
                _set_if_changed(container, 'status', consts.CREATED)
            _set_if_changed(container, 'status_detail', 'Created')
        return container

    def _address_entry(self, container, addr, requested_networks):
        opts = _opts()
        network_id = None
        preserve = False
        for req in requested_networks or []:
            if req.get('network'):
                network_id = req['network']
                preserve = bool(req.get('preserve_on_delete', False))
                break
        network_id = network_id or opts.network_id or 'local'
        subnet_id = opts.subnet_id or str(uuid.uuid5(
            ADDRESS_NAMESPACE, 'subnet:%s' % network_id))
        port_id = str(uuid.uuid5(ADDRESS_NAMESPACE,
                                 'port:%s' % container.uuid))
        return {network_id: [{'addr': addr, 'version': 4, 'port': port_id,
                              'subnet_id': subnet_id,
                              'preserve_on_delete': preserve}]}

    def _build_env(self, container, runtime_dir, addr, hostname):
        return runtime.build_env(container.environment, runtime_dir, addr,
                                 hostname, _opts().default_path)

    def _mounts(self, context, container, requested_volumes):
        mounts = []
        volmaps = (requested_volumes or {}).get(container.uuid, [])
        for volmap in volmaps:
            vdriver = self._get_volume_driver(volmap)
            source, target = vdriver.bind_mount(context, volmap)
            kind = 'loop' if volmap.volume_provider == 'cinder' else 'bind'
            mounts.append({'type': kind, 'source': source,
                           'target': os.path.normpath(target),
                           'fstype': 'ext4', 'options': 'loop,discard',
                           'cinder_volume_id': volmap.cinder_volume_id})
        mounts.sort(key=lambda m: m['target'].count('/'))
        return mounts

    # ------------------------------------------------------------------
    # images

    def pull_image(self, context, repo, tag, image_pull_policy='always',
                   driver_name=None, registry=None):
        runtime_dir = self._runtime_dir(repo, tag)
        image = {'image': repo, 'repo': repo, 'tag': tag,
                 'driver': (driver_name or CONF.default_image_driver
                            or 'docker').split('.')[0],
                 'path': None, 'runtime_dir': runtime_dir}
        return image, True

    def load_image(self, image_path=None):
        return None

    def inspect_image(self, image):
        repo, tag = image_map._split_tag(image)
        runtime_dir = self._runtime_dir(repo, tag)
        meta = image_map.metadata(runtime_dir)
        return {'Id': 'local:' + runtime_dir,
                'RepoTags': ['%s:%s' % (repo, tag or 'latest')],
                'Size': 0, 'Config': {'Cmd': meta.get('Cmd'),
                                      'Entrypoint': meta.get('Entrypoint')}}

    def search_image(self, context, repo, tag, driver_name, exact_match):
        found = []
        for (r, t), d in self.images.items():
            if r == repo or (not exact_match and repo in r):
                found.append({'name': r, 'tags': [t or 'latest'],
                              'runtime_dir': d})
        return found

    def read_tar_image(self, image):
        raise NotImplementedError('the process driver cannot load image '
                                  'tarballs (glance images)')

    # ------------------------------------------------------------------
    # lifecycle

    def create(self, context, container, image, requested_networks,
               requested_volumes):
        runtime_dir = image.get('runtime_dir') or self._runtime_dir(
            image.get('repo'), image.get('tag'))
        # As Docker: the image's Entrypoint/Cmd (its image.json) where the
        # request gives none, and the record shows what runs.
        meta = image_map.metadata(runtime_dir)
        if not container.entrypoint and meta.get('Entrypoint'):
            container.entrypoint = list(meta['Entrypoint'])
        if not container.command and meta.get('Cmd'):
            container.command = list(meta['Cmd'])
        argv = list(container.entrypoint or []) + list(container.command or [])
        if not argv:
            raise exception.ZunException(
                'container %s has no command and its image %s has no '
                'default command (no Cmd in %s)'
                % (container.uuid, container.image,
                   os.path.join(runtime_dir, image_map.METADATA_FILE)))
        addr = addresses.allocate(self.state_dir, _opts().address_base,
                                  container.uuid)
        hostname = container.hostname or container.uuid.replace('-', '')[:12]
        spec = {
            'uuid': container.uuid,
            'name': container.name,
            'image': container.image,
            'runtime_dir': runtime_dir,
            'argv': addresses.localise_argv(argv, addr),
            'env': self._build_env(container, runtime_dir, addr, hostname),
            'cwd': container.workdir or '/',
            'hostname': hostname,
            'address': addr,
            'mounts': self._mounts(context, container, requested_volumes),
        }
        addresses_entry = self._address_entry(container, addr,
                                              requested_networks)
        # The Neutron stub serves this as the container's port (port
        # look-ups by id or device_id, as Zun's rebuild and clients make).
        ((network_id, (entry,)),) = addresses_entry.items()
        spec['port'] = {'id': entry['port'], 'network_id': network_id,
                        'subnet_id': entry['subnet_id'], 'ip_address': addr,
                        'project_id': container.project_id}
        cdir = self._dir(container)
        if cdir.exists():
            # Re-create (rebuild): keep nothing from the previous run.
            cdir.clear_run_files()
        cdir.write_spec(spec)
        container.container_id = container.uuid
        if container.hostname is None:
            container.hostname = hostname
        container.addresses = addresses_entry
        container.status = consts.CREATED
        container.status_detail = 'Created'
        container.status_reason = None
        container.save(context)
        LOG.info('Created container %s (%s) at %s', container.uuid,
                 ' '.join(spec['argv']), addr)
        return container

    def _check_created(self, container):
        cdir = self._dir(container)
        if not container.container_id or not cdir.exists():
            raise exception.ZunException(
                'container %s does not exist on host %s'
                % (container.uuid, CONF.host))
        return cdir

    def start(self, context, container):
        cdir = self._check_created(container)
        state, _ = cdir.state()
        if state == runtime.RUNNING:
            return self._populate(container, force=True)
        cpuset_cpus = cpuset_mems = None
        if container.cpu_policy == 'dedicated' and container.cpuset:
            cpuset_cpus = container.cpuset.cpuset_cpus or None
            cpuset_mems = container.cpuset.cpuset_mems or None
        t0 = time.monotonic()
        try:
            runtime.launch(cdir, self._cgroups(container.uuid),
                           python=_opts().supervisor_python,
                           timeout=_opts().start_timeout,
                           memory_mib=self._memory_mib(container),
                           default_memory_swap_mib=CONF.default_memory_swap,
                           cpu=container.cpu, cpuset_cpus=cpuset_cpus,
                           cpuset_mems=cpuset_mems)
        except runtime.StartError as e:
            raise exception.ZunException(str(e))
        LOG.info('Started container %s in %.2f s', container.uuid,
                 time.monotonic() - t0)
        return self._populate(container, force=True)

    def stop(self, context, container, timeout):
        cdir = self._check_created(container)
        cg = self._cgroups(container.uuid)
        if cg.frozen():
            cdir.signal(15)
            cg.freeze(False)
        # As Docker's driver: no (or a zero) timeout is Docker's 10 s.
        timeout = int(timeout) if timeout else DOCKER_STOP_TIMEOUT
        if cdir.child_alive():
            cdir.mark_requested('stop')
        cdir.stop(timeout)
        return self._populate(container, force=True)

    def kill(self, context, container, signal=None):
        cdir = self._check_created(container)
        try:
            signum = runtime.parse_signal(signal)
        except ValueError as e:
            raise exception.Invalid(str(e))
        if cdir.child_alive():
            cdir.mark_requested('kill')
        if cdir.signal(signum):
            if self._cgroups(container.uuid).frozen():
                self._cgroups(container.uuid).freeze(False)
            cdir.wait_exited(2 if signum == 9 else 1)
        return self._populate(container, force=True)

    def reboot(self, context, container, timeout):
        self.stop(context, container, timeout)
        return self.start(context, container)

    def pause(self, context, container):
        cdir = self._check_created(container)
        if not cdir.child_alive():
            raise exception.Conflict('container %s is not running'
                                     % container.uuid)
        self._cgroups(container.uuid).freeze(True)
        return self._populate(container, force=True)

    def unpause(self, context, container):
        self._check_created(container)
        self._cgroups(container.uuid).freeze(False)
        return self._populate(container, force=True)

    def delete(self, context, container, force):
        for problem in runtime.destroy(self._dir(container),
                                       self._cgroups(container.uuid)):
            LOG.warning('Deleting container %s: %s', container.uuid, problem)
        addresses.release(self.state_dir, container.uuid)
        LOG.info('Deleted container %s', container.uuid)

    def check_container_exist(self, container):
        return self._dir(container).exists()

    def update(self, context, container):
        patch = container.obj_get_changes()
        memory = patch.get('memory')
        cpu = patch.get('cpu')
        self._cgroups(container.uuid).update(
            memory_mib=cgroups.parse_memory_mib(memory)
            if memory is not None else None,
            default_memory_swap_mib=CONF.default_memory_swap,
            cpu=cpu)
        return container

    # ------------------------------------------------------------------
    # state

    def show(self, context, container):
        if container.container_id is None:
            return container
        return self._populate(container)

    def _host_containers(self, context):
        return objects.Container.list_by_host(context, CONF.host)

    def list(self, context):
        containers = self._host_containers(context)
        missing = []
        for container in containers:
            if container.status in (consts.CREATING, consts.DELETING,
                                    consts.DELETED):
                continue
            if not container.container_id or \
                    not self._dir(container).exists():
                missing.append(container)
                continue
            self._populate(container)
        return containers, missing

    def update_containers_states(self, context, containers, manager):
        for container in containers:
            if not isinstance(container, objects.Container):
                continue  # capsules are not supported by this driver
            if container.host != CONF.host or container.task_state:
                continue
            if not container.container_id or container.status in (
                    consts.CREATING, consts.DELETING, consts.DELETED):
                continue
            old = container.status
            try:
                self._populate(container)
                if container.obj_what_changed():
                    container.save(context)
            except Exception:
                LOG.exception('Failed to sync container %s', container.uuid)
                continue
            if old != container.status:
                LOG.info('Status of container %s changed from %s to %s',
                         container.uuid, old, container.status)
        self._maybe_sweep_volumes()

    def _maybe_sweep_volumes(self):
        interval = _opts().volume_cleanup_interval
        if not interval or time.monotonic() - self._last_volume_sweep \
                < interval:
            return
        self._last_volume_sweep = time.monotonic()
        try:
            self.sweep_volume_images()
        except Exception:
            LOG.exception('Volume image clean-up failed')

    def sweep_volume_images(self, context=None):
        """Delete image files whose Cinder volume no longer exists.

        Conservative: an image goes only if an all-projects listing (which
        must be an admin's view) lacks its volume AND a GET of the volume
        is a 404, and no loop device still uses it.
        """
        ids = self.volume_images.ids()
        if not ids:
            return []
        from cinderclient import exceptions as cinder_exc
        from zun.volume import cinder_api
        context = context or zun_context.get_admin_context()
        api = cinder_api.CinderAPI(context)
        listed = api.cinder.volumes.list(search_opts={'all_tenants': 1})
        if listed and not all(hasattr(v, 'os-vol-tenant-attr:tenant_id')
                              for v in listed):
            LOG.warning('Volume image clean-up skipped: the Cinder listing '
                        'is not an admin view')
            return []
        known = set(v.id for v in listed)
        removed = []
        for volume_id in ids:
            if volume_id in known:
                continue
            try:
                api.get(volume_id)
            except cinder_exc.NotFound:
                if self.volume_images.remove(volume_id):
                    removed.append(volume_id)
        if removed:
            LOG.info('Removed %d volume image(s) of deleted Cinder volumes: '
                     '%s', len(removed), ', '.join(removed))
        return removed

    # ------------------------------------------------------------------
    # host resources

    def get_host_numa_topology(self):
        """NUMA nodes from sysfs (zun's version needs numactl)."""
        topo = objects.NUMATopology()
        nodes = []
        base = '/sys/devices/system/node'
        names = sorted(n for n in (os.listdir(base) if os.path.isdir(base)
                                   else []) if n.startswith('node'))
        for name in names:
            node_id = int(name[4:])
            with open(os.path.join(base, name, 'cpulist')) as f:
                cpus = _parse_cpulist(f.read())
            mem_mib = 0
            with open(os.path.join(base, name, 'meminfo')) as f:
                for line in f:
                    if 'MemTotal:' in line:
                        mem_mib = int(line.split()[-2]) // 1024
            node = objects.NUMANode(id=node_id, cpuset=set(cpus),
                                    pinned_cpus=set(), mem_total=mem_mib,
                                    mem_available=mem_mib)
            nodes.append(node)
        if not nodes:
            cpus = set(range(psutil.cpu_count()))
            mem_mib = self.get_host_mem()[0] // units.Ki
            nodes.append(objects.NUMANode(id=0, cpuset=cpus,
                                          pinned_cpus=set(),
                                          mem_total=mem_mib,
                                          mem_available=mem_mib))
        topo.nodes = nodes
        return topo

    def get_pci_resources(self):
        return '[]'

    def get_host_info(self):
        counts = {'total': 0, 'running': 0, 'paused': 0, 'stopped': 0}
        for cdir in runtime.list_dirs(self.state_dir):
            counts['total'] += 1
            state, _ = cdir.state()
            if state == runtime.RUNNING:
                if self._cgroups(cdir.uuid).frozen():
                    counts['paused'] += 1
                else:
                    counts['running'] += 1
            elif state == runtime.EXITED:
                counts['stopped'] += 1
        os_name = 'Linux'
        try:
            with open('/etc/os-release') as f:
                for line in f:
                    if line.startswith('PRETTY_NAME='):
                        os_name = line.split('=', 1)[1].strip().strip('"')
        except OSError:
            pass
        return {'total_containers': counts['total'],
                'running_containers': counts['running'],
                'paused_containers': counts['paused'],
                'stopped_containers': counts['stopped'],
                'cpus': psutil.cpu_count(),
                'architecture': platform.machine(),
                'os_type': 'linux',
                'os': os_name,
                'kernel_version': platform.release(),
                'labels': {},
                'runtimes': ['process']}

    def get_available_resources(self):
        data = super(ProcessDriver, self).get_available_resources()
        data.update(self.get_host_info())
        return data

    # ------------------------------------------------------------------
    # logs, exec, top, stats

    def show_logs(self, context, container, stdout=True, stderr=True,
                  timestamps=False, tail='all', since=None):
        try:
            tail = int(tail)
        except (TypeError, ValueError):
            tail = None
        return self._dir(container).read_log(tail)

    def execute_create(self, context, container, command, interactive=False):
        if interactive:
            raise NotImplementedError('interactive exec is not supported by '
                                      'the process driver')
        cdir = self._check_created(container)
        if not cdir.child_alive():
            raise exception.Conflict('container %s is not running'
                                     % container.uuid)
        argv = shlex.split(command) if isinstance(command, str) \
            else list(command)
        return 'exec:%s:%s' % (container.uuid,
                               json.dumps(argv, separators=(',', ':')))

    def execute_run(self, exec_id, command):
        _, container_uuid, argv_json = exec_id.split(':', 2)
        argv = json.loads(argv_json)
        cdir = runtime.ContainerDir(self.state_dir, container_uuid)
        info = cdir.supervisor() or {}
        spec = cdir.spec() or {}
        if not cdir.child_alive():
            raise exception.Conflict('container %s is not running'
                                     % container_uuid)
        env = ['%s=%s' % kv for kv in sorted((spec.get('env') or {}).items())]
        # Enter the container's mount, UTS and pid namespaces (nsenter forks
        # into the pid namespace); the command is not put in its cgroups.
        cmd = ['nsenter', '-t', str(info['child_pid']), '-m', '-u', '-p',
               '--wd=' + (spec.get('cwd') or '/'), '--',
               'env', '-i'] + env + argv
        try:
            res = subprocess.run(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, timeout=CONF.docker.execute_timeout)
        except subprocess.TimeoutExpired:
            raise exception.Conflict('Timeout on executing command: %s'
                                     % command)
        return res.stdout.decode('utf-8', errors='replace'), res.returncode

    def execute_resize(self, exec_id, height, width):
        raise NotImplementedError('exec tty resize is not supported by the '
                                  'process driver')

    TOP_TITLES = ['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD']

    def top(self, context, container, ps_args=None):
        """``ps -ef``'s columns, as Docker's top shows them by default."""
        processes = []
        for pid in sorted(self._cgroups(container.uuid).pids()):
            try:
                processes.append(_ps_row(psutil.Process(pid)))
            except (psutil.Error, OSError):
                continue  # exited meanwhile
        return {'Titles': list(self.TOP_TITLES), 'Processes': processes}

    def stats(self, context, container):
        """Docker's figures: CPU % of the host's CPU time since boot (as
        Zun's Docker driver computes it), memory without inactive cache,
        block I/O of the container's processes (/proc/<pid>/io)."""
        cg = self._cgroups(container.uuid)
        mem = cg.memory_stats()
        usage, limit = mem if mem else (0, 0)
        usage = max(0, usage - cg.memory_cache())
        usage_mib = usage / units.Mi
        limit_mib = limit / units.Mi if limit < (1 << 62) else 0
        cpu_ns = cg.cpu_usage_ns()
        system_ns = _system_cpu_ns()
        cpu_percent = (cpu_ns / system_ns * 100) if cpu_ns and system_ns \
            else 0.0
        read = write = 0
        for pid in cg.pids():
            try:
                io = psutil.Process(pid).io_counters()
            except (psutil.Error, OSError):
                continue
            read += io.read_bytes
            write += io.write_bytes
        return {'CONTAINER': container.name,
                'CPU %': cpu_percent,
                'MEM USAGE(MiB)': usage_mib,
                'MEM LIMIT(MiB)': limit_mib,
                'MEM %': (usage_mib / limit_mib * 100) if limit_mib else 0.0,
                'BLOCK I/O(B)': '%d/%d' % (read, write),
                # Containers share the host's network namespace: no
                # per-container counters.
                'NET I/O(B)': '0/0'}

    # ------------------------------------------------------------------
    # archives: tar streams in and out of the container's mount namespace

    def _child_pid(self, container):
        cdir = self._check_created(container)
        info = cdir.supervisor() or {}
        if not cdir.child_alive() or not info.get('child_pid'):
            raise exception.Conflict(
                'container %s is not running (the process driver reaches a '
                'container\'s files only while it runs)' % container.uuid)
        return str(info['child_pid'])

    def _nsenter_tar(self, container, args, data=None):
        cmd = ['nsenter', '-t', self._child_pid(container), '-m', '--',
               'tar'] + args
        res = subprocess.run(cmd, input=data, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE,
                             timeout=CONF.docker.execute_timeout)
        if res.returncode != 0:
            raise exception.Invalid(res.stderr.decode(errors='replace')
                                    .strip() or 'tar failed')
        return res.stdout

    def _stat_in(self, container, path):
        """Docker's path stat (X-Docker-Container-Path-Stat) of *path*."""
        cmd = ['nsenter', '-t', self._child_pid(container), '-m', '--',
               'stat', '-c', '%n\t%s\t%f\t%Y\t%N', path]
        res = subprocess.run(cmd, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        if res.returncode != 0:
            raise exception.Invalid('Could not find the file %s in container '
                                    '%s' % (path, container.uuid))
        name, size, mode, mtime, link = res.stdout.decode().rstrip(
            '\n').split('\t', 4)
        target = link.split(' -> ', 1)[1].strip("'") if ' -> ' in link \
            else ''
        return {'name': os.path.basename(name.rstrip('/')) or '/',
                'size': int(size), 'mode': int(mode, 16),
                'mtime': time.strftime('%Y-%m-%dT%H:%M:%SZ',
                                       time.gmtime(int(mtime))),
                'linkTarget': target}

    def get_archive(self, context, container, path):
        parent = os.path.dirname(path.rstrip('/')) or '/'
        name = os.path.basename(path.rstrip('/')) or '.'
        data = self._nsenter_tar(container, ['-c', '-C', parent, '--', name])
        return data, self._stat_in(container, path)

    def put_archive(self, context, container, path, data):
        # Docker: the destination must be an existing directory.
        if self._stat_in(container, path)['mode'] & 0o170000 != 0o040000:
            raise exception.Invalid('%s is not a directory in container %s'
                                    % (path, container.uuid))
        self._nsenter_tar(container, ['-x', '-C', path, '-f', '-'],
                          data=data)

    # ------------------------------------------------------------------
    # not supported

    def _unsupported(self, what):
        raise NotImplementedError('%s is not supported by the process '
                                  'container driver' % what)

    def commit(self, context, container, repository=None, tag=None):
        self._unsupported('commit')

    def get_websocket_url(self, context, container):
        self._unsupported('attach (websocket)')

    def resize(self, context, container, height, width):
        self._unsupported('tty resize')

    def add_security_group(self, context, container, security_group,
                           **kwargs):
        self._unsupported('security groups')

    def remove_security_group(self, context, container, security_group,
                              **kwargs):
        self._unsupported('security groups')

    def network_detach(self, context, container, network):
        self._unsupported('network detach')

    def network_attach(self, context, container, requested_network):
        self._unsupported('network attach')

    def create_network(self, context, network):
        self._unsupported('network create')

    def delete_network(self, context, network):
        self._unsupported('network delete')

    def create_image(self, context, image_name, image_driver):
        self._unsupported('image create')

    def upload_image_data(self, context, image, image_tag, image_data,
                          image_driver):
        self._unsupported('image upload')

    def delete_committed_image(self, context, img_id, image_driver):
        self._unsupported('image delete')

    def delete_image(self, context, img_id, image_driver=None):
        self._unsupported('image delete')

    def create_capsule(self, context, capsule, **kwargs):
        self._unsupported('capsules')

    def delete_capsule(self, context, capsule, **kwargs):
        self._unsupported('capsules')


def _parse_cpulist(text):
    cpus = []
    for part in text.strip().split(','):
        if not part:
            continue
        if '-' in part:
            a, b = part.split('-')
            cpus.extend(range(int(a), int(b) + 1))
        else:
            cpus.append(int(part))
    return cpus


def _system_cpu_ns():
    """All CPUs' time since boot in ns (/proc/stat's first line), the
    ``system_cpu_usage`` of Docker's stats."""
    try:
        with open('/proc/stat') as f:
            fields = f.readline().split()[1:8]
        return sum(int(v) for v in fields) * (10 ** 9) // \
            os.sysconf('SC_CLK_TCK')
    except (OSError, ValueError):
        return 0


def _ps_row(proc):
    """One ``ps -ef`` row: UID PID PPID C STIME TTY TIME CMD."""
    with proc.oneshot():
        times = proc.cpu_times()
        used = int(times.user + times.system)
        age = max(time.time() - proc.create_time(), 1e-6)
        try:
            import pwd
            user = pwd.getpwuid(proc.uids().real).pw_name
        except KeyError:
            user = str(proc.uids().real)
        started = proc.create_time()
        stime = time.strftime('%H:%M' if time.time() - started < 86400
                              else '%b%d', time.localtime(started))
        cmd = ' '.join(proc.cmdline()) or '[%s]' % proc.name()
        return [user, str(proc.pid), str(proc.ppid()),
                str(int(100 * (times.user + times.system) / age)), stime,
                proc.terminal() and proc.terminal().replace('/dev/', '')
                or '?',
                '%02d:%02d:%02d' % (used // 3600, used % 3600 // 60,
                                    used % 60),
                cmd]
