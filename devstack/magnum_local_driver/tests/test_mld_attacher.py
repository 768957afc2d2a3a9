"""The Cinder CSI stand-in's attacher: a claim's volume is attached in Cinder
to the node of the pod that uses it, follows the pod to another node, is
detached when the pod goes, and a crash at any point never leaves a second
attachment.  Cinder is a fake that answers with the real exchanges recorded
from the local cloud's Cinder 29 (tests/record_cinder_attachments.py)."""

import copy
import json
import os
import pathlib
import re
import shutil
import subprocess
import uuid

import pytest
import requests_mock
from keystoneauth1 import session as ka_session
from keystoneauth1 import token_endpoint

import mld_testing  # noqa: F401  (sys.path)
from magnum_local_driver import attacher
from magnum_local_driver.attacher import Plan, plan

RECORDED = pathlib.Path(__file__).resolve().parents[3] / 'tests' / 'fixtures' / \
    'recorded-local'
CINDER = 'http://127.0.0.1:8776/v3/a17b6821d77c4ab1961a712e80b49b41'
DRIVER = 'cinder.csi.openstack.org'


def recorded(name):
    return json.loads((RECORDED / name).read_text())['response']


# ----------------------------------------------------------------- the plan

def att(status='attached'):
    return {'id': str(uuid.uuid4()), 'status': status}


def test_a_pod_on_a_node_gets_the_volume_attached_there():
    assert plan(['node-1'], None, []) == Plan(False, [], 'node-1', 'node-1', None)


def test_attached_where_its_pod_runs_it_stays():
    a = att()
    assert plan(['node-1'], 'node-1', [a]) == Plan(False, [], None, None, a['id'])


def test_after_a_crash_before_completion_the_attachment_made_is_finished():
    a = att('attaching')
    assert plan(['node-1'], 'node-1', [a]) == Plan(False, [], None, None, a['id'])


def test_after_a_crash_between_naming_the_node_and_attaching_it_attaches_once():
    assert plan(['node-1'], 'node-1', []) == Plan(False, [], None, 'node-1', None)


def test_a_pod_on_the_other_node_moves_the_attachment_and_keeps_the_mount():
    a = att()
    assert plan(['node-2'], 'node-1', [a]) == Plan(False, [a['id']], 'node-2', 'node-2',
                                                   None)


def test_while_the_old_pod_still_runs_the_new_one_waits():
    a = att()
    assert plan(['node-1', 'node-2'], 'node-1', [a]) == Plan(False, [], None, None, a['id'])
    assert plan(['node-2', 'node-1'], 'node-1', [a]) == Plan(False, [], None, None, a['id'])


def test_no_pod_left_unmounts_then_detaches():
    a = att()
    assert plan([], 'node-1', [a]) == Plan(True, [a['id']], None, None, None)
    assert plan([], None, []) == Plan(True, [], None, None, None)


def test_a_failed_attachment_is_replaced_and_a_duplicate_removed():
    bad = att('error_attaching')
    assert plan(['node-1'], 'node-1', [bad]) == Plan(False, [bad['id']], None, 'node-1', None)
    a, b = att(), att('attaching')
    assert plan(['node-1'], 'node-1', [a, b]) == Plan(False, [b['id']], None, None, a['id'])


# ----------------------------------------------------------------- the loop

