"""End-to-end harness: the local OpenStack cloud and real JupyterHub processes.

Fixtures
- ``local_cloud`` (session): brings ``devstack/local-cloud`` up once per test
  session (and down afterwards, unless it was already running or
  ``LOCAL_CLOUD_KEEP=1``).  Yields a :class:`LocalCloud`.
- ``hub`` (session): one JupyterHub process (with configurable-http-proxy) using
  ``ZunSpawner`` against the local cloud.  Yields a :class:`HubProcess`.
- ``hub_factory``: start further hubs with extra config lines (each stopped at the
  end of the test, its servers too).
- ``local_spawner``: a ZunSpawner built in-process against the local cloud, for
  tests that need one spawner's start/poll/stop without a hub.
- ``project_at_start`` (session, autouse): the project's inventory (containers,
  volumes with their attachment status, floating IPs, ports, security groups,
  Magnum clusters and templates) before the first test.

Checks of what exists in the cloud go through ``LocalCloud``'s python-zunclient and
openstacksdk clients, never through magnum_spawner's own code.
"""

import asyncio
import json
import os
import pathlib
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid

import pytest
import requests

REPO = pathlib.Path(__file__).resolve().parents[2]
LOCAL_CLOUD = REPO / "devstack" / "local-cloud"
CLOUD_DIR = pathlib.Path(os.environ.get("MAGNUM_CLOUD_DIR", REPO / ".cache" / "local-cloud"))
#: The local cloud's zun-compute runs upstream Zun's docker driver on Docker hosts
#: of its own (devstack/docker-cloud.sh); another cloud (MAGNUM_E2E_CLOUDS_YAML, see
#: below) pulls public images.
DOCKER = not os.environ.get("MAGNUM_E2E_CLOUDS_YAML")
#: What a real cloud pulls.
PUBLIC_IMAGE = "quay.io/jupyter/base-notebook"


def registry_image():
    """The notebook image devstack/notebook-image built, in the local registry."""
    name = subprocess.run([str(REPO / "devstack" / "notebook-image"), "name"], check=True,
                          capture_output=True, text=True).stdout.strip()
    return "127.0.0.1:%s/%s" % (os.environ.get("LOCAL_REGISTRY_PORT", "5050"), name)


#: The notebook image the Zun tests create from.
IMAGE = registry_image() if DOCKER else PUBLIC_IMAGE
#: Magnum's local clusters have real nodes (containerd, kubelet, kube-proxy), which
#: pull the notebook image from the local registry.
MAGNUM_IMAGE = registry_image()

pytestmark = pytest.mark.localcloud


#: Tests that must run after every other one (they check what the others left).
RUN_LAST = "test_project_left_as_found_e2e.py"


#: Screenshots the browser test took, named at the end of the run's output.
SCREENSHOTS = []


#: The browser tests' Chromium (Debian's; `make e2e` installs it)
CHROMIUM = os.environ.get("BROWSER_EXECUTABLE", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # root in a container: Chromium's sandbox needs user namespaces
    "--disable-background-networking",  # no update checks, safe browsing, etc.
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--no-first-run",
    "--metrics-recording-only",
]


