"""Options of the ``[local_driver]`` group, registered on import."""

from oslo_config import cfg

GROUP = 'local_driver'

OPTS = [
    cfg.StrOpt('state_dir',
               default='/var/lib/zun-local/containers',
               help='Directory holding one sub-directory per container '
                    '(spec, supervisor pid, exit status, output log) and '
                    'the address allocation table. Survives zun-compute '
                    'restarts; running containers are re-adopted from it.'),
    cfg.StrOpt('volumes_dir',
               default='/var/lib/zun-local/volumes',
               help='Directory of the sparse ext4 image files that stand in '
                    'for Cinder volumes, one per Cinder volume id.'),
    cfg.ListOpt('images',
                default=[],
                help='Image name to runtime directory map, as a comma list '
                     'of "image:runtime_dir" (split on the last colon), e.g. '
                     '"quay.io/jupyter/base-notebook:/srv/venvs/notebook". '
                     'The runtime directory is a virtualenv (or any prefix) '
                     'whose bin/ goes first in PATH. An image name without '
                     'a tag matches every tag.'),
    cfg.StrOpt('network_id',
               default=None,
               help='Neutron network uuid used as the key in a container\'s '
                    '"addresses" when the request names no network.'),
    cfg.StrOpt('subnet_id',
               default=None,
               help='Subnet uuid reported with each address (default: a '
                    'uuid derived from the network id).'),
    cfg.StrOpt('address_base',
               default='127.10.0.0/16',
               help='Loopback network from which each container gets an '
                    'address of its own (all of 127/8 routes to lo).'),
    cfg.StrOpt('cgroup_parent',
               default='zun-local',
               help='Name of the parent group created in each cgroup v1 '
                    'hierarchy (memory, cpu, cpuset, freezer).'),
    cfg.StrOpt('cgroup_root',
               default='/sys/fs/cgroup',
               help='Where the cgroup v1 hierarchies are mounted.'),
    cfg.StrOpt('supervisor_python',
               default=None,
               help='Python interpreter that runs the per-container '
                    'supervisor (default: the interpreter running '
                    'zun-compute, started with -I -S so nothing from its '
                    'site-packages, eventlet included, is loaded).'),
    cfg.StrOpt('default_path',
               default='/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:'
                       '/sbin:/bin',
               help='PATH used after the runtime bin/ directory when the '
                    'container environment has no PATH.'),
    cfg.IntOpt('start_timeout',
               default=60,
               help='Seconds to wait for a container\'s first process to be '
                    'exec\'d (volume mounts included).'),
    cfg.IntOpt('volume_cleanup_interval',
               default=300,
               help='Seconds between sweeps that delete volume image files '
                    'whose Cinder volume no longer exists (run from the '
                    'container state sync). 0 disables the sweep.'),
]


def register_opts(conf):
    conf.register_opts(OPTS, group=GROUP)


def list_opts():
    return [(GROUP, OPTS)]


register_opts(cfg.CONF)
