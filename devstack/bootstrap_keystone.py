"""Populate the local Keystone after ``keystone-manage bootstrap``.

Run by ``devstack/local-cloud up`` with the keystone venv's python (it only
needs keystoneauth1, which keystone depends on).  Creates the service catalog,
the ``service`` project with one user per service, the tenant project
``jupyterhub`` with its user ``hub`` and an application credential for it,
then writes ``clouds.yaml`` and ``cloud.json`` into the cloud directory.

Usage: bootstrap_keystone.py DIR  (passwords come from the environment:
LOCAL_CLOUD_ADMIN_PASSWORD, LOCAL_CLOUD_SERVICE_PASSWORD, LOCAL_CLOUD_HUB_PASSWORD)
"""

import json
import os
import sys

from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

KEYSTONE = "http://127.0.0.1:5000/v3"
REGION = "RegionOne"

SERVICES = [
    # (name, type, url)
    ("zun", "container", "http://127.0.0.1:9517/v1"),
    ("cinderv3", "volumev3", "http://127.0.0.1:8776/v3/%(project_id)s"),
    ("cinder", "block-storage", "http://127.0.0.1:8776/v3/%(project_id)s"),
    ("placement", "placement", "http://127.0.0.1:8778"),
    ("neutron", "network", "http://127.0.0.1:9696/"),
]
SERVICE_USERS = ["zun", "cinder", "placement", "neutron"]
# With LOCAL_CLOUD_MAGNUM=1: Magnum and the Glance stub its templates need.
if os.environ.get("LOCAL_CLOUD_MAGNUM") == "1":
    SERVICES += [
        ("magnum", "container-infra", "http://127.0.0.1:9511/v1"),
        ("glance", "image", "http://127.0.0.1:9292"),
    ]
    SERVICE_USERS += ["magnum", "glance"]


class Keystone:
    def __init__(self, password):
        auth = v3.Password(
            auth_url=KEYSTONE,
            username="admin",
            password=password,
            project_name="admin",
            user_domain_id="default",
            project_domain_id="default",
        )
        self.sess = ks_session.Session(auth=auth)

    def _req(self, method, path, **kw):
        resp = self.sess.request(
            KEYSTONE + path, method, raise_exc=False, **kw
        )
        if resp.status_code >= 400:
            raise SystemExit(
                "keystone %s %s: %s %s"
                % (method, path, resp.status_code, resp.text)
            )
        return resp.json() if resp.content else None

    def get(self, path):
        return self._req("GET", path)

    def post(self, path, body):
        return self._req("POST", path, json=body)

    def put(self, path):
        return self._req("PUT", path)

    def find(self, kind, name, **filters):
        q = "&".join(["name=%s" % name] + ["%s=%s" % kv for kv in filters.items()])
        items = self.get("/%s?%s" % (kind, q))[kind]
        return items[0] if items else None

    def ensure(self, kind, single, name, body, **filters):
        found = self.find(kind, name, **filters)
        if found:
            return found
        return self.post("/" + kind, {single: dict(body, name=name)})[single]


