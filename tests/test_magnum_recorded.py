"""MagnumSpawner against exchanges recorded from the local Magnum 23.

The files are ``tests/fixtures/recorded-local/magnum-*.json``, recorded by
``tests/record_magnum.py`` from upstream magnum-api and magnum-conductor (the
cluster itself from the local cluster driver; see fixtures/README.md).
"""

import pytest
from cryptography import x509

from magnum_spawner.common.cloud import get_cloud
from magnum_spawner.common.errors import BadRequest, NotFound
from magnum_spawner.magnum import api
from magnum_spawner.magnum.cluster import ClusterNotReady, check_cluster, check_template

from .conftest import PASSWORD_AUTH
from .fake_magnum import FakeMagnum
from .recorded import load


def body(name):
    return load(name)["response"]["body"]


@pytest.fixture
def magnum(cloud):
    # the catalog entry; every answer below is a recording
    return FakeMagnum(cloud)


def session():
    return get_cloud(auth=PASSWORD_AUTH)


def replay(cloud, name):
    rec = load(name)
    cloud.reply(rec["request"]["method"], rec["request"]["url"], name)
    return rec


def test_a_cluster_being_created_is_not_ready(magnum):
    rec = replay(magnum.cloud, "magnum-cluster-show-create-in-progress")
    cluster = api.get_cluster(session(), rec["request"]["url"].rsplit("/", 1)[1])
    with pytest.raises(ClusterNotReady) as e:
        check_cluster(cluster)
    # Magnum 23 leaves status_reason null while it creates
    assert "Magnum reports CREATE_IN_PROGRESS (no reason given)" in str(e.value)


def test_a_failed_cluster_names_magnums_reason(magnum):
    rec = replay(magnum.cloud, "magnum-cluster-show-create-failed")
    cluster = api.get_cluster(session(), rec["request"]["url"].rsplit("/", 1)[1])
    with pytest.raises(ClusterNotReady) as e:
        check_cluster(cluster)
    message = str(e.value)
    assert message.startswith("The course's cluster is not ready: Magnum reports CREATE_FAILED")
    assert "kube-controller-manager of the local cluster exited" in message
    assert len(message) < 500  # the reason is cut, the page stays readable


def test_unknown_cluster_is_magnums_404(magnum):
    replay(magnum.cloud, "magnum-cluster-show-404")
    with pytest.raises(NotFound) as e:
        api.get_cluster(session(), "no-such-cluster")
    assert e.value.detail == "Cluster no-such-cluster could not be found."
    assert e.value.service == "magnum"


def test_the_recorded_template_is_accepted():
    template = body("magnum-clustertemplate-show")
    check_template(template)
    with pytest.raises(ClusterNotReady, match="without TLS"):
        check_template(dict(template, tls_disabled=True))


def test_magnum_signed_the_csrs_subject_with_the_clusters_ca():
    ca = x509.load_pem_x509_certificate(body("magnum-certificate-show")["pem"].encode())
    signed = load("magnum-certificate-sign")
    csr = x509.load_pem_x509_csr(signed["request"]["body"]["csr"].encode())
    cert = x509.load_pem_x509_certificate(signed["response"]["body"]["pem"].encode())
    cert.verify_directly_issued_by(ca)
    assert cert.subject == csr.subject
    assert cert.subject.rfc4514_string() == "CN=magnum-spawner-admin,O=system:masters"
    assert cert.public_key() == csr.public_key()


def test_a_bad_csr_is_magnums_400(magnum):
    rec = replay(magnum.cloud, "magnum-certificate-sign-bad-csr")
    with pytest.raises(BadRequest, match="Received invalid csr"):
        api.sign(session(), rec["request"]["body"]["cluster_uuid"], "not a CSR")