class FakeCinder:
    """Cinder's attachments and volumes, answered with the recorded bodies (only
    the values of ids, states and paths changed)."""

    def __init__(self, mocker, volume_id, device):
        self.volume_id, self.device = volume_id, device
        self.attachments = {}  # id -> (status, connector)
        self.volume = 'available'
        self.calls = []
        self.fail_next = {}
        m = mocker
        m.get(f'{CINDER}/attachments/detail', json=self.list_detail)
        m.post(f'{CINDER}/attachments', json=self.create)
        m.post(re.compile(f'{CINDER}/attachments/[^/]+/action'), status_code=204,
               text=self.complete)
        m.delete(re.compile(f'{CINDER}/attachments/[^/]+$'), json=self.delete)
        m.delete(f'{CINDER}/volumes/{volume_id}', json=self.delete_volume)
        m.get(f'{CINDER}/volumes/{volume_id}', json=self.show_volume)

    def _one(self, att_id):
        status, _ = self.attachments[att_id]
        body = copy.deepcopy(recorded('cinder-attachment-create.json')['body']['attachment'])
        body.update(id=att_id, status=status, volume_id=self.volume_id)
        body['connection_info']['device_path'] = self.device
        return body

    def _fail(self, what, context):
        if self.fail_next.pop(what, False):
            context.status_code = 500
            return {'badRequest': {'message': 'injected'}}
        return None

    def list_detail(self, request, context):
        self.calls.append(('list', request.qs['volume_id'][0]))
        body = copy.deepcopy(recorded('cinder-attachment-list-detail-attached.json')['body'])
        body['attachments'] = [self._one(i) for i in self.attachments]
        return body

    def create(self, request, context):
        connector = request.json()['attachment']['connector']
        assert request.json()['attachment']['volume_uuid'] == self.volume_id
        assert request.headers['OpenStack-API-Version'] == 'volume 3.44'
        new = str(uuid.uuid4())
        self.attachments[new] = ('attaching', connector)
        self.volume = 'attaching'
        self.calls.append(('create', connector['host']))
        failed = self._fail('create', context)  # 500 after doing the work
        if failed:
            return failed
        rec = recorded('cinder-attachment-create.json')
        context.status_code = rec['status']
        answer = self._one(new)
        answer['status'] = rec['body']['attachment']['status']  # as recorded
        return {'attachment': answer}

    def complete(self, request, context):
        att_id = request.url.split('/')[-2]
        assert request.json() == {'os-complete': None}
        status, connector = self.attachments[att_id]
        self.attachments[att_id] = ('attached', connector)
        self.volume = 'in-use'
        self.calls.append(('complete', connector['host']))
        return ''

    def delete(self, request, context):
        att_id = request.url.split('/')[-1]
        if att_id not in self.attachments:
            rec = recorded('cinder-attachment-delete-404.json')
            context.status_code = rec['status']
            return rec['body']
        _, connector = self.attachments.pop(att_id)
        self.volume = 'in-use' if self.attachments else 'available'
        self.calls.append(('delete', connector['host']))
        rec = recorded('cinder-attachment-delete.json')
        context.status_code = rec['status']
        return rec['body']

    def delete_volume(self, request, context):
        if self.attachments:  # Cinder refuses an attached volume
            rec = recorded('cinder-attachment-volume-delete-attached.json')
        else:
            self.volume = None
            rec = recorded('cinder-volume-delete.json')
        context.status_code = rec['status']
        self.calls.append(('delete-volume', context.status_code))
        return rec['body']

    def show_volume(self, request, context):
        rec = recorded('cinder-volume-show-404.json' if self.volume is None
                       else 'cinder-volume-show-available.json')
        context.status_code = rec['status']
        return rec['body']

    def hosts(self):
        return [c['host'] for _, c in self.attachments.values()]


class FakeKube:
    """The API objects the attacher reads: pods, our PV, the nodes."""

    def __init__(self, volume_id):
        self.pods = []
        self.after_listing = None
        self.deleted = []
        self.pv = {'metadata': {'name': 'pvc-1', 'annotations': {
            attacher.PROVISIONED_BY: DRIVER, attacher.VOLUME_ID: volume_id}},
            'spec': {'claimRef': {'namespace': 'hub', 'name': 'home-ada'},
                     'persistentVolumeReclaimPolicy': 'Delete'},
            'status': {'phase': 'Bound'}}
        self.nodes = [{'metadata': {'name': n}, 'status': {'addresses': [
            {'type': 'InternalIP', 'address': a}]}}
            for n, a in (('node-1', '10.250.0.3'), ('node-2', '10.250.0.5'))]

    def pod(self, node, phase='Running', claim='home-ada', at='2026-12-02T20:00:00Z'):
        self.pods.append({'metadata': {'namespace': 'hub', 'name': 'jupyter-ada',
                                       'creationTimestamp': at},
                          'spec': {'nodeName': node, 'volumes': [
                              {'name': 'home',
                               'persistentVolumeClaim': {'claimName': claim}}]},
                          'status': {'phase': phase}})

    def get(self, path):
        pods = list(self.pods)
        if path == '/api/v1/pods' and self.after_listing is not None:
            # what the next listing sees: a pod made right after this one
            self.pods, self.after_listing = self.after_listing, None
        return {'/api/v1/persistentvolumes': {'items': [self.pv] if self.pv else []},
                '/api/v1/pods': {'items': pods},
                '/api/v1/nodes': {'items': self.nodes}}[path]

    def merge_patch(self, path, body):
        assert path == '/api/v1/persistentvolumes/pvc-1'
        self.pv['metadata']['annotations'].update(body['metadata']['annotations'])

    def delete(self, path):
        self.deleted.append(path)
        self.pv = None


