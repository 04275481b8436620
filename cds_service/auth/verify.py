"""Verification of the client JWT (CDS Hooks 2.0 "Trusting CDS Clients"; cds-hooks.md items 23-28).

Order, as best practice recommends: the header (``alg`` allowed, ``typ`` JWT, ``kid`` present),
``iss`` on the allow-list, the key, then signature and claims in one PyJWT call (``aud`` = the endpoint
invoked, ``exp``/``iat`` required, ``nbf`` if present, 60 s leeway), and last the ``jti`` replay store.
``sub`` and ``tenant`` (Epic) are accepted and not required. Each refusal carries a short reason for
the log; the client only ever sees 401.

Key selection: real clients (the reference sandbox, EHRs) always send ``jku``, so the ``kid`` is looked
up first in the keys configured for the issuer (inline ``jwks``, or its ``jwks_uri``); the token's
``jku`` is fetched only when the key was not found there and the ``jku`` lies under one of the
issuer's allowed prefixes. A ``jku`` equal to the configured ``jwks_uri`` is that URL, fetched once.
A ``jku`` whose key verifies a token is promoted in the cache (``JwksCache.promote``), so floods of
made-up ``jku`` URLs cannot evict it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from ..storage import ShortLived
from .issuers import TrustedIssuer
from .jwks import JwksCache, JwksUnavailable

LEEWAY_S = 60
MAX_LIFETIME_S = 3600
"""Tokens valid for longer than this are refused: the replay store must outlive every token (item 28.6)."""
MAX_TOKEN_CHARS = 16_384
MAX_JTI_CHARS = 256
REQUIRED_CLAIMS = ("iss", "aud", "exp", "iat", "jti")


class Rejected(Exception):
    """A token refused; ``reason`` is for the service log (never the token itself)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Client:
    """The verified caller."""

    iss: str
    jti: str
    claims: Mapping[str, Any]


_PYJWT_REASONS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "expired"),
    (jwt.ImmatureSignatureError, "not yet valid (iat or nbf in the future)"),
    (jwt.InvalidAudienceError, "aud is not this endpoint"),
    (jwt.InvalidIssuerError, "iss mismatch"),
    (jwt.InvalidSignatureError, "bad signature"),
    (jwt.InvalidAlgorithmError, "alg not allowed"),
    (jwt.exceptions.InvalidJTIError, "jti is not a short string"),
    (jwt.DecodeError, "malformed token"),
)


