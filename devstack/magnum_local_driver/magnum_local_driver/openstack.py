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


# ------------------------------------------------------------ attachments
# Cinder's attachments API (3.27; completion 3.44), as Nova uses it for a
# server's volume: create (with the connector: Cinder makes the connection
# and answers its connection_info), connect, complete (the volume is in-use),
# delete (detached; the volume is available again).
ATTACHMENTS = {'OpenStack-API-Version': 'volume 3.44'}


def _check(resp, what, ok=(200, 202, 204)):
    if resp.status_code not in ok:
        raise RuntimeError('Cinder refused to %s: %s %s'
                           % (what, resp.status_code, resp.text[:300]))
    return resp


def attachments(sess, volume_id):
    """The volume's attachments, in every state (detail: connection_info)."""
    resp = _check(sess.get('/attachments/detail', endpoint_filter=CINDER,
                           params={'volume_id': volume_id},
                           headers=ATTACHMENTS, raise_exc=False),
                  'list the attachments of %s' % volume_id)
    return [a for a in resp.json()['attachments']
            if a.get('volume_id') == volume_id]


def attach(sess, volume_id, connector):
    """A new attachment of the volume to the connector's host (no instance:
    there is no Nova server here), with its connection_info."""
    resp = _check(sess.post('/attachments', endpoint_filter=CINDER,
                            json={'attachment': {'volume_uuid': volume_id,
                                                 'connector': connector}},
                            headers=ATTACHMENTS, raise_exc=False),
                  'attach %s to %s' % (volume_id, connector.get('host')))
    return resp.json()['attachment']


def complete(sess, attachment_id):
    _check(sess.post('/attachments/%s/action' % attachment_id,
                     endpoint_filter=CINDER, json={'os-complete': None},
                     headers=ATTACHMENTS, raise_exc=False),
           'complete the attachment %s' % attachment_id)


def detach(sess, attachment_id):
    """Delete the attachment (gone already: done)."""
    _check(sess.delete('/attachments/%s' % attachment_id,
                       endpoint_filter=CINDER, headers=ATTACHMENTS,
                       raise_exc=False),
           'delete the attachment %s' % attachment_id, ok=(200, 202, 204, 404))


def delete_cluster_volumes(cred, key, cluster_uuid, timeout=60):
    """Detach and delete the Cinder volumes provisioned for the cluster
    (metadata *key* = its uuid); returns problems (text).  Its nodes are
    gone and nothing is mounted any more."""
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
        try:
            for att in attachments(sess, vid):
                detach(sess, att['id'])
        except RuntimeError as e:
            problems.append('volume %s: %s' % (vid, e))
            continue
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
    return problems
