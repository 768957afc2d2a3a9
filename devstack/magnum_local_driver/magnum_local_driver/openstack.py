"""The cluster's OpenStack credential and its Cinder volumes.

As magnum-capi-helm does for its clusters' cloud provider and Cinder CSI,
the driver creates a Keystone application credential of the cluster's
creator (with the token of the create request) so that the cluster can
manage volumes in the cluster's own project; it is deleted with the cluster
(by Magnum's service user, which holds the admin role).
"""

import time

from keystoneauth1 import loading as ka_loading
from keystoneauth1 import session as ka_session
from keystoneauth1.identity import v3

CINDER = {'service_type': 'block-storage', 'interface': 'public'}


def create_app_credential(context, cluster):
    """{auth_url, id, secret, user_id, project_id} of a new credential."""
    from magnum.common import keystone
    sess = keystone.KeystoneClientV3(context).session
    # From the token's catalog: the conductor has no keystone_authtoken.
    auth_url = sess.get_endpoint(service_type='identity',
                                 interface='public').rstrip('/')
    if not auth_url.endswith('/v3'):
        auth_url += '/v3'
    resp = sess.post(
        '%s/users/%s/application_credentials' % (auth_url, context.user_id),
        json={'application_credential': {
            'name': 'magnum-cluster-%s' % cluster.uuid,
            'description': 'Cinder volumes of Magnum cluster %s (%s)'
                           % (cluster.name, cluster.uuid)}},
        raise_exc=False)
    if resp.status_code >= 400:
        raise RuntimeError(
            'could not create the cluster\'s application credential in '
            'Keystone (%s): %s' % (resp.status_code, resp.text[:300]))
    cred = resp.json()['application_credential']
    return {'auth_url': auth_url, 'id': cred['id'], 'secret': cred['secret'],
            'user_id': context.user_id, 'project_id': cred['project_id']}


def session(cred):
    return ka_session.Session(auth=v3.ApplicationCredential(
        auth_url=cred['auth_url'], application_credential_id=cred['id'],
        application_credential_secret=cred['secret']))


def delete_app_credential(cred):
    import magnum.conf
    auth = ka_loading.load_auth_from_conf_options(magnum.conf.CONF,
                                                  'keystone_auth')
    sess = ka_session.Session(auth=auth)
    resp = sess.delete('%s/users/%s/application_credentials/%s'
                       % (cred['auth_url'], cred['user_id'], cred['id']),
                       raise_exc=False)
    if resp.status_code not in (204, 404):
        raise RuntimeError('Keystone answered %s: %s'
                           % (resp.status_code, resp.text[:200]))


def delete_cluster_volumes(cred, key, cluster_uuid, volumes_dir,
                           timeout=60):
    """Delete the Cinder volumes provisioned for the cluster (metadata
    *key* = its uuid) and their image files; returns problems (text)."""
    from magnum_local_driver import volume_images as images
    sess = session(cred)
    listed = sess.get('/volumes/detail', endpoint_filter=CINDER,
                      params={'metadata': '{"%s": "%s"}'
                              % (key, cluster_uuid)},
                      raise_exc=False)
    if listed.status_code >= 400:
        return ['listing volumes: %s %s' % (listed.status_code,
                                           listed.text[:200])]
    ids = [v['id'] for v in listed.json().get('volumes', [])
           if (v.get('metadata') or {}).get(key) == cluster_uuid]
    problems = []
    for vid in ids:
        resp = sess.delete('/volumes/%s' % vid, endpoint_filter=CINDER,
                           raise_exc=False)
        if resp.status_code not in (202, 404):
            problems.append('volume %s: %s %s' % (vid, resp.status_code,
                                                  resp.text[:200]))
    deadline = time.monotonic() + timeout
    for vid in ids:
        while time.monotonic() < deadline:
            if sess.get('/volumes/%s' % vid, endpoint_filter=CINDER,
                        raise_exc=False).status_code == 404:
                break
            time.sleep(0.5)
        else:
            problems.append('volume %s still there after %d s'
                            % (vid, timeout))
        images.VolumeImages(volumes_dir).remove(vid)
    return problems
