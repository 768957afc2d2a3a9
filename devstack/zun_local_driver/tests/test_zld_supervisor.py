"""Real processes under the real supervisor: namespaces, cgroups, exit codes.

Needs root and cgroup v1 (marked ``localcloud``); each test takes < 2 s
except the stop-timeout one.
"""
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest

from zld_testing import needs_root
from zun_local_driver import addresses
from zun_local_driver import cgroups
from zun_local_driver import runtime
from zun_local_driver import supervisor as sv

pytestmark = [pytest.mark.localcloud, needs_root]

PY = '/usr/bin/python3' if os.path.exists('/usr/bin/python3') \
    else sys.executable


def make(state_dir, argv, cgroup_parent=None, memory_mib=None, env=None,
         mounts=None, cwd='/', hostname='ctest'):
    cid = str(uuid.uuid4())
    cdir = runtime.ContainerDir(state_dir, cid)
    spec = {'argv': argv, 'env': env or {'PATH': '/usr/bin:/bin'},
            'cwd': cwd, 'hostname': hostname, 'mounts': mounts or []}
    if cgroup_parent:
        cg = cgroups.CgroupSet('/sys/fs/cgroup', cgroup_parent, cid)
        spec.update(cg.create(memory_mib=memory_mib,
                              default_memory_swap_mib=-1, cpu=0.5))
    cdir.write_spec(spec)
    return cdir


def wait_status(cdir, timeout=10):
    assert cdir.wait_exited(timeout)
    state, details = cdir.state()
    assert state == runtime.EXITED
    return details


def test_exit_code_pid1_hostname_and_private_proc(state_dir):
    cdir = make(state_dir, ['sh', '-c',
                            'echo pid=$$ host=$(hostname); '
                            'ls /proc | grep -c "^[0-9]"; exit 3'])
    report = cdir.start()
    assert report == {'ok': True, 'error': None}
    details = wait_status(cdir)
    assert details['exit_code'] == 3 and details['signal'] is None
    assert not details['oom']
    out = cdir.read_log().split()
    assert out[0] == 'pid=1' and out[1] == 'host=ctest'
    assert int(out[2]) <= 3  # only the container's processes are visible
    assert cdir.wait_supervisor_gone(5)


def test_bad_command_is_exit_127(state_dir):
    cdir = make(state_dir, ['no-such-command-here'])
    report = cdir.start()
    assert not report['ok'] and 'no-such-command-here' in report['error']
    details = wait_status(cdir)
    assert details['exit_code'] == 127


def test_environment_and_workdir(state_dir, tmp_path):
    cdir = make(state_dir, ['sh', '-c', 'echo "$FOO $(pwd)"'],
                env={'PATH': '/usr/bin:/bin', 'FOO': 'bar'},
                cwd=str(tmp_path))
    cdir.start()
    wait_status(cdir)
    assert cdir.read_log().strip() == 'bar %s' % tmp_path


def test_kill_from_outside_is_137_without_oom(state_dir, cgroup_parent):
    cdir = make(state_dir, ['sleep', '60'], cgroup_parent, memory_mib=64)
    assert cdir.start()['ok']
    state, _ = cdir.state()
    assert state == runtime.RUNNING
    os.kill(cdir.supervisor()['child_pid'], 9)
    details = wait_status(cdir)
    assert (details['exit_code'], details['signal'], details['oom']) == \
        (137, 9, False)


def test_oom_kill_under_64_mib(state_dir, cgroup_parent):
    hog = 'x = []\nwhile True: x.append(bytearray(1 << 20))'
    cdir = make(state_dir, [PY, '-c', hog], cgroup_parent, memory_mib=64)
    t0 = time.monotonic()
    assert cdir.start()['ok']
    details = wait_status(cdir, timeout=20)
    assert details['oom'] is True
    assert details['exit_code'] == 137
    assert time.monotonic() - t0 < 10
    mem = '/sys/fs/cgroup/memory/%s/%s' % (cgroup_parent, cdir.uuid)
    with open(mem + '/memory.limit_in_bytes') as f:
        assert int(f.read()) == 64 * 1024 * 1024