REJECTION_REASONS = frozenset(
    {
        "malformed token",
        "alg not allowed",
        "typ is not JWT",
        "crit header not supported",
        "kid missing",
        "jku not allowed",
        "iss missing",
        "untrusted iss",
        "key set unavailable",
        "unknown kid",
        "no jku and the issuer has no other key source",
        "alg does not match the key",
        "key does not fit alg",
        *(f"{claim} missing" for claim in REQUIRED_CLAIMS),
        *(why for _, why in _PYJWT_REASONS),
        "invalid token",
        *(f"{claim} is not a number" for claim in ("exp", "iat", "nbf")),
        "jti is not a short string",
        "exp too far in the future",
        "replayed jti",
    }
)
"""Every reason a token is refused for: the bounded label set of the rejection metric."""


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class TokenVerifier:
    def __init__(
        self,
        issuers: Mapping[str, TrustedIssuer],
        algorithms: frozenset[str],
        jwks: JwksCache,
        replay: ShortLived,
    ) -> None:
        self.issuers = issuers
        self.algorithms = algorithms
        self.jwks = jwks
        self.replay = replay
        for issuer in issuers.values():
            if issuer.jwks_uri:
                jwks.pin(issuer.jwks_uri)

    def verify(self, token: str, audience: str) -> Client:
        """Return the verified client or raise ``Rejected``; ``StoreDown`` when the replay store or the
        shared key sets cannot be used (the caller fails closed)."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise Rejected("malformed token")
        header = self._header(token)
        issuer = self._issuer(token)
        jwk, jku = self._find_jwk(issuer, header["kid"], header.get("jku"))
        claims = self._decode(token, self._key(jwk, header["alg"]), header["alg"], issuer.iss, audience)
        if jku is not None:
            self.jwks.promote(jku)
        self._check_claims(claims)
        if not self.replay.first_use(issuer.iss, claims["jti"], float(claims["exp"]) + LEEWAY_S):
            raise Rejected("replayed jti")
        return Client(iss=issuer.iss, jti=claims["jti"], claims=claims)

    def _header(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Rejected("malformed token") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise Rejected("alg not allowed")
        if "typ" in header and (not isinstance(header["typ"], str) or header["typ"].upper() != "JWT"):
            raise Rejected("typ is not JWT")
        if "crit" in header:
            raise Rejected("crit header not supported")
        if not isinstance(header.get("kid"), str) or not header["kid"]:
            raise Rejected("kid missing")
        if "jku" in header and not isinstance(header["jku"], str):
            raise Rejected("jku not allowed")
        return header

    def _issuer(self, token: str) -> TrustedIssuer:
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise Rejected("malformed token") from None
        iss = unverified.get("iss")
        if not isinstance(iss, str):
            raise Rejected("iss missing")
        issuer = self.issuers.get(iss)
        if issuer is None:
            raise Rejected("untrusted iss")
        return issuer

    def _find_jwk(self, issuer: TrustedIssuer, kid: str, jku: str | None) -> tuple[Mapping[str, Any], str | None]:
        """The JWK for ``kid``, and the ``jku`` it was fetched from (None when configured)."""
        jwk, unavailable = self._configured_jwk(issuer, kid)
        if jwk is not None:
            return jwk, None
        if jku is None or jku == issuer.jwks_uri:
            if unavailable:
                raise Rejected("key set unavailable")
            if issuer.keys or issuer.jwks_uri:
                raise Rejected("unknown kid")
            raise Rejected("no jku and the issuer has no other key source")
        if not issuer.allows_jku(jku):
            raise Rejected("jku not allowed")
        try:
            jwk = self.jwks.key(jku, kid, owner=issuer.iss)
        except JwksUnavailable:
            raise Rejected("key set unavailable") from None
        if jwk is None:
            raise Rejected("unknown kid")
        return jwk, jku

    def _configured_jwk(self, issuer: TrustedIssuer, kid: str) -> tuple[Mapping[str, Any] | None, bool]:
        """The issuer's own key for ``kid`` (inline, else from ``jwks_uri``), and whether that URL failed."""
        if kid in issuer.keys:
            return issuer.keys[kid], False
        if issuer.jwks_uri is None:
            return None, False
        try:
            return self.jwks.key(issuer.jwks_uri, kid, owner=issuer.iss), False
        except JwksUnavailable:
            return None, True

    @staticmethod
    def _key(jwk: Mapping[str, Any], alg: str) -> jwt.PyJWK:
        if "alg" in jwk and jwk["alg"] != alg:
            raise Rejected("alg does not match the key")
        try:
            return jwt.PyJWK(dict(jwk), algorithm=alg)
        except jwt.PyJWTError:
            raise Rejected("key does not fit alg") from None

    def _decode(self, token: str, key: jwt.PyJWK, alg: str, iss: str, audience: str) -> dict[str, Any]:
        try:
            return jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=audience,
                issuer=iss,
                leeway=LEEWAY_S,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.MissingRequiredClaimError as error:
            raise Rejected(f"{error.claim} missing") from None
        except jwt.PyJWTError as error:
            reason = next((why for kind, why in _PYJWT_REASONS if isinstance(error, kind)), "invalid token")
            raise Rejected(reason) from None

    def _check_claims(self, claims: Mapping[str, Any]) -> None:
        """Types PyJWT is lenient about, and the lifetime cap the replay store relies on."""
        for name in ("exp", "iat", "nbf"):
            if name in claims and not _number(claims[name]):
                raise Rejected(f"{name} is not a number")
        jti = claims["jti"]
        if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_CHARS:
            raise Rejected("jti is not a short string")
        if claims["exp"] > time.time() + MAX_LIFETIME_S + LEEWAY_S:
            raise Rejected("exp too far in the future")
