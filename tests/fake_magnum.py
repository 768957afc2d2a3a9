"""Magnum's API from its upstream samples, with a CA that really signs.

The bodies are ``tests/fixtures/magnum-api-samples/`` (openstack/magnum
api-ref).  Their PEM texts are cut short in the samples, so the CA here makes
real ones in the same fields: ``GET /v1/certificates/{cluster}`` answers the
sample with this CA's certificate as ``pem``; ``POST /v1/certificates``
answers the sample with a certificate signed the way Magnum's
``magnum/common/x509/operations.sign`` does (the CSR's subject and key, the
CA's common name as issuer, a SubjectKeyIdentifier, 5 years).
"""

import copy
import datetime
import json
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from .recorded import FIXTURES, KEYSTONE

MAGNUM = "http://127.0.0.1:9511/v1"
SAMPLES = FIXTURES / "magnum-api-samples"
CLUSTER_UUID = "746e779a-751a-456b-a3e9-c883d734946f"
TEMPLATE_UUID = "0562d357-8641-4759-8fed-8173f02c9633"


def sample(name):
    return json.loads((SAMPLES / f"{name}.json").read_text())


class FakeCA:
    """A cluster CA, made as Magnum's conductor makes one (CN = cluster name)."""

    def __init__(self, name="k8s", days=1825):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.name = name
        self.days = days
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    @property
    def pem(self):
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def sign(self, csr_pem, days=None):
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.name)]))
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=days or self.days))
            .serial_number(int(uuid.uuid4()))
            .public_key(csr.public_key())
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(csr.public_key()),
                           critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM).decode().strip()


class FakeMagnum:
    """Magnum's answers on a requests-mock ``RecordedCloud``.

    Tests change *values* (``cluster``, ``template``) in the samples' shapes.
    """

    def __init__(self, cloud):
        self.cloud = cloud
        self.ca = FakeCA()
        #: what Magnum signs with (a test may swap in another CA: a rotation)
        self.signer = None
        self.signed_days = None
        self.csrs = []
        self.cluster = sample("cluster-get-one-resp")
        # the sample predates health_status (Magnum's API has it since Train)
        self.cluster["health_status"] = "HEALTHY"
        self.cluster["health_status_reason"] = {"api": "ok"}
        self.template = sample("clustertemplate-get-all-resp")["clustertemplates"][0]
        self._add_catalog_entry()
        m = cloud.m
        m.get(f"{MAGNUM}/clusters/{self.cluster['name']}", json=self._cluster)
        m.get(f"{MAGNUM}/clusters/{CLUSTER_UUID}", json=self._cluster)
        m.get(f"{MAGNUM}/clustertemplates/{TEMPLATE_UUID}", json=lambda r, c: self.template)
        m.get(f"{MAGNUM}/certificates/{CLUSTER_UUID}", json=self._ca)
        m.post(f"{MAGNUM}/certificates", json=self._sign)

    def _add_catalog_entry(self):
        # The recorded Keystone token is from a cloud without Magnum: its catalog
        # gets Magnum's entry (same shape as the others) in memory.
        token = self.cloud._token

        def with_magnum(request, context):
            body = token(request, context)
            body["token"]["catalog"].append({
                "type": "container-infra", "name": "magnum", "id": "magnum-svc",
                "endpoints": [
                    {"id": f"magnum-{i}", "interface": i, "region": "RegionOne",
                     "region_id": "RegionOne", "url": MAGNUM}
                    for i in ("public", "internal", "admin")
                ],
            })
            return body

        self.cloud.m.post(f"{KEYSTONE}/v3/auth/tokens", json=with_magnum)

    def _cluster(self, request, context):
        if isinstance(self.cluster, tuple):  # (status, errors body)
            context.status_code = self.cluster[0]
            return self.cluster[1]
        return copy.deepcopy(self.cluster)

    def _ca(self, request, context):
        body = sample("certificates-ca-show-resp")
        body["pem"] = self.ca.pem
        return body

    def _sign(self, request, context):
        req = request.json()
        self.csrs.append(req["csr"])
        context.status_code = 201
        body = sample("certificates-ca-sign-resp")
        body["csr"] = req["csr"]
        body["pem"] = (self.signer or self.ca).sign(req["csr"], self.signed_days)
        return body

    def rotate_ca(self):
        """``openstack coe ca rotate``: a new CA signs and is served from now on."""
        self.ca = FakeCA()


def magnum_error(status, title, detail):
    """Magnum's error body (``magnum/api/middleware/parsable_error.py``)."""
    return (status, {"errors": [{
        "request_id": "", "code": "client", "status": status, "title": title,
        "detail": detail, "links": [],
    }]})