def test_container_sees_its_own_memory_limit_and_cgroup(state_dir,
                                                        cgroup_parent):
    # As under Docker (cgroup namespace): tools inside read their own limit.
    cdir = make(state_dir, ['sh', '-c',
                            'cat /sys/fs/cgroup/memory/memory.limit_in_bytes; '
                            'grep memory /proc/self/cgroup'],
                cgroup_parent, memory_mib=96)
    assert cdir.start()['ok']
    details = wait_status(cdir)
    assert details['exit_code'] == 0, cdir.read_log()
    limit, cgroup_line = cdir.read_log().split()
    assert int(limit) == 96 * 1024 * 1024
    assert cgroup_line.endswith(':memory:/')
    # The host's view is unchanged.
    with open('/sys/fs/cgroup/memory/memory.limit_in_bytes') as f:
        assert int(f.read()) > 1 << 60


def test_stop_pid1_ignoring_sigterm_needs_sigkill(state_dir):
    # pid 1 of a namespace ignores SIGTERM when it has no handler.
    cdir = make(state_dir, ['sleep', '60'])
    cdir.start()
    t0 = time.monotonic()
    state, details = cdir.stop(timeout=1)
    assert state == runtime.EXITED and details['signal'] == 9
    assert 0.9 < time.monotonic() - t0 < 5


def test_stop_with_handler_exits_on_sigterm(state_dir):
    code = ('import signal, sys, time\n'
            'signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n'
            'print("ready", flush=True)\n'
            'time.sleep(60)\n')
    cdir = make(state_dir, [PY, '-c', code])
    cdir.start()
    for _ in range(500):
        if 'ready' in cdir.read_log():
            break
        time.sleep(0.02)
    assert 'ready' in cdir.read_log()
    t0 = time.monotonic()
    state, details = cdir.stop(timeout=10)
    assert details['exit_code'] == 0
    assert time.monotonic() - t0 < 2


def test_http_server_on_own_address(state_dir, tmp_path):
    addr = addresses.allocate(str(tmp_path), '127.10.0.0/16', 'http-test')
    argv = addresses.localise_argv(
        [PY, '-m', 'http.server', '18888', '--bind', '0.0.0.0'], addr)
    cdir = make(state_dir, argv)
    assert cdir.start()['ok']
    body = None
    for _ in range(100):
        try:
            body = urllib.request.urlopen('http://%s:18888/' % addr,
                                          timeout=1).read()
            break
        except OSError:
            time.sleep(0.05)
    assert body is not None
    cdir.stop(timeout=0)


def test_supervisor_survives_its_caller_and_is_adopted(state_dir):
    cdir = make(state_dir, ['sleep', '30'])
    cdir.start()
    info = cdir.supervisor()
    # The intermediate has exited; the supervisor is no child of ours.
    with open('/proc/%d/stat' % info['pid']) as f:
        ppid = int(f.read().rsplit(')', 1)[1].split()[1])
    assert ppid != os.getpid()
    # A new ContainerDir object (a restarted zun-compute) sees it running.
    again = runtime.ContainerDir(state_dir, cdir.uuid)
    assert again.state()[0] == runtime.RUNNING
    again.signal(9)
    assert wait_status(again)['exit_code'] == 137


def test_loop_volume_mounted_only_inside(state_dir, tmp_path):
    image = str(tmp_path / 'vol.img')
    with open(image, 'wb') as f:
        f.truncate(64 * 1024 * 1024)
    subprocess.run(['mkfs.ext4', '-q', '-F', '-m', '0', image], check=True)
    target = str(tmp_path / 'mnt' / 'home' / 'jovyan')
    mounts = [{'type': 'loop', 'source': image, 'target': target,
               'fstype': 'ext4', 'options': 'loop,discard'}]
    script = ('df -k %s | tail -1; echo hello > %s/f; stat -c %%U %s; '
              'echo READY; sleep 30' % (target, target, target))
    cdir = make(state_dir, ['sh', '-c', script], mounts=mounts)
    assert cdir.start()['ok']
    for _ in range(250):
        if 'READY' in cdir.read_log():
            break
        time.sleep(0.02)
    out = cdir.read_log().split()
    size_k = int(out[1])
    assert 50 * 1024 < size_k <= 64 * 1024
    assert out[-2:] == ['root', 'READY']
    # Invisible on the host, and a second mount of the image is refused.
    assert not os.path.exists(os.path.join(target, 'f'))
    second = make(state_dir, ['true'], mounts=mounts)
    report = second.start()
    assert not report['ok'] and 'already loop-mounted' in report['error']
    assert second.status()['exit_code'] == 125
    cdir.signal(9)
    wait_status(cdir)
    assert cdir.wait_supervisor_gone(5)
    # Mount points created for the container are removed afterwards, the
    # loop device is released and the data stayed in the image.
    assert not os.path.exists(str(tmp_path / 'mnt'))
    assert subprocess.run(['losetup', '-j', image], capture_output=True,
                          text=True).stdout == ''
    check = make(state_dir, ['cat', os.path.join(target, 'f')],
                 mounts=mounts)
    check.start()
    wait_status(check)
    assert check.read_log().strip() == 'hello'