@pytest.fixture
def browser_page():
    """A headless Chromium page (Playwright) whose ``shot(name)`` saves a screenshot
    under ``.cache/browser/<run>/`` (named at the end of the run)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make e2e` installs Debian's chromium")
    run = time.strftime("%Y%m%d-%H%M%S")
    shots = REPO / ".cache" / "browser" / run
    shots.mkdir(parents=True, exist_ok=True)
    taken = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1280, "height": 860}).new_page()
        page.set_default_timeout(60_000)

        def shot(name):
            path = shots / f"{len(taken) + 1:02d}-{name}.png"
            page.screenshot(path=str(path), full_page=True)
            taken.append(path)

        page.shot = shot
        try:
            yield page
        finally:
            browser.close()
            SCREENSHOTS.extend(path.relative_to(REPO) for path in taken)


def pytest_terminal_summary(terminalreporter):
    if SCREENSHOTS:
        terminalreporter.section("browser screenshots")
        for path in SCREENSHOTS:
            terminalreporter.write_line(str(path))


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "docker_path: only on the local cloud (its own Docker hosts)")


def pytest_collection_modifyitems(config, items):
    here = pathlib.Path(__file__).parent
    for item in items:
        if here in pathlib.Path(item.fspath).parents:
            item.add_marker(pytest.mark.localcloud)
    # Tests of the Docker path only exist there (deselected, not skipped: under
    # CI a skip fails the run).
    absent = [m for m, here in (("docker_path", DOCKER),) if not here]
    other = [i for i in items if any(i.get_closest_marker(m) for m in absent)]
    if other:
        config.hook.pytest_deselected(items=other)
        items[:] = [i for i in items if i not in other]
    items.sort(key=lambda item: pathlib.Path(item.fspath).name == RUN_LAST)


def docker_facts_beside(cloud, clouds_yaml):
    """Copy the local cloud's docker.json beside another clouds.yaml: the hub's
    config (etc/local_jupyterhub_config.py) reads it next to the clouds.yaml it is
    given, for the image in the local registry and the hub's address on the Docker
    bridge (without it the hub listens on 127.0.0.1, which no server reaches)."""
    docker = cloud.clouds_yaml.with_name("docker.json")
    if docker.exists():
        clouds_yaml.with_name("docker.json").write_text(docker.read_text())


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout, interval=0.5, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


async def execute_cell(ws_url, headers, code, timeout):
    """Run ``code`` over a kernel's websocket; ``stdout``, ``stderr``, ``error``,
    ``died`` (also used by benchmarks/load_students.py)."""
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    req = HTTPRequest(ws_url, headers=headers)
    conn = await websocket_connect(req)
    msg_id = uuid.uuid4().hex
    await conn.write_message(json.dumps({
        "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "e2e",
                   "session": uuid.uuid4().hex, "version": "5.3"},
        "parent_header": {}, "metadata": {}, "channel": "shell",
        "content": {"code": code, "silent": False, "store_history": False,
                    "user_expressions": {}, "allow_stdin": False},
    }))
    out = {"stdout": "", "stderr": "", "error": None, "died": False}
    replied = idle = False
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"cell did not finish in {timeout} s: {out}")
            raw = await asyncio.wait_for(conn.read_message(), remaining)
            if raw is None:
                out["died"] = True
                return out
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                if msg.get("msg_type") == "status" and msg["content"].get(
                    "execution_state"
                ) in ("restarting", "dead"):
                    out["died"] = True
                    return out
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out[content["name"]] += content["text"]
            elif kind == "error":
                out["error"] = f"{content['ename']}: {content['evalue']}"
            elif kind == "status" and content["execution_state"] in ("restarting", "dead"):
                out["died"] = True
                return out
            elif kind == "execute_reply":
                replied = True
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
            # the reply (shell) may overtake the output (iopub): the cell is
            # done when both the reply and the kernel's idle have arrived
            if replied and idle:
                return out
    finally:
        conn.close()


class LocalCloud:
    """The cloud under test, seen through clients independent of the spawner.

    Every check of what exists in the cloud goes through python-zunclient
    (``zunclient``) and openstacksdk (``sdk``), never through magnum_spawner's own
    Zun client or auth code: a bug shared by the spawner and the check would
    otherwise pass unseen.  ``run`` drives in-process spawners (the code under test).
    """

    #: The microversion of Zun 18 (python-zunclient 5.5.0's maximum too).
    ZUN_API_VERSION = "1.40"

    def __init__(self, clouds_yaml, cloud="local"):
        self.clouds_yaml = clouds_yaml
        self.cloud = cloud
        self._loop = asyncio.new_event_loop()
        self._region = None
        self._zunclient = None
        self._sdk = None

    def run(self, coro):
        return self._loop.run_until_complete(coro)

    @property
    def region(self):
        """openstacksdk's CloudRegion for the hub's cloud (its keystoneauth session)."""
        if self._region is None:
            import openstack.config

            config = openstack.config.OpenStackConfig(config_files=[str(self.clouds_yaml)])
            self._region = config.get_one(cloud=self.cloud)
        return self._region

    @property
    def zunclient(self):
        """python-zunclient on the hub's project."""
        if self._zunclient is None:
            from zunclient import client as zun_client

            self._zunclient = zun_client.Client(
                self.ZUN_API_VERSION,
                session=self.region.get_session(),
                region_name=self.region.get_region_name("container"),
                interface=self.region.get_interface("container") or "public",
            )
        return self._zunclient

    @property
    def sdk(self):
        """An openstacksdk Connection on the hub's project."""
        if self._sdk is None:
            import openstack.connection

            self._sdk = openstack.connection.Connection(config=self.region)
        return self._sdk

    @property
    def block_storage(self):
        return self.sdk.block_storage

    def containers(self, **labels):
        """The project's containers carrying every one of ``labels``, as dicts."""
        found = [c.to_dict() for c in self.zunclient.containers.list()]
        return [
            c for c in found
            if all((c.get("labels") or {}).get(k) == v for k, v in labels.items())
        ]

    def container(self, uuid):
        """The container as Zun shows it, or None when Zun answers 404."""
        from zunclient import exceptions

        try:
            return self.zunclient.containers.get(uuid).to_dict()
        except exceptions.NotFound:
            return None

    def logs(self, uuid, tail=50):
        return self.zunclient.containers.logs(uuid, stdout=True, stderr=True, tail=tail)

    def volumes(self, **metadata):
        """The project's Cinder volumes whose metadata has every one of ``metadata``."""
        query = {"properties": json.dumps(metadata)} if metadata else {}
        found = self.block_storage.volumes(details=True, **query)
        return [
            v for v in found
            if all((v.metadata or {}).get(k) == x for k, x in metadata.items())
        ]

    def volume_status(self, volume_id):
        from openstack import exceptions

        try:
            return self.block_storage.get_volume(volume_id).status
        except exceptions.NotFoundException:
            return None

    def network_inventory(self):
        """The project's floating IPs, ports and security groups (Neutron), as
        id -> a few attributes; a kind the Neutron does not serve is None."""
        from openstack import exceptions

        net = self.sdk.network
        kinds = {
            "floating_ips": (net.ips, lambda f: (f.floating_ip_address, f.port_id)),
            # Zun makes a port per container, and a security group per container
            # with exposed_ports: both must go with the container
            "ports": (net.ports, lambda p: (p.device_owner, p.device_id)),
            "security_groups": (net.security_groups, lambda g: g.name),
        }
        found = {}
        for kind, (listing, describe) in kinds.items():
            try:
                found[kind] = {r.id: describe(r) for r in listing()}
            except exceptions.SDKException:
                found[kind] = None
        return found

    def inventory(self):
        """What the hub's project holds, read through python-zunclient and
        openstacksdk: containers, volumes, Neutron's floating IPs, ports and
        security groups, Magnum's clusters and templates, as id -> a few attributes.

        Attachments are part of it: a volume that stays ``in-use`` differs from one
        that went back to ``available``.
        """
        return {
            "containers": {c["uuid"]: (c["name"], c["status"]) for c in self.containers()},
            "volumes": {v.id: (v.name, v.status) for v in self.volumes()},
            **self.network_inventory(),
            **self.magnum_inventory(),
        }

    def magnum_inventory(self):
        """Magnum's clusters and cluster templates, when the cloud has Magnum."""
        if not self.sdk.has_service("container-infrastructure-management"):
            return {"clusters": None, "cluster_templates": None}
        cim = self.sdk.container_infrastructure_management
        return {
            "clusters": {c.id: (c.name, c.status) for c in cim.clusters()},
            "cluster_templates": {t.id: t.name for t in cim.cluster_templates()},
        }

    def process_of(self, container_uuid):
        """Host pids whose environment says they belong to this container."""
        c = self.container(container_uuid)
        env_user = (c.get("environment") or {}).get("JUPYTERHUB_USER")
        server = (c.get("environment") or {}).get("JUPYTERHUB_SERVER_NAME", "")
        pids = []
        for proc in pathlib.Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                environ = (proc / "environ").read_bytes().split(b"\0")
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if (f"JUPYTERHUB_USER={env_user}".encode() in environ
                    and f"JUPYTERHUB_SERVER_NAME={server}".encode() in environ
                    and b"jupyterhub-singleuser" in cmdline):
                pids.append(int(proc.name))
        return pids

    def delete_container(self, uuid, timeout=60):
        """Stop and delete a container (python-zunclient) and wait for Zun's 404."""
        from zunclient import exceptions

        def gone():
            try:
                self.zunclient.containers.delete(uuid, stop=True)
            except exceptions.NotFound:
                return True
            except exceptions.Conflict:
                return False  # still busy (creating, stopping): ask again
            return self.container(uuid) is None

        wait_for(gone, timeout, 1, f"container {uuid} to be deleted")

    def wait_containers_gone(self, hub_id, timeout, keep=()):
        """Wait (at most ``timeout`` s) until a hub's containers are gone, but ``keep``."""
        def gone():
            return not [c for c in self.containers(**{"hub.jupyter.org/hub": hub_id})
                        if c["uuid"] not in keep]
        try:
            wait_for(gone, timeout, 2, f"the containers of {hub_id} to be gone")
        except AssertionError:
            pass

    def remove_hub_leftovers(self, hub_id, keep=(), remove_leaks=True, settle=30):
        """Delete what a test hub or spawner left, and return what its spawner
        should not have left, one sentence each.

        Call it once every server was stopped through the spawner (the containers
        in ``keep`` are servers a test left running on purpose).  Expected, and
        deleted quietly (the project's quota is small): those containers, and one
        home volume per user and server, detached.  Leaks: any other container of
        the hub still there after ``settle`` s, a volume still attached once the
        containers are gone, a second home volume.  With ``remove_leaks`` False the
        leaks stay, for the project's inventory to show them.
        """
        label = {"hub.jupyter.org/hub": hub_id}
        self.wait_containers_gone(hub_id, settle, keep)
        leaks, leaked = [], set()
        for c in self.containers(**label):
            if c["uuid"] not in keep:
                leaks.append(f"container {c['uuid']} ({c['name']}, {c['status']})")
                leaked.add(c["uuid"])
            if c["uuid"] not in leaked or remove_leaks:
                self._try(self.delete_container, c["uuid"])
        homes = {}
        for volume in self.volumes(**label):
            meta = volume.metadata or {}
            if meta.get("hub.jupyter.org/managed-by") != "magnum-spawner":
                continue  # not made by the spawner (a test's own): the test's to delete
            try:
                wait_for(lambda vid=volume.id: self.volume_status(vid) in (
                    "available", "error", "deleting", None),
                    60 if remove_leaks or not leaked else 0, 1, "a detach")
            except AssertionError:
                pass
            status = self.volume_status(volume.id)
            if status in ("deleting", None):
                continue  # a test's own clean-up
            owner = (meta.get("hub.jupyter.org/user"), meta.get("hub.jupyter.org/server", ""))
            if status not in ("available", "error"):
                leaks.append(f"volume {volume.id} ({volume.name}) still {status} "
                             "after its servers stopped")
            elif owner in homes:
                leaks.append(f"volume {volume.id} ({volume.name}): a second home of "
                             f"{owner[0]}/{owner[1]} beside {homes[owner]}")
            else:
                homes[owner] = volume.id
                self._try(self.delete_volume, volume.id)
                continue
            if remove_leaks:
                self._try(self.delete_volume, volume.id)
        return leaks

    def delete_volume(self, volume_id, timeout=60):
        """Delete a volume once it is detached (openstacksdk)."""
        wait_for(lambda: self.volume_status(volume_id) not in ("in-use", "attaching",
                                                              "detaching", "reserved"),
                 timeout, 1, f"volume {volume_id} to be detached")
        self.block_storage.delete_volume(volume_id, ignore_missing=True)

    @staticmethod
    def _try(delete, what):
        try:
            delete(what)
        except Exception as e:
            print(f"could not delete {what}: {e}")

    def close(self):
        if self._sdk is not None:
            self._sdk.close()
        kubespawner = sys.modules.get("kubespawner")
        if kubespawner is not None:
            # KubeSpawner's pod and event watches live on this loop (one set per
            # process): stopped here, not destroyed pending with it
            self.run(asyncio.wait_for(kubespawner.KubeSpawner._stop_all_reflectors(), 30))
        self._loop.close()


