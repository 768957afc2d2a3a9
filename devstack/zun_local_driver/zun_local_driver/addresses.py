"""Per-container loopback addresses and "all interfaces" substitution.

Every container shares the host's network stack, so two servers cannot both
bind 0.0.0.0:8888.  Each container gets an address of its own from
``address_base`` (all of 127/8 routes to ``lo`` without set-up), and
wherever its command or environment asks for all interfaces the driver puts
that address instead.
"""

import contextlib
import fcntl
import ipaddress
import json
import os
import re

ALLOCATIONS_FILE = 'addresses.json'
LOCK_FILE = 'addresses.lock'

# 0.0.0.0 as a whole dotted quad (not part of 10.0.0.0.1 or 0.0.0.01).
_ANY_V4 = re.compile(r'(?<![\d.])0\.0\.0\.0(?![\d.])')
# --ip=* / --ip= / --ServerApp.ip=* / --NotebookApp.ip='*'
_IP_FLAG = re.compile(r'^(--(?:[\w-]+\.)?ip)=(?:\*|\'\*\'|"\*"|)$',
                      re.IGNORECASE)
_IP_FLAG_ALONE = re.compile(r'^--(?:[\w-]+\.)?ip$', re.IGNORECASE)
# Environment keys that name a bind address: JUPYTER_IP, HOST_IP, BIND_ADDR...
_IP_KEY = re.compile(r'(^|_)(IP|BIND|BIND_ADDR|BIND_ADDRESS|LISTEN_ADDR)$',
                     re.IGNORECASE)
_ANY_VALUES = ('', '*', '0.0.0.0')


class AddressPoolExhausted(Exception):
    pass


@contextlib.contextmanager
def locked(state_dir, name=LOCK_FILE):
    """Hold an exclusive lock on ``<state_dir>/<name>`` (a table's lock)."""
    os.makedirs(state_dir, exist_ok=True)
    fd = os.open(os.path.join(state_dir, name),
                 os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _load(state_dir):
    try:
        with open(os.path.join(state_dir, ALLOCATIONS_FILE)) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def _save(state_dir, table):
    path = os.path.join(state_dir, ALLOCATIONS_FILE)
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(table, f, sort_keys=True, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def allocate(state_dir, base, owner):
    """Address for *owner* (a container uuid); the same one on every call."""
    network = ipaddress.ip_network(base)
    with locked(state_dir):
        table = _load(state_dir)
        for addr, who in table.items():
            if who == owner:
                return addr
        taken = set(table)
        for i, host in enumerate(network.hosts()):
            # Leave the first host (x.y.0.1) alone: it reads as a gateway.
            if i == 0:
                continue
            addr = str(host)
            if addr not in taken:
                table[addr] = owner
                _save(state_dir, table)
                return addr
    raise AddressPoolExhausted('no free address left in %s' % base)


def release(state_dir, owner):
    with locked(state_dir):
        table = _load(state_dir)
        kept = {a: w for a, w in table.items() if w != owner}
        if kept != table:
            _save(state_dir, kept)


def allocations(state_dir):
    with locked(state_dir):
        return dict(_load(state_dir))


def localise_value(value, addr):
    return _ANY_V4.sub(addr, value)


def localise_env(env, addr):
    """Copy of *env* with every "all interfaces" request pointed at *addr*."""
    out = {}
    for key, value in (env or {}).items():
        value = '' if value is None else str(value)
        if _IP_KEY.search(key) and value.strip() in _ANY_VALUES:
            out[key] = addr
        else:
            out[key] = localise_value(value, addr)
    return out


def localise_argv(argv, addr):
    out = []
    previous = None
    for arg in argv or []:
        m = _IP_FLAG.match(arg)
        if m:
            arg = '%s=%s' % (m.group(1), addr)
        elif (previous is not None and _IP_FLAG_ALONE.match(previous)
              and arg in ('*', '0.0.0.0')):
            arg = addr
        else:
            arg = localise_value(arg, addr)
        out.append(arg)
        previous = arg
    return out
