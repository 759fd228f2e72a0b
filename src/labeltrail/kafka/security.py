"""How labeltrail's Kafka clients authenticate, and what the cluster's refusals mean.

Every librdkafka client (producers, consumers, admin) is built from
:meth:`Settings.kafka_config <labeltrail.config.Settings.kafka_config>`, which takes the
``settings.kafka`` section as is; faust (aiokafka) takes the same section as an
:class:`ssl.SSLContext` (:func:`ssl_context`). When the cluster refuses a client (a wrong
password, a certificate it does not accept, a principal without an ACL), :func:`refusal`
turns librdkafka's error into a :class:`KafkaSecurityError` that names the principal, the
cause and the setting to check, instead of librdkafka's own lines (docs/security.md).
"""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Iterable
from pathlib import Path

from confluent_kafka import KafkaError
from cryptography import x509
from cryptography.x509.oid import NameOID

from labeltrail.config import KafkaSecuritySettings, Settings
from labeltrail.exceptions import LabeltrailError

__all__ = [
    "KafkaAuthenticationError",
    "KafkaAuthorizationError",
    "KafkaSecurityError",
    "first_refusal",
    "principal",
    "refusal",
    "ssl_context",
]


class KafkaSecurityError(LabeltrailError):
    """The cluster refused this client: its message says who, why and what to check."""


class KafkaAuthenticationError(KafkaSecurityError):
    """The cluster did not accept who the client says it is (password, certificate)."""


class KafkaAuthorizationError(KafkaSecurityError):
    """The client's principal has no ACL for what it tried; nothing was done."""


AUTHENTICATION_CODES = frozenset(
    {KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED, KafkaError._SSL}
)
AUTHORIZATION_CODES = {
    KafkaError.TOPIC_AUTHORIZATION_FAILED: "topic",
    KafkaError.GROUP_AUTHORIZATION_FAILED: "consumer group",
    KafkaError.CLUSTER_AUTHORIZATION_FAILED: "cluster",
    KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED: "transactional id",
}
"""librdkafka error codes of a missing ACL, by the kind of resource it guards."""

SEE = "docs/security.md"


def _certificate(path: Path) -> x509.Certificate | None:
    """The first certificate of a PEM file (None when unreadable: librdkafka will say why)."""
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return None


def _common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else cert.subject.rfc4514_string()


def principal(section: KafkaSecuritySettings) -> str:
    """The principal the cluster sees: ``User:<SASL user>``, ``User:<certificate CN>`` (with
    the broker's principal mapping rule in docs/security.md), or ``User:ANONYMOUS``."""
    if section.sasl_username:
        return f"User:{section.sasl_username}"
    cert = _certificate(section.ssl_cert_file) if section.ssl_cert_file else None
    return f"User:{_common_name(cert)}" if cert is not None else "User:ANONYMOUS"


def ssl_context(section: KafkaSecuritySettings) -> ssl.SSLContext | None:
    """The TLS context for aiokafka (faust) from the same settings librdkafka gets: the CA
    file (else the system's), the client certificate and key for mutual TLS. None without
    TLS."""
    if not section.security_protocol.endswith("SSL"):
        return None
    ca = section.ssl_ca_file
    try:
        context = ssl.create_default_context(cafile=str(ca) if ca else None)
        if section.ssl_cert_file and section.ssl_key_file:
            password = section.ssl_key_password
            context.load_cert_chain(
                section.ssl_cert_file,
                section.ssl_key_file,
                password.get_secret_value() if password is not None else None,
            )
    except (OSError, ssl.SSLError) as exc:
        raise KafkaSecurityError(
            f"cannot load the Kafka TLS files (LABELTRAIL_KAFKA_SSL_*): {exc}"
        ) from exc
    return context


def _tls_cause(section: KafkaSecuritySettings, said: str) -> str:
    """Why a TLS handshake most likely failed, from the local files and the broker's alert."""
    now = dt.datetime.now(dt.UTC)
    if section.ssl_cert_file:
        cert = _certificate(section.ssl_cert_file)
        if cert is not None:
            subject = f"the client certificate {section.ssl_cert_file} (CN={_common_name(cert)})"
            if cert.not_valid_after_utc < now:
                return (
                    f"{subject} expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC and "
                    "the broker refused it: issue a new one (LABELTRAIL_KAFKA_SSL_CERT_FILE)"
                )
            if cert.not_valid_before_utc > now:
                return (
                    f"{subject} is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
                )
    lowered = said.lower()
    if "certificate verify failed" in lowered or "broker certificate could not be verified" in (
        lowered
    ):
        ca = section.ssl_ca_file
        trust = f"LABELTRAIL_KAFKA_SSL_CA_FILE ({ca})" if ca else "the system trust store"
        return f"the broker's certificate is not trusted by {trust} or does not name its host"
    if "alert" in lowered and not section.ssl_cert_file:
        return (
            "the broker requires a client certificate (mutual TLS): set "
            "LABELTRAIL_KAFKA_SSL_CERT_FILE and LABELTRAIL_KAFKA_SSL_KEY_FILE"
        )
    if "alert" in lowered:
        return (
            f"the broker refused the client certificate {section.ssl_cert_file}: is it signed "
            "by the CA the broker trusts?"
        )
    return "the TLS handshake failed (check LABELTRAIL_KAFKA_SSL_* and the broker's listener)"


def refusal(
    settings: Settings, err: KafkaError, *, doing: str = "", resource: str = ""
) -> KafkaSecurityError | None:
    """A :class:`KafkaSecurityError` naming the cause when ``err`` is the cluster refusing
    this client (authentication or authorization), else None. ``doing`` and ``resource`` say
    what was refused (``"write to"``, ``"labeltrail.labels"``)."""
    section = settings.kafka
    who = principal(section)
    code = err.code()
    said = err.str()
    if code in AUTHORIZATION_CODES:
        kind = AUTHORIZATION_CODES[code]
        what = f"{doing} {kind} {resource}".strip() if resource else f"use the {kind}"
        return KafkaAuthorizationError(
            f"Kafka refused {who} to {what}: no ACL allows it (nothing was written; "
            f"{SEE} lists each service's ACLs, ops/kafka/acls.py applies them)"
        )
    if code not in AUTHENTICATION_CODES and not (
        code == KafkaError._TRANSPORT and "ssl" in said.lower()
    ):
        return None
    at = settings.kafka_bootstrap_servers
    if "SASL" in said or code == KafkaError.SASL_AUTHENTICATION_FAILED:
        return KafkaAuthenticationError(
            f"Kafka at {at} refused to authenticate {who} with {section.sasl_mechanism}: wrong "
            "password or unknown user (check LABELTRAIL_KAFKA_SASL_USERNAME and "
            f"LABELTRAIL_KAFKA_SASL_PASSWORD); the broker said: {_short(said)}"
        )
    return KafkaAuthenticationError(
        f"Kafka at {at} refused the TLS connection of {who}: {_tls_cause(section, said)}; "
        f"librdkafka said: {_short(said)}"
    )


def first_refusal(settings: Settings, errors: Iterable[KafkaError]) -> KafkaSecurityError | None:
    """The first of ``errors`` that is a refusal (see :func:`refusal`), explained."""
    for err in errors:
        found = refusal(settings, err)
        if found is not None:
            return found
    return None


def _short(said: str) -> str:
    """librdkafka's message without its source-file positions and retry counters."""
    return said.split(" (after ")[0].strip()
