"""The hub's Kubernetes credentials: a private key, a CSR, and a kubeconfig.

The key never leaves the hub: Magnum signs a certificate signing request made
here (``POST /v1/certificates``), the way python-magnumclient's ``cluster
config`` does.  The CA, the certificate, the key and the kubeconfig that names
them are files in a private directory (0700, files 0600) removed at exit; the
directory's name carries the hub's pid, so that the next hub removes what a hub
killed without its exit handlers (``kill -9``, OOM) left behind.
"""

import atexit
import contextlib
import datetime
import json
import logging
import os
import re
import shutil
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

log = logging.getLogger(__name__)

PREFIX = "magnum-spawner-"
_OWNED = re.compile(rf"{re.escape(PREFIX)}(\d+)-")

#: Kubernetes reads a client certificate's O as its groups: this one is
#: cluster-admin on every cluster that Kubernetes' RBAC bootstrap made.
MASTERS = "system:masters"


def new_key():
    """A new RSA-2048 private key (the size python-magnumclient uses)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_csr(key, common_name, organizations=()):
    """A PEM CSR for ``CN=common_name`` (Kubernetes' user) and ``O=...`` (groups)."""
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attrs))
    return csr.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def key_pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def load_cert(pem):
    """A certificate from Magnum's PEM text; ValueError when it is none."""
    if isinstance(pem, str):
        pem = pem.encode()
    return x509.load_pem_x509_certificate(pem)


def check_signed(cert_pem, ca_pem, key, common_name):
    """Raise ValueError unless ``cert_pem`` is for ``key``/``common_name``, from the CA.

    Magnum answers with whatever its CA signed: a certificate for another key or
    subject, or from another CA (a rotation between the two calls), would only
    fail later, inside a TLS handshake, with a less useful message.
    """
    cert = load_cert(cert_pem)
    ca = load_cert(ca_pem)
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if cert.public_key().public_bytes(serialization.Encoding.PEM, public) != (
        key.public_key().public_bytes(serialization.Encoding.PEM, public)
    ):
        raise ValueError("the signed certificate is not for the hub's key")
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names or names[0].value != common_name:
        raise ValueError(
            f"the signed certificate is for {cert.subject.rfc4514_string()}, "
            f"not CN={common_name}"
        )
    try:
        cert.verify_directly_issued_by(ca)
    except Exception as e:  # ValueError, InvalidSignature, TypeError
        raise ValueError(f"the signed certificate does not chain to the cluster CA: {e}")
    return cert


def expires_at(cert):
    return cert.not_valid_after_utc


def remaining(cert, now=None):
    """Time left before ``cert`` expires."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return expires_at(cert) - now


def _write_private(path, text):
    """Write ``text`` to ``path`` (mode 0600) atomically: readers see old or new."""
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale(parent):
    """Remove the kubeconfig directories (and keys) in ``parent`` of this user's
    hubs that no longer run: named with a pid no process has."""
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return
    for entry in entries:
        owner = _OWNED.match(entry.name)
        pid = int(owner.group(1)) if owner else None
        try:
            # another hub starting at the same time may remove it meanwhile
            if (pid is None or not entry.is_dir(follow_symlinks=False)
                    or entry.stat(follow_symlinks=False).st_uid != os.getuid()
                    or _running(pid)):
                continue
        except OSError:
            continue
        log.info("Removing %s, left by hub process %d that no longer runs",
                 entry.path, pid)
        shutil.rmtree(entry.path, ignore_errors=True)


class KubeconfigDir:
    """A private directory holding the CA, client certificates and keys, and
    kubeconfigs naming them (by path, so that a re-signed certificate written in
    place is what the next TLS connection uses).

    ``kubeconfig`` (with ``client.crt``/``client.key``) is the hub's working
    identity; the admin identity's files exist only while it is used.
    """

    def __init__(self, parent=None):
        parent = parent or tempfile.gettempdir()
        remove_stale(parent)
        # mkdtemp makes the directory 0700 and owned by the hub's user
        self.path = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=parent)
        os.chmod(self.path, 0o700)
        self.ca_file = os.path.join(self.path, "ca.crt")
        self.kubeconfig, self.cert_file, self.key_file = self._paths("hub")
        atexit.register(self.remove)

    def _paths(self, role):
        if role == "hub":
            names = ("kubeconfig", "client.crt", "client.key")
        else:
            names = (f"{role}.kubeconfig", f"{role}.crt", f"{role}.key")
        return tuple(os.path.join(self.path, n) for n in names)

    def write(self, *, server, ca_pem, cert_pem, key_text, cluster_name,
              namespace=None, role="hub"):
        """Write (or replace) one identity's files; its kubeconfig last.  Returns
        the kubeconfig's path."""
        kubeconfig, cert_file, key_file = self._paths(role)
        _write_private(self.ca_file, ca_pem)
        _write_private(key_file, key_text)
        _write_private(cert_file, cert_pem)
        context = {"cluster": cluster_name, "user": role}
        if namespace:
            context["namespace"] = namespace
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": cluster_name, "cluster": {
                "server": server, "certificate-authority": self.ca_file,
            }}],
            "users": [{"name": role, "user": {
                "client-certificate": cert_file, "client-key": key_file,
            }}],
            "contexts": [{"name": role, "context": context}],
            "current-context": role,
        }
        # JSON is YAML: no YAML writer needed
        _write_private(kubeconfig, json.dumps(config, indent=2) + "\n")
        return kubeconfig

    def discard(self, role):
        """Remove one identity's files."""
        for path in self._paths(role):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def remove(self):
        shutil.rmtree(self.path, ignore_errors=True)
