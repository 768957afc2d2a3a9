import socket

from zun_local_driver import addresses


def test_allocation_is_stable_unique_and_reused(tmp_path):
    d = str(tmp_path)
    a = addresses.allocate(d, '127.10.0.0/16', 'c1')
    b = addresses.allocate(d, '127.10.0.0/16', 'c2')
    assert a == '127.10.0.2' and b == '127.10.0.3'
    assert addresses.allocate(d, '127.10.0.0/16', 'c1') == a
    addresses.release(d, 'c1')
    assert addresses.allocations(d) == {b: 'c2'}
    assert addresses.allocate(d, '127.10.0.0/16', 'c3') == a


def test_pool_exhaustion(tmp_path):
    d = str(tmp_path)
    addresses.allocate(d, '127.20.0.0/30', 'x')  # hosts .1 (skipped), .2
    try:
        addresses.allocate(d, '127.20.0.0/30', 'y')
    except addresses.AddressPoolExhausted:
        pass
    else:
        raise AssertionError('expected exhaustion')


def test_env_all_interfaces_replaced():
    env = addresses.localise_env({
        'JUPYTERHUB_SERVICE_URL': 'http://0.0.0.0:8888/user/a/',
        'JUPYTERHUB_API_URL': 'http://127.0.0.1:8081/hub/api',
        'JUPYTER_IP': '*',
        'OTHER_IP': '10.0.0.0',
        'NOTE': 'net 10.0.0.0/8 and 0.0.0.0.1 untouched',
    }, '127.10.0.7')
    assert env['JUPYTERHUB_SERVICE_URL'] == 'http://127.10.0.7:8888/user/a/'
    assert env['JUPYTERHUB_API_URL'] == 'http://127.0.0.1:8081/hub/api'
    assert env['JUPYTER_IP'] == '127.10.0.7'
    assert env['OTHER_IP'] == '10.0.0.0'
    assert env['NOTE'] == 'net 10.0.0.0/8 and 0.0.0.0.1 untouched'


def test_argv_all_interfaces_replaced():
    argv = addresses.localise_argv(
        ['python3', '-m', 'http.server', '8888', '--bind', '0.0.0.0',
         '--ip=*', '--ServerApp.ip=', '--ip', '*', 'http://0.0.0.0:1/'],
        '127.10.0.9')
    assert argv == ['python3', '-m', 'http.server', '8888', '--bind',
                    '127.10.0.9', '--ip=127.10.0.9',
                    '--ServerApp.ip=127.10.0.9', '--ip', '127.10.0.9',
                    'http://127.10.0.9:1/']


def test_allocated_addresses_are_bindable(tmp_path):
    addr = addresses.allocate(str(tmp_path), '127.10.0.0/16', 'c')
    s1 = socket.socket()
    s2 = socket.socket()
    try:
        s1.bind((addr, 0))
        port = s1.getsockname()[1]
        s2.bind(('127.10.0.250', port))  # same port, other address
    finally:
        s1.close()
        s2.close()