def test_status_file_is_json_written_atomically(state_dir):
    cdir = make(state_dir, ['true'])
    cdir.start()
    wait_status(cdir)
    names = os.listdir(cdir.path)
    assert not [n for n in names if '.tmp.' in n]
    with open(cdir.file(sv.STATUS_FILE)) as f:
        assert json.load(f)['exit_code'] == 0


def test_pid_file_names_a_killable_process_group(state_dir):
    cdir = make(state_dir, ['sh', '-c', 'sleep 30 & sleep 30'])
    cdir.start()
    with open(cdir.file(sv.PID_FILE)) as f:
        pid = int(f.read())
    assert pid == cdir.supervisor()['child_pid']
    for _ in range(50):  # pid 1 calls setsid() right after release
        if os.getpgid(pid) == pid:
            break
        time.sleep(0.02)
    os.killpg(pid, 9)  # what `local-cloud down` does, after SIGTERM
    assert wait_status(cdir)['exit_code'] == 137
    assert not os.path.exists(cdir.file(sv.PID_FILE))


def test_memory_and_memsw_limits_written_in_a_valid_order(cgroup_parent):
    cg = cgroups.CgroupSet('/sys/fs/cgroup', cgroup_parent, 'limits')
    base = '/sys/fs/cgroup/memory/%s/limits/' % cgroup_parent

    def limits():
        with open(base + 'memory.limit_in_bytes') as f:
            mem = int(f.read())
        with open(base + 'memory.memsw.limit_in_bytes') as f:
            memsw = int(f.read())
        return mem // 2 ** 20, memsw // 2 ** 20

    cg.create(memory_mib=64, default_memory_swap_mib=100, cpu=0.001)
    assert limits() == (64, 100)
    cg.update(memory_mib=512, default_memory_swap_mib=100)  # raise past memsw
    assert limits() == (512, 512)
    cg.update(memory_mib=32, default_memory_swap_mib=-1)  # lower, memsw off
    assert limits()[0] == 32 and limits()[1] > 2 ** 30
    cg.update(memory_mib=48, default_memory_swap_mib=40)  # memsw < memory
    assert limits() == (48, 48)
    with open('/sys/fs/cgroup/cpu/%s/limits/cpu.shares' % cgroup_parent) as f:
        assert int(f.read()) == 2
    assert cg.remove()


def test_stale_groups_removed_live_ones_kept(state_dir, cgroup_parent):
    live = make(state_dir, ['sleep', '30'], cgroup_parent)
    live.start()
    cgroups.CgroupSet('/sys/fs/cgroup', cgroup_parent, 'gone').create()
    keep_empty = cgroups.CgroupSet('/sys/fs/cgroup', cgroup_parent, 'known')
    keep_empty.create()
    removed = cgroups.remove_stale('/sys/fs/cgroup', cgroup_parent,
                                   {'known'})
    # 'gone' is empty and unknown; the live one is unknown but busy.
    assert removed == ['gone']
    assert os.path.isdir(live.path and '/sys/fs/cgroup/memory/%s/%s'
                         % (cgroup_parent, live.uuid))
    live.signal(9)
    wait_status(live)


@pytest.mark.skipif(not os.path.isdir('/sys/fs/cgroup/cpuset'),
                    reason='needs the cgroup v1 cpuset hierarchy')
def test_dedicated_cpus_pin_the_process(state_dir, cgroup_parent):
    cpu = max(os.sched_getaffinity(0))
    cid = str(uuid.uuid4())
    cdir = runtime.ContainerDir(state_dir, cid)
    cg = cgroups.CgroupSet('/sys/fs/cgroup', cgroup_parent, cid)
    spec = {'argv': ['sh', '-c', 'grep Cpus_allowed_list /proc/self/status'],
            'env': {'PATH': '/usr/bin:/bin'}}
    spec.update(cg.create(cpuset_cpus={cpu}, cpuset_mems={0}))
    cdir.write_spec(spec)
    assert cdir.start()['ok']
    wait_status(cdir)
    assert cdir.read_log().split()[-1] == str(cpu)


