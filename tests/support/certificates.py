"""A certificate authority of the tests' own, for a collector that speaks TLS."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass(frozen=True)
class Authority:
    name: str
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    def write(self, path: Path) -> Path:
        """Its certificate as a PEM bundle at `path`, as an operator gives it to Sinergi."""
        path.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        return path

    def issue(self, name: str, directory: Path, usage: x509.ObjectIdentifier) -> tuple[Path, Path]:
        """A certificate for `name` (a host, or a sender) for `usage` (serverAuth or
        clientAuth), and its key, as PEM files in `directory`."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        try:
            alternative: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(name))
        except ValueError:
            alternative = x509.DNSName(name)
        issued = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([alternative]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(x509.ExtendedKeyUsage([usage]), False)
            .sign(self.key, hashes.SHA256())
        )
        chain, key_file = directory / f"{self.name}-{name}.pem", directory / f"{name}.key"
        chain.write_bytes(issued.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(_pem(key))
        return chain, key_file

    def server_context(
        self, host: str, directory: Path, *, senders: Authority | None = None
    ) -> ssl.SSLContext:
        """A TLS server presenting a certificate this authority issued for `host`; with
        `senders`, one that takes only clients presenting a certificate that authority issued."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*self.issue(host, directory, ExtendedKeyUsageOID.SERVER_AUTH))
        if senders is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            pem = senders.certificate.public_bytes(serialization.Encoding.PEM)
            context.load_verify_locations(cadata=pem.decode())
        return context


def authority(name: str) -> Authority:
    """A new authority; Python's default TLS context checks strictly (3.13), so its
    certificates carry the key identifiers and usages that asks for."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return Authority(name, key, certificate)