#: Run the suite against another cloud (e.g. DevStack): its clouds.yaml and cloud,
#: and a hub config file every test hub loads after the local one (the DevStack
#: plugin's spawner_config.py: network, floating IPs, exposed port, hub address).
#: devstack/integration-tests sets all three.
EXTERNAL_CLOUDS_YAML = os.environ.get("MAGNUM_E2E_CLOUDS_YAML")
EXTERNAL_CLOUD = os.environ.get("MAGNUM_E2E_CLOUD", "jupyterhub")
EXTERNAL_HUB_CONFIG = os.environ.get("MAGNUM_E2E_HUB_CONFIG")

local_only = pytest.mark.skipif(
    bool(EXTERNAL_CLOUDS_YAML),
    reason="looks inside the local cloud's processes (not possible on a remote cloud)",
)


def external_cloud_missing():
    """Why the configured external cloud cannot be used (None when it can)."""
    path = pathlib.Path(EXTERNAL_CLOUDS_YAML)
    if not path.is_file():
        return (f"no cloud configured: MAGNUM_E2E_CLOUDS_YAML={path} does not exist "
                "(on a DevStack, the plugin writes it; see devstack/README.md)")
    import openstack.config
    from openstack import exceptions

    try:
        openstack.config.OpenStackConfig(config_files=[str(path)]).get_one(
            cloud=EXTERNAL_CLOUD
        )
    except exceptions.ConfigException as e:
        return f"no cloud configured: cloud {EXTERNAL_CLOUD!r} in {path}: {e}"
    return None


