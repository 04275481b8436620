"""The trusted CDS clients (``CDS_TRUSTED_ISSUERS_FILE``) and the accepted JWT algorithms.

The file is a JSON list, one entry per client (cds-hooks.md item 26, "allow-list ``iss`` and ``jku``")::

    [{"iss": "https://sandbox.cds-hooks.org", "jku": ["https://sandbox.cds-hooks.org/.well-known/"]},
     {"iss": "https://ehr.example.org/fhir", "jwks_uri": "https://ehr.example.org/jwks.json"},
     {"iss": "https://other.example.org", "jwks": {"keys": [{"kty": "EC", "kid": "k1", ...}]}}]

- ``iss``: the exact ``iss`` claim the client sends;
- ``jwks``: the client's public keys inline, or ``jwks_uri``: where to fetch them; always tried first;
- ``jku``: URL prefixes a token's ``jku`` header may point into; the key is fetched from there only
  when the configured keys lack the token's ``kid`` (see ``verify``).

Any error stops start-up with a message naming the entry: a service that requires JWTs must not run
with a half-read allow-list.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt

from ..fhir.policy import url_within

ASYMMETRIC_ALGORITHMS = frozenset(
    {"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"}
)
"""CDS Hooks 2.0 "JWT Signing Algorithm": ``none`` and symmetric (HS*) algorithms SHALL NOT be used."""

ENTRY_KEYS = frozenset({"iss", "jwks", "jwks_uri", "jku"})
PRIVATE_KEY_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "k"})
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class TrustedIssuersError(ValueError):
    """The trusted-issuers configuration cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class TrustedIssuer:
    iss: str
    keys: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # inline JWKS, by kid
    jwks_uri: str | None = None
    jku_prefixes: tuple[str, ...] = ()

    def allows_jku(self, jku: str) -> bool:
        """Under an allowed prefix, with no query or fragment (which would make every URL new)."""
        if "?" in jku or "#" in jku:
            return False
        return any(url_within(jku, prefix) for prefix in self.jku_prefixes)


def check_algorithms(algorithms: Iterable[str]) -> frozenset[str]:
    """The configured algorithms, refused at start-up if any is ``none``, symmetric or unknown."""
    chosen = frozenset(algorithms)
    if not chosen:
        raise TrustedIssuersError("CDS_JWT_ALGORITHMS is empty; use e.g. ES384,RS384")
    refused = sorted(alg for alg in chosen if alg not in ASYMMETRIC_ALGORITHMS)
    if refused:
        raise TrustedIssuersError(
            f"CDS_JWT_ALGORITHMS may not contain {', '.join(refused)}: CDS Hooks forbids 'none' and "
            f"symmetric algorithms; allowed are {', '.join(sorted(ASYMMETRIC_ALGORITHMS))}"
        )
    return chosen


def _key_url(value: Any, where: str) -> str:
    """A JWKS location: https (plain http only on the loopback, for local testing)."""
    if not isinstance(value, str) or not value:
        raise TrustedIssuersError(f"{where} must be a URL string")
    parts = urlsplit(value)
    loopback = parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
    if not (parts.scheme == "https" or loopback) or not parts.hostname or parts.username or parts.fragment:
        raise TrustedIssuersError(f"{where} must be an https URL without credentials or fragment")
    return value


def _key_problem(key: Any) -> str | None:
    if not isinstance(key, dict) or not isinstance(key.get("kid"), str) or not key["kid"]:
        return "must be a JWK with a 'kid'"
    if key.get("kty") == "oct" or PRIVATE_KEY_MEMBERS & key.keys():
        return "holds secret or private key material; list public keys only"
    if key.get("use", "sig") != "sig":
        return "is not a signing key ('use' is not 'sig')"
    try:
        jwt.PyJWK(key)
    except jwt.PyJWTError as error:
        return f"is not a usable public key ({type(error).__name__})"
    return None