class FakeMounts:
    def __init__(self, cinder):
        self.cinder = cinder
        self.mounted = None
        self.fail_next = False

    def published(self, volume_id):
        return self.mounted is not None

    def publish(self, volume_id, device_path):
        self.cinder.calls.append(('publish', device_path))
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError('mount failed')
        self.mounted = device_path

    def unpublish(self, volume_id):
        self.cinder.calls.append(('unpublish', None))
        self.mounted = None


@pytest.fixture
def world(tmp_path):
    volume_id = str(uuid.uuid4())
    device = '/var/lib/local-cloud/state/cinder-volumes/volume-%s' % volume_id
    with requests_mock.Mocker() as m:
        cinder = FakeCinder(m, volume_id, device)
        kube = FakeKube(volume_id)
        mounts = FakeMounts(cinder)
        sess = ka_session.Session(auth=token_endpoint.Token(CINDER, 'token'))
        conf = {'csi_driver': DRIVER, 'volume_mounts_dir': str(tmp_path)}
        yield cinder, kube, mounts, attacher.Attacher(conf, kube, sess, mounts)


def test_recorded_shapes_are_what_the_attacher_reads():
    created = recorded('cinder-attachment-create.json')['body']['attachment']
    # (the create's answer is built before the connection was made: the
    # listing right after says "attaching")
    assert created['status'] == 'reserved'
    listed = recorded('cinder-attachment-list-detail-attaching.json')['body']['attachments']
    assert [a['status'] for a in listed] == ['attaching']
    assert created['connection_info']['driver_volume_type'] == 'local'
    assert created['connection_info']['device_path']
    listed = recorded('cinder-attachment-list-detail-attached.json')['body']['attachments']
    assert [a['status'] for a in listed] == ['attached']
    shown = recorded('cinder-attachment-volume-show-as-admin.json')['body']['volume']
    assert shown['status'] == 'in-use'
    assert [a['host_name'] for a in shown['attachments']] == ['rec-node-1']
    assert recorded('cinder-attachment-list-detail-none.json')['body'] == {'attachments': []}


def test_the_volume_follows_its_pod_from_node_to_node_and_is_detached_at_the_end(world):
    cinder, kube, mounts, att = world
    settled = {}
    kube.pod('node-1')
    att.sync(settled)
    assert cinder.volume == 'in-use' and cinder.hosts() == ['node-1']
    assert mounts.mounted == cinder.device
    assert kube.pv['metadata']['annotations'][attacher.ATTACHED_NODE] == 'node-1'
    # nothing new: Cinder is not asked again
    calls = len(cinder.calls)
    att.sync(settled)
    assert len(cinder.calls) == calls
    # the pod gone, a new one on the other node (its first node cordoned)
    kube.pods = []
    kube.pod('node-2')
    att.sync(settled)
    assert cinder.volume == 'in-use' and cinder.hosts() == ['node-2']
    assert ('unpublish', None) not in cinder.calls  # the files stay mounted
    assert [c for c in cinder.calls if c[0] in ('create', 'delete')] == [
        ('create', 'node-1'), ('delete', 'node-1'), ('create', 'node-2')]
    # stopped: unmounted first, then detached
    kube.pods = []
    att.sync(settled)
    assert cinder.volume == 'available' and cinder.attachments == {}
    assert cinder.calls[-2:] == [('unpublish', None), ('delete', 'node-2')]
    assert mounts.mounted is None