def require_magnum(cloud):
    """Fail (not skip) when the cloud has no Magnum: make e2e brings it up with it."""
    try:
        cloud.sdk.session.get_endpoint(service_type="container-infra",
                                       interface="public")
    except Exception:
        pytest.fail("the local cloud runs without Magnum: bring it up with "
                    "LOCAL_CLOUD_MAGNUM=1 (make e2e does)")


def magnum_csr(common_name, organization=None):
    """A new key and a CSR for it (PEM texts), made here, not by the code under test."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    names = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        names.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(names)).sign(
        key, hashes.SHA256())
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    return csr.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()


@pytest.fixture(scope="session")
def local_cloud():
    if EXTERNAL_CLOUDS_YAML:
        missing = external_cloud_missing()
        if missing:
            pytest.skip(missing)
        cloud = LocalCloud(pathlib.Path(EXTERNAL_CLOUDS_YAML), EXTERNAL_CLOUD)
        yield cloud
        cloud.close()
        return
    if os.geteuid() != 0:
        pytest.skip("the local cloud needs root (namespaces, cgroups, loop devices)")
    was_up = subprocess.run(
        [str(LOCAL_CLOUD), "status"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ).returncode == 0
    if not was_up:
        subprocess.run([str(LOCAL_CLOUD), "up"], check=True)
    cloud = LocalCloud(CLOUD_DIR / "clouds.yaml")
    yield cloud
    cloud.close()
    if not was_up and not os.environ.get("LOCAL_CLOUD_KEEP"):
        subprocess.run([str(LOCAL_CLOUD), "down"], check=False)


@pytest.fixture(scope="session", autouse=True)
def project_at_start(local_cloud):
    """The project's inventory before the first test (independent clients)."""
    return local_cloud.inventory()


