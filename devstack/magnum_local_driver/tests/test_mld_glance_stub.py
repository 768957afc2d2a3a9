"""The Glance stub answers the lookups Magnum makes for a template's image."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

import mld_testing

STUB = os.path.join(mld_testing.DEVSTACK, 'glance_stub.py')
sys.path.insert(0, mld_testing.DEVSTACK)
import glance_stub  # noqa: E402


@pytest.fixture(scope='module')
def glance():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, STUB, '--port', str(port)],
                            stderr=subprocess.DEVNULL)
    url = 'http://127.0.0.1:%d' % port
    for _ in range(100):
        try:
            urllib.request.urlopen(url + '/', timeout=1)
            break
        except OSError:
            time.sleep(0.05)
    yield url
    proc.terminate()
    proc.wait()


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def test_image_by_name_and_id_carries_os_distro(glance):
    status, listing = get(glance + '/v2/images?name=' + glance_stub.IMAGE_NAME)
    assert status == 200 and [i['id'] for i in listing['images']] == [glance_stub.IMAGE_ID]
    status, image = get(glance + '/v2/images/' + glance_stub.IMAGE_ID)
    assert status == 200
    assert image['os_distro'] == 'ubuntu' and image['status'] == 'active'


def test_unknown_image_is_404(glance):
    assert get(glance + '/v2/images?name=nope')[1]['images'] == []
    assert get(glance + '/v2/images/' + glance_stub.IMAGE_NAME)[0] == 404


def test_version_document_points_at_v2(glance):
    status, doc = get(glance + '/')
    assert status == 200 and doc['versions'][0]['links'][0]['href'].endswith('/v2/')