def test_a_pod_that_comes_while_the_volume_goes_finds_it_mounted(world):
    cinder, kube, mounts, att = world
    kube.pod('node-1')
    att.sync({})
    kube.pods = []  # stopped ...
    kube.after_listing = list(kube.pods)
    kube.pod('node-1')  # ... and started again, between two listings
    kube.after_listing, kube.pods = kube.pods, kube.after_listing
    att.sync({})
    assert mounts.mounted == cinder.device and cinder.hosts() == ['node-1']
    assert ('unpublish', None) not in cinder.calls


def test_a_finished_pod_lets_the_volume_go(world):
    cinder, kube, mounts, att = world
    kube.pod('node-1', phase='Succeeded')
    att.sync({})
    assert cinder.attachments == {} and mounts.mounted is None


def test_a_crash_at_any_step_of_an_attach_never_makes_a_second_attachment(world):
    cinder, kube, mounts, att = world
    kube.pod('node-1')
    # Cinder made the attachment but answered 500
    cinder.fail_next['create'] = True
    att.sync({})
    assert cinder.volume == 'attaching'
    # the mount fails once (a crash between attach and complete)
    mounts.fail_next = True
    att.sync({})
    assert cinder.volume == 'attaching'
    # a restarted agent (nothing in memory) finishes what is there
    fresh = attacher.Attacher(att.conf, kube, att.sess, mounts)
    fresh.sync({})
    assert cinder.volume == 'in-use'
    assert [c for c in cinder.calls if c[0] == 'create'] == [('create', 'node-1')]
    assert len(cinder.attachments) == 1


def test_a_claim_deleted_with_delete_reclaim_is_detached_before_its_volume_goes(world):
    cinder, kube, mounts, att = world
    kube.pod('node-1')
    att.sync({})
    kube.pods = []
    kube.pv['status']['phase'] = 'Released'
    att.sync({})
    order = [c[0] for c in cinder.calls]
    assert order.index('unpublish') < order.index('delete') < order.index('delete-volume')
    assert cinder.volume is None and kube.deleted == ['/api/v1/persistentvolumes/pvc-1']


# ----------------------------------------------------------------- the mount

def _can_mount():
    if os.geteuid() != 0:
        return 'needs root (loop devices, mount)'
    if not shutil.which('mkfs.ext4') and not os.path.exists('/usr/sbin/mkfs.ext4'):
        return 'needs e2fsprogs'
    return None


@pytest.mark.skipif(_can_mount() is not None, reason=str(_can_mount()))
def test_a_volume_is_formatted_once_and_its_files_are_there_at_the_next_attach(tmp_path):
    os.environ['PATH'] = os.environ.get('PATH', '') + ':/usr/sbin:/sbin'
    device = tmp_path / 'volume-file'
    with open(device, 'wb') as f:
        f.truncate(64 * 2 ** 20)  # sparse, blank: a new Cinder volume's file
    conf = {'volume_mounts_dir': str(tmp_path / 'mounts')}
    mounts = attacher.Mounts(conf)
    vid = str(uuid.uuid4())
    path = attacher.host_path(conf, vid)
    try:
        assert not os.path.exists(path)  # the kubelet waits for it
        mounts.publish(vid, str(device))
        assert mounts.published(vid)
        (pathlib.Path(path) / 'notes.txt').write_text('kept')
        mounts.unpublish(vid)
        assert not os.path.lexists(path) and not mounts.published(vid)
        assert not subprocess.run(['losetup', '-j', str(device)], capture_output=True,
                                  text=True).stdout.strip()
        mounts.publish(vid, str(device))
        assert (pathlib.Path(path) / 'notes.txt').read_text() == 'kept'
    finally:
        mounts.unpublish(vid)