def require_chp():
    local = REPO / ".cache" / "node" / "node_modules" / ".bin" / "configurable-http-proxy"
    if not local.exists() and not shutil.which("configurable-http-proxy"):
        pytest.fail("configurable-http-proxy is missing: run `make chp` (make e2e does)")


class HubProcess:
    """A real JupyterHub process with ZunSpawner, driven through its REST API."""

    def __init__(self, workdir, cloud, extra_config="", env=None):
        require_chp()
        self.workdir = pathlib.Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.cloud = cloud
        self.port = free_port()
        self.hub_port = free_port()
        self.proxy_api_port = free_port()
        self.token = secrets.token_hex(16)
        self.hub_id = f"e2e-{uuid.uuid4().hex[:8]}"
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None
        self.log_path = self.workdir / "jupyterhub.log"
        self.extra_config = textwrap.dedent(extra_config)
        # No idle culler unless a test asks for one (LOCAL_HUB_CULL_TIMEOUT).
        self.extra_env = {"LOCAL_HUB_CULL_TIMEOUT": "0", **(env or {})}
        self.write_config()

    def write_config(self):
        """The shared local-cloud hub config plus this hub's own lines."""
        config = f"""
        c = get_config()  # noqa
        load_subconfig({str(REPO / "etc" / "local_jupyterhub_config.py")!r})
        # a hub restart must leave the servers (and the proxy) running
        c.JupyterHub.cleanup_servers = False
        c.JupyterHub.cleanup_proxy = False
        # the config's own services (the idle culler when on) and the test's
        c.JupyterHub.services = (list(c.JupyterHub.services) if "services" in c.JupyterHub
                                 else []) + [{{"name": "e2e", "api_token": {self.token!r}}}]
        c.JupyterHub.load_roles = (list(c.JupyterHub.load_roles) if "load_roles" in c.JupyterHub
                                   else []) + [{{
            "name": "e2e-admin",
            "scopes": ["admin:users", "admin:servers", "admin:server_state",
                       "access:servers", "read:users", "list:users", "tokens"],
            "services": ["e2e"],
        }}]
        """
        config = textwrap.dedent(config)
        if EXTERNAL_CLOUDS_YAML and EXTERNAL_HUB_CONFIG:
            config += f"load_subconfig({EXTERNAL_HUB_CONFIG!r})\n"
        config += "\n" + self.extra_config + "\n"
        (self.workdir / "jupyterhub_config.py").write_text(config)

    def environment(self):
        env = dict(os.environ)
        env.update({
            "OS_CLIENT_CONFIG_FILE": str(self.cloud.clouds_yaml),
            "LOCAL_HUB_DIR": str(self.workdir),
            "LOCAL_HUB_PORT": str(self.port),
            "LOCAL_HUB_API_PORT": str(self.hub_port),
            "LOCAL_HUB_PROXY_API_PORT": str(self.proxy_api_port),
            "LOCAL_HUB_ID": self.hub_id,
            "LOCAL_HUB_CLOUD": self.cloud.cloud,
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        })
        env.pop("OS_CLOUD", None)
        return env

    # -- process ----------------------------------------------------------

    def start(self, timeout=60):
        env = self.environment()
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(self.workdir / "jupyterhub_config.py")],
            cwd=self.workdir, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def up():
            if self.proc.poll() is not None:
                raise AssertionError(f"jupyterhub exited:\n{self.log_tail()}")
            try:
                return requests.get(f"{self.url}/hub/api/", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_for(up, timeout, what="the hub to answer")

    def stop_hub(self):
        """Stop the hub process only (servers and proxy keep running)."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def restart(self):
        self.stop_hub()
        self.start()

    def shutdown(self, remove_leaks=True):
        """Stop every server of this hub, the hub and the proxy; delete what is left.

        Returns what the spawner left once its servers were stopped (see
        ``LocalCloud.remove_hub_leftovers``), one sentence each; a second call
        returns nothing new.
        """
        running = self.proc is not None and self.proc.poll() is None
        if running:
            try:
                for user in self.api("GET", "/users").json():
                    for name in list(user.get("servers", {})):
                        self.stop_server(user["name"], name, wait=False)
                wait_for(lambda: not any(
                    u.get("servers") for u in self.api("GET", "/users").json()
                ), 120, 1, "servers to stop")
            except Exception as e:  # still stop the processes
                print(f"hub shutdown: {e}")
            # the hub's own clean-up (its janitor's retries) gets its time
            self.cloud.wait_containers_gone(self.hub_id, 60)
        self.stop_hub()
        pid_file = self.workdir / "proxy.pid"
        if pid_file.exists():
            try:
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
            except (ProcessLookupError, ValueError):
                pass
        # a hub that was not running could not stop its servers: their containers
        # are not the spawner's leaks
        keep = () if running else {
            c["uuid"] for c in self.cloud.containers(**{"hub.jupyter.org/hub": self.hub_id})}
        return self.cloud.remove_hub_leftovers(self.hub_id, keep, remove_leaks, settle=0)

    def log_tail(self, lines=60):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # -- REST API ---------------------------------------------------------

    def api(self, method, path, **kwargs):
        headers = kwargs.pop("headers", {})
        headers["Authorization"] = f"token {self.token}"
        return requests.request(
            method, f"{self.url}/hub/api{path}", headers=headers, timeout=30, **kwargs
        )

    def user(self, name):
        r = self.api("GET", f"/users/{name}", params={"include_stopped_servers": "1"})
        return r.json() if r.status_code == 200 else None

    def ensure_user(self, name):
        if self.user(name) is None:
            r = self.api("POST", f"/users/{name}")
            assert r.status_code in (201, 409), r.text

    def server(self, user, server_name=""):
        info = self.user(user) or {}
        return (info.get("servers") or {}).get(server_name)

    def start_server(self, user, server_name="", options=None, timeout=180):
        """Start a server and wait until it is ready; returns the hub's server model."""
        self.ensure_user(user)
        path = f"/users/{user}/servers/{server_name}" if server_name else f"/users/{user}/server"
        r = self.api("POST", path, json=options or {})
        if r.status_code not in (201, 202):
            raise AssertionError(f"start {user}/{server_name}: {r.status_code} {r.text}")

        def ready():
            s = self.server(user, server_name)
            if s is None:
                raise AssertionError(
                    f"{user}/{server_name} failed to start:\n{self.log_tail()}"
                )
            return s if s.get("ready") else None

        if r.status_code == 202:
            time.sleep(1)
        return wait_for(ready, timeout, 1, f"{user}/{server_name} to be ready")

    def request_start(self, user, server_name="", options=None):
        """Ask for a start and return the hub's answer without waiting."""
        self.ensure_user(user)
        path = f"/users/{user}/servers/{server_name}" if server_name else f"/users/{user}/server"
        return self.api("POST", path, json=options or {})

    def stop_server(self, user, server_name="", wait=True, remove=False):
        path = f"/users/{user}/servers/{server_name}" if server_name else f"/users/{user}/server"
        r = self.api("DELETE", path, json={"remove": True} if remove else None)
        assert r.status_code in (202, 204, 400, 404), r.text
        if wait:
            wait_for(
                lambda: (self.server(user, server_name) or {}).get("ready") is not True
                and not (self.server(user, server_name) or {}).get("pending"),
                120, 1, f"{user}/{server_name} to stop",
            )

    def delete_user(self, user):
        r = self.api("DELETE", f"/users/{user}")
        assert r.status_code in (204, 404), r.text

    def server_url(self, user, server_name=""):
        base = f"{self.url}/user/{user}/"
        return f"{base}{server_name}/" if server_name else base

    def server_api(self, method, user, path, server_name="", **kwargs):
        headers = kwargs.pop("headers", {})
        headers["Authorization"] = f"token {self.token}"
        return requests.request(
            method, self.server_url(user, server_name) + path.lstrip("/"),
            headers=headers, timeout=60, **kwargs,
        )

    def run_cell(self, user, code, server_name="", timeout=60):
        """Run ``code`` in a new kernel of the user's server; returns its output.

        Returns a dict: ``stdout``, ``stderr``, ``error`` (ename: evalue or None),
        ``died`` (True when the kernel died while running it).
        """
        r = self.server_api("POST", user, "api/kernels", server_name, json={})
        assert r.status_code == 201, r.text
        kernel = r.json()["id"]
        ws_url = (self.server_url(user, server_name).replace("http://", "ws://")
                  + f"api/kernels/{kernel}/channels")
        try:
            return asyncio.run(self._execute(ws_url, code, timeout))
        finally:
            self.server_api("DELETE", user, f"api/kernels/{kernel}", server_name)

    async def _execute(self, ws_url, code, timeout):
        return await execute_cell(ws_url, {"Authorization": f"token {self.token}"}, code,
                                  timeout)


def fail_on_leaks(whose, leaks):
    """Fail the test whose teardown had to delete what the spawner left."""
    if leaks:
        pytest.fail(f"{whose} left in the cloud, after every server was stopped "
                    f"(the harness deleted it): {'; '.join(leaks)}", pytrace=False)


@pytest.fixture(scope="session")
def hub(local_cloud, tmp_path_factory):
    h = HubProcess(tmp_path_factory.mktemp("hub"), local_cloud)
    h.start()
    yield h
    fail_on_leaks("the session hub", h.shutdown())


@pytest.fixture
def hub_factory(local_cloud, tmp_path):
    started = []

    def make(extra_config="", env=None):
        h = HubProcess(tmp_path / f"hub{len(started)}", local_cloud, extra_config, env)
        h.start()
        started.append(h)
        return h

    yield make
    leaks = []
    for h in started:
        leaks += h.shutdown()
    fail_on_leaks("this test's hubs", leaks)


@pytest.fixture
def local_spawner(local_cloud):
    """Build ZunSpawners in-process against the local cloud (no hub)."""
    from jupyterhub.objects import Hub, Server
    from traitlets.config import Config

    from magnum_spawner import ZunSpawner
    from tests.helpers import FakeUser

    made = []
    os.environ["OS_CLIENT_CONFIG_FILE"] = str(local_cloud.clouds_yaml)

    def make(username, **config):
        cfg = Config()
        cfg.ZunSpawner.cloud = local_cloud.cloud
        cfg.ZunSpawner.hub_id = f"e2e-{uuid.uuid4().hex[:8]}"
        cfg.ZunSpawner.image = IMAGE
        cfg.ZunSpawner.start_timeout = 120
        cfg.ZunSpawner.use_hub_poller = False
        cfg.ZunSpawner.wait_for_answer = False  # the programs here are not servers
        cfg.ZunSpawner.home_volume_size = 0  # a test that wants one says so
        for key, value in config.items():
            setattr(cfg.ZunSpawner, key, value)
        spawner = ZunSpawner(
            user=FakeUser(username), hub=Hub(), config=cfg,
            api_token="e2e-no-hub", oauth_client_id=f"jupyterhub-user-{username}",
        )
        spawner.server = Server(base_url=f"/user/{username}/")
        made.append(spawner)
        return spawner

    yield make
    leaks = []
    for spawner in made:
        # a server the test left running is the harness's to remove
        keep = {spawner.container_id} if spawner.container_id else ()
        leaks += local_cloud.remove_hub_leftovers(spawner.hub_id, keep)
    fail_on_leaks("this test's spawners", leaks)
