"""A minimal Kubernetes REST client (requests, client certificate)."""

import requests


class ApiError(Exception):
    def __init__(self, status, text):
        super(ApiError, self).__init__('%s %s' % (status, text[:300]))
        self.status = status


class Kube(object):

    def __init__(self, server, ca, cert, key, timeout=15):
        self.server = server.rstrip('/')
        self.http = requests.Session()
        # Per request: a session's verify loses to REQUESTS_CA_BUNDLE.
        self.verify = ca
        self.http.cert = (cert, key)
        self.timeout = timeout

    def request(self, method, path, body=None, params=None,
                content_type='application/json', ok=(200, 201, 202)):
        headers = {'Accept': 'application/json'}
        kwargs = {}
        if body is not None:
            headers['Content-Type'] = content_type
            kwargs['json'] = body
        resp = self.http.request(method, self.server + path, params=params,
                                 headers=headers, timeout=self.timeout,
                                 verify=self.verify,
                                 **kwargs)
        if resp.status_code not in ok:
            raise ApiError(resp.status_code, resp.text)
        return resp.json() if resp.content else None

    def get(self, path, **params):
        return self.request('GET', path, params=params or None)

    def find(self, path):
        """GET, None on 404."""
        try:
            return self.get(path)
        except ApiError as e:
            if e.status == 404:
                return None
            raise

    def create(self, path, body):
        """POST; an object that already exists is not an error."""
        try:
            return self.request('POST', path, body)
        except ApiError as e:
            if e.status == 409:
                return None
            raise

    def merge_patch(self, path, body):
        return self.request('PATCH', path, body,
                            content_type='application/merge-patch+json')

    def delete(self, path, body=None):
        try:
            return self.request('DELETE', path, body, ok=(200, 202))
        except ApiError as e:
            if e.status == 404:
                return None
            raise
