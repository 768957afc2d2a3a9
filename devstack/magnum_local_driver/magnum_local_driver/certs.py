"""Certificates of a local cluster, all signed by the CA Magnum generated.

Magnum's conductor creates the cluster CA (x509keypair: kept in its own
database) before the driver runs; the driver reads it back the way cluster
drivers do (``cert_manager.get_cluster_ca_certificate``) and signs with
Magnum's own ``x509.operations.sign``:

* the kube-apiserver serving certificate (SANs: 127.0.0.1, localhost, the
  in-cluster names and the service IP), so Magnum's client, which verifies
  against the CA, and every kubeconfig built from the CA trust it;
* client certificates for kube-controller-manager and the node agent;
* an unrelated RSA key pair for service-account tokens.
"""

import ipaddress

from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.oid import NameOID

SERVICE_IP = '10.254.0.1'
SERVICE_RANGE = '10.254.0.0/16'


def _key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption()).decode()


def _csr(key, common_name, organizations=(), server=False, dns=(), ips=()):
    names = [cx509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    names += [cx509.NameAttribute(NameOID.ORGANIZATION_NAME, o)
              for o in organizations]
    builder = cx509.CertificateSigningRequestBuilder().subject_name(
        cx509.Name(names))
    builder = builder.add_extension(
        cx509.BasicConstraints(ca=False, path_length=None), critical=True)
    builder = builder.add_extension(cx509.KeyUsage(
        digital_signature=True, key_encipherment=True, content_commitment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=False,
        crl_sign=False, encipher_only=False, decipher_only=False),
        critical=True)
    builder = builder.add_extension(cx509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.SERVER_AUTH if server
         else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    if dns or ips:
        builder = builder.add_extension(cx509.SubjectAlternativeName(
            [cx509.DNSName(d) for d in dns] +
            [cx509.IPAddress(ipaddress.ip_address(i)) for i in ips]),
            critical=False)
    return builder.sign(key, hashes.SHA256())


class ClusterCA(object):
    """Signs with the cluster's CA as Magnum stored it."""

    def __init__(self, ca_cert, issuer_name):
        # ca_cert: magnum.common.cert_manager Cert (x509keypair backend)
        self.ca_pem = _text(ca_cert.get_certificate())
        self._key = ca_cert.get_private_key()
        self._password = ca_cert.get_private_key_passphrase()
        self.issuer_name = issuer_name

    def _sign(self, csr):
        from magnum.common.x509 import operations
        return _text(operations.sign(csr, self.issuer_name, self._key,
                                     self._password, skip_validation=True))

    def server(self, common_name, dns, ips):
        key = _key()
        return self._sign(_csr(key, common_name, server=True, dns=dns,
                               ips=ips)), _key_pem(key)

    def client(self, common_name, organizations):
        key = _key()
        return self._sign(_csr(key, common_name, organizations)), \
            _key_pem(key)


def service_account_keys():
    key = _key()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM,
        serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return _key_pem(key), public


def _text(value):
    return value.decode() if isinstance(value, bytes) else value


def kubeconfig(server, ca_path, cert_path, key_path, user='local'):
    """A kubeconfig (YAML is a superset of JSON) naming files on disk."""
    import json
    return json.dumps({
        'apiVersion': 'v1', 'kind': 'Config',
        'clusters': [{'name': 'local', 'cluster': {
            'server': server, 'certificate-authority': ca_path}}],
        'users': [{'name': user, 'user': {
            'client-certificate': cert_path, 'client-key': key_path}}],
        'contexts': [{'name': 'local', 'context': {
            'cluster': 'local', 'user': user}}],
        'current-context': 'local'}, indent=1)