# The shared API (runtime.build_env/launch/destroy) that zun-compute's
# driver and the Magnum cluster's kubelet stand-in both run containers with.

def test_launch_applies_limits_and_destroy_leaves_nothing(state_dir,
                                                         cgroup_parent):
    cid = str(uuid.uuid4())
    cdir = runtime.ContainerDir(state_dir, cid)
    env = runtime.build_env({'GREETING': 'hi', 'BIND': '0.0.0.0'},
                            '/opt/rt', '127.10.0.9', 'h1', '/usr/bin:/bin')
    assert env['PATH'] == '/opt/rt/bin:/usr/bin:/bin'
    assert env['BIND'] == '127.10.0.9' and env['HOSTNAME'] == 'h1'
    cdir.write_spec({'argv': ['sleep', '60'], 'env': env, 'cwd': '/',
                     'hostname': 'h1', 'mounts': []})
    cg = cgroups.CgroupSet('/sys/fs/cgroup', cgroup_parent, cid)
    report = runtime.launch(cdir, cg, memory_mib=96,
                            default_memory_swap_mib=-1, cpu=0.25)
    assert report['ok'] and cdir.child_alive()
    with open(cg.path('memory') + '/memory.limit_in_bytes') as f:
        assert int(f.read()) == 96 * 1024 * 1024
    with open(cg.path('cpu') + '/cpu.shares') as f:
        assert int(f.read()) == 256
    pid = cdir.supervisor()['child_pid']
    assert runtime.destroy(cdir, cg) == []
    assert not os.path.exists('/proc/%d' % pid) or \
        runtime.sv.proc_stat(pid)[0] == 'Z'
    assert not os.path.exists(cdir.path)
    assert not os.path.isdir(cg.path('memory'))


def test_launch_raises_when_set_up_fails(state_dir, cgroup_parent):
    cid = str(uuid.uuid4())
    cdir = runtime.ContainerDir(state_dir, cid)
    cdir.write_spec({'argv': ['true'], 'env': {}, 'cwd': '/',
                     'mounts': [{'type': 'loop', 'source': '/nonexistent.img',
                                 'target': '/tmp/zld-never-%s' % cid[:8]}]})
    cg = cgroups.CgroupSet('/sys/fs/cgroup', cgroup_parent, cid)
    with pytest.raises(runtime.StartError, match='set-up failed'):
        runtime.launch(cdir, cg, memory_mib=64)
    assert runtime.destroy(cdir, cg) == []


def test_a_mount_point_two_containers_share_outlives_the_first(state_dir, tmp_path):
    """Zun-injected files: every container binds its own file at one path.

    The first container creates the mount point and stops first; removing it
    then would detach the second container's mount (Linux >= 3.18).  The last
    one out removes it.
    """
    target = str(tmp_path / 'run' / 'secrets' / 'TOKEN')  # not on the host yet
    sources = {}
    for name in ('a', 'b'):
        sources[name] = tmp_path / ('source-' + name)
        sources[name].write_text('token-' + name)
    first = make(state_dir, ['sh', '-c', 'cat %s; echo; sleep 0.3' % target],
                 mounts=[{'type': 'bind', 'source': str(sources['a']),
                          'target': target}])
    second = make(state_dir, ['sh', '-c', 'sleep 1.5; cat %s' % target],
                  mounts=[{'type': 'bind', 'source': str(sources['b']),
                           'target': target}])
    assert first.start()['ok']
    deadline = time.monotonic() + 5
    while 'token-a' not in first.read_log() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert second.start()['ok']
    wait_status(first)
    assert first.wait_supervisor_gone(5)
    assert os.path.exists(target), 'removed while the second container uses it'
    wait_status(second)
    assert second.wait_supervisor_gone(5)
    assert first.read_log().strip() == 'token-a'
    assert second.read_log().strip() == 'token-b'
    # the last one out cleaned up, and the host never saw the contents
    assert not os.path.exists(str(tmp_path / 'run'))
