"""Loopback ports of the local cloud, seen from inside real nodes.

A node's containerd pulls ``127.0.0.1:PORT/notebook:TAG`` from the local
registry, which listens on the local cloud's loopback: from the node's own
network namespace that address is the node's loopback.  So, for each such
port, a listener is made *inside* the node's namespace (a socket keeps the
namespace it was made in) and every connection to it is carried to the same
port on the local cloud's loopback.  Nothing on the machine changes: no
address, route or iptables rule.  Runs as threads of the node agent.
"""

import ctypes
import logging
import os
import socket
import threading

LOG = logging.getLogger('local-forward')
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_setns_lock = threading.Lock()


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def listen_in(netns_path, port, host='127.0.0.1'):
    """A listening TCP socket on ``host:port`` inside ``netns_path``."""
    with _setns_lock:
        own = os.open('/proc/thread-self/ns/net', os.O_RDONLY)
        target = os.open(netns_path, os.O_RDONLY)
        try:
            _setns(target)
            try:
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((host, port))
                sock.listen(64)
            finally:
                _setns(own)
        finally:
            os.close(target)
            os.close(own)
    return sock


def _pipe(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _serve(listener, port, stopping):
    listener.settimeout(1.0)
    while not stopping.is_set():
        try:
            conn, _ = listener.accept()
        except socket.timeout:
            continue
        except OSError:
            break
        try:
            upstream = socket.create_connection(('127.0.0.1', port), 10)
        except OSError as e:
            LOG.warning('port %d: %s', port, e)
            conn.close()
            continue
        for a, b in ((conn, upstream), (upstream, conn)):
            threading.Thread(target=_pipe, args=(a, b), daemon=True).start()
    listener.close()


def start(netns_paths, ports, stopping):
    """Forward ``ports`` from each namespace's loopback to ours."""
    for path in netns_paths:
        for port in ports:
            listener = listen_in(path, port)
            threading.Thread(target=_serve, args=(listener, port, stopping),
                             name='forward-%d' % port, daemon=True).start()
            LOG.info('127.0.0.1:%d in %s is the local cloud\'s', port, path)