def parse_jwks(jwks: Any, where: str, *, strict: bool = True) -> dict[str, Mapping[str, Any]]:
    """Public signing keys by ``kid``; a repeated ``kid`` is ambiguous and never used (item 24).

    ``strict`` (configuration) refuses any bad key; otherwise (a fetched key set) bad keys are skipped.
    """
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise TrustedIssuersError(f"{where} must be a JWKS object with a 'keys' list")
    keys: dict[str, Mapping[str, Any]] = {}
    repeated: set[str] = set()
    for n, key in enumerate(jwks["keys"]):
        problem = _key_problem(key)
        if problem is None and key["kid"] in keys:
            problem = f"repeats kid '{key['kid']}'"
            repeated.add(key["kid"])
        if problem is not None:
            if strict:
                raise TrustedIssuersError(f"{where}.keys[{n}] {problem}")
            continue
        keys[key["kid"]] = key
    return {kid: key for kid, key in keys.items() if kid not in repeated}


def _entry(raw: Any, n: int) -> TrustedIssuer:
    where = f"entry {n}"
    if not isinstance(raw, dict):
        raise TrustedIssuersError(f"{where} must be an object")
    unknown = sorted(set(raw) - ENTRY_KEYS)
    if unknown:
        raise TrustedIssuersError(
            f"{where} has unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(ENTRY_KEYS))}"
        )
    iss = raw.get("iss")
    if not isinstance(iss, str) or not iss:
        raise TrustedIssuersError(f"{where} needs an 'iss' string")
    if "jwks" in raw and "jwks_uri" in raw:
        raise TrustedIssuersError(f"{where} ({iss}) gives both 'jwks' and 'jwks_uri'; keep one")
    jku = raw.get("jku", [])
    if not isinstance(jku, list):
        raise TrustedIssuersError(f"{where} ({iss}): 'jku' must be a list of URL prefixes")
    issuer = TrustedIssuer(
        iss=iss,
        keys=parse_jwks(raw["jwks"], f"{where}.jwks") if "jwks" in raw else {},
        jwks_uri=_key_url(raw["jwks_uri"], f"{where}.jwks_uri") if "jwks_uri" in raw else None,
        jku_prefixes=tuple(_key_url(prefix, f"{where}.jku[{i}]") for i, prefix in enumerate(jku)),
    )
    if not (issuer.keys or issuer.jwks_uri or issuer.jku_prefixes):
        raise TrustedIssuersError(f"{where} ({iss}) gives no key source: add 'jwks', 'jwks_uri' or 'jku'")
    return issuer


def load_trusted_issuers(path: Path | None) -> dict[str, TrustedIssuer]:
    """Read and validate the trusted-issuers file; raise ``TrustedIssuersError`` with a clear message."""
    if path is None:
        raise TrustedIssuersError("CDS_AUTH_REQUIRED is on but CDS_TRUSTED_ISSUERS_FILE is not set")
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise TrustedIssuersError(f"CDS_TRUSTED_ISSUERS_FILE {path} cannot be read: {error.strerror}") from None
    except ValueError as error:
        raise TrustedIssuersError(f"CDS_TRUSTED_ISSUERS_FILE {path} is not valid JSON: {error}") from None
    if not isinstance(raw, list) or not raw:
        raise TrustedIssuersError(f"CDS_TRUSTED_ISSUERS_FILE {path} must be a non-empty JSON list of issuers")
    issuers: dict[str, TrustedIssuer] = {}
    for n, item in enumerate(raw):
        try:
            issuer = _entry(item, n)
        except TrustedIssuersError as error:
            raise TrustedIssuersError(f"CDS_TRUSTED_ISSUERS_FILE {path}: {error}") from None
        if issuer.iss in issuers:
            raise TrustedIssuersError(f"CDS_TRUSTED_ISSUERS_FILE {path}: iss '{issuer.iss}' is listed twice")
        issuers[issuer.iss] = issuer
    return issuers