def main():
    cloud_dir = sys.argv[1]
    admin_pw = os.environ["LOCAL_CLOUD_ADMIN_PASSWORD"]
    service_pw = os.environ["LOCAL_CLOUD_SERVICE_PASSWORD"]
    hub_pw = os.environ["LOCAL_CLOUD_HUB_PASSWORD"]
    ks = Keystone(admin_pw)

    for name, stype, url in SERVICES:
        svc = ks.ensure("services", "service", name, {"type": stype, "enabled": True})
        existing = ks.get("/endpoints?service_id=%s" % svc["id"])["endpoints"]
        have = {e["interface"] for e in existing}
        for interface in ("public", "internal", "admin"):
            if interface not in have:
                ks.post(
                    "/endpoints",
                    {
                        "endpoint": {
                            "service_id": svc["id"],
                            "interface": interface,
                            "url": url,
                            "region_id": REGION,
                            "enabled": True,
                        }
                    },
                )

    roles = {r["name"]: r["id"] for r in ks.get("/roles")["roles"]}
    for role in ("service", "member", "reader", "admin"):
        if role not in roles:
            roles[role] = ks.post("/roles", {"role": {"name": role}})["role"]["id"]

    service_project = ks.ensure(
        "projects", "project", "service",
        {"domain_id": "default", "description": "Service project"},
        domain_id="default",
    )
    for user in SERVICE_USERS:
        u = ks.ensure(
            "users", "user", user,
            {"domain_id": "default", "password": service_pw, "enabled": True},
            domain_id="default",
        )
        for role in ("admin", "service"):
            ks.put("/projects/%s/users/%s/roles/%s"
                   % (service_project["id"], u["id"], roles[role]))

    project = ks.ensure(
        "projects", "project", "jupyterhub",
        {"domain_id": "default", "description": "JupyterHub tenant"},
        domain_id="default",
    )
    hub = ks.ensure(
        "users", "user", "hub",
        {"domain_id": "default", "password": hub_pw, "enabled": True,
         "default_project_id": project["id"]},
        domain_id="default",
    )
    for role in ("member", "reader"):
        ks.put("/projects/%s/users/%s/roles/%s"
               % (project["id"], hub["id"], roles[role]))

    # The application credential is created by the hub user itself.
    hub_auth = v3.Password(
        auth_url=KEYSTONE, username="hub", password=hub_pw,
        project_name="jupyterhub", user_domain_id="default",
        project_domain_id="default",
    )
    hub_sess = ks_session.Session(auth=hub_auth)
    resp = hub_sess.post(
        KEYSTONE + "/users/%s/application_credentials" % hub["id"],
        json={"application_credential": {
            "name": "jupyterhub-local",
            "description": "local-cloud application credential for the hub",
        }},
        raise_exc=False,
    )
    if resp.status_code == 409:  # already there from an earlier run: renew it
        creds = hub_sess.get(
            KEYSTONE + "/users/%s/application_credentials?name=jupyterhub-local"
            % hub["id"]
        ).json()["application_credentials"]
        for c in creds:
            hub_sess.delete(KEYSTONE + "/users/%s/application_credentials/%s"
                            % (hub["id"], c["id"]))
        resp = hub_sess.post(
            KEYSTONE + "/users/%s/application_credentials" % hub["id"],
            json={"application_credential": {"name": "jupyterhub-local"}},
        )
    elif resp.status_code >= 400:
        raise SystemExit("application credential: %s %s"
                         % (resp.status_code, resp.text))
    appcred = resp.json()["application_credential"]

    facts = {
        "auth_url": KEYSTONE,
        "region_name": REGION,
        "project_id": project["id"],
        "project_name": "jupyterhub",
        "user_id": hub["id"],
        "username": "hub",
        "password": hub_pw,
        "service_project_id": service_project["id"],
        "application_credential_id": appcred["id"],
        "application_credential_secret": appcred["secret"],
    }
    clouds = """\
# Generated by devstack/local-cloud (local stand-in cloud, loopback only).
clouds:
  local:
    auth_type: password
    auth:
      auth_url: {auth_url}
      username: hub
      password: "{password}"
      project_name: jupyterhub
      user_domain_name: Default
      project_domain_name: Default
    region_name: {region_name}
    interface: public
    identity_api_version: 3
  local-appcred:
    auth_type: v3applicationcredential
    auth:
      auth_url: {auth_url}
      application_credential_id: "{application_credential_id}"
      application_credential_secret: "{application_credential_secret}"
    region_name: {region_name}
    interface: public
    identity_api_version: 3
  local-admin:
    auth_type: password
    auth:
      auth_url: {auth_url}
      username: admin
      password: "{admin_password}"
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: {region_name}
    interface: public
    identity_api_version: 3
""".format(admin_password=admin_pw, **facts)
    for name, text in (("clouds.yaml", clouds),
                       ("cloud.json", json.dumps(facts, indent=2) + "\n")):
        path = os.path.join(cloud_dir, name)
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.chmod(path + ".tmp", 0o600)
        os.replace(path + ".tmp", path)
    print("keystone: project jupyterhub %s, application credential %s"
          % (project["id"], appcred["id"]))


if __name__ == "__main__":
    main()
