"""Which servers the service may call: never an arbitrary host named in a request or a token.

``url_within`` is the one URL allow-list test, shared by the FHIR-server policy
(``CDS_ALLOWED_FHIR_SERVERS``) and the JWT ``jku`` allow-list (cds-hooks.md item 26). It compares
parsed URLs rather than strings, so ``https://ehr.example.com.evil.net``, ``https://ehr.example.com@evil``,
another port, or ``/fhir/../admin`` do not pass for a prefix ``https://ehr.example.com/fhir``.
"""

from __future__ import annotations

from urllib.parse import SplitResult, unquote, urlsplit

from ..config import Config
from ..errors import ForbiddenFhirServer

DEFAULT_PORTS = {"http": 80, "https": 443}


def _parts(url: str) -> tuple[SplitResult, int] | None:
    """The split URL and its effective port, or None for anything unusable or ambiguous."""
    if any(char.isspace() or ord(char) < 0x20 or char == "\\" for char in url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc or parts.fragment:
        return None
    return parts, port or DEFAULT_PORTS[scheme]


def _has_dot_segment(path: str) -> bool:
    return any(segment in {".", ".."} for segment in unquote(path).split("/"))


def url_within(url: str, prefix: str) -> bool:
    """True if ``url`` is ``prefix`` or lies below it at a path boundary.

    Same scheme, host (case-insensitive), effective port; no userinfo, fragment, backslash or dot
    segments in ``url``.
    """
    candidate, allowed = _parts(url), _parts(prefix)
    if candidate is None or allowed is None:
        return False
    (c, c_port), (a, a_port) = candidate, allowed
    if c.scheme.lower() != a.scheme.lower() or c.hostname != a.hostname or c_port != a_port:
        return False
    if _has_dot_segment(c.path):
        return False
    base = a.path.rstrip("/")
    return c.path.rstrip("/") == base or c.path.startswith(base + "/")


def check_fhir_server(config: Config, url: str) -> None:
    """Raise ``ForbiddenFhirServer`` unless ``url`` is allowed by configuration.

    With ``CDS_ALLOWED_FHIR_SERVERS`` set, the URL must lie within one of its prefixes (``url_within``);
    with ``CDS_REQUIRE_HTTPS`` it must use https. Checked before any outbound call is made.
    """
    if config.require_https and urlsplit(url).scheme.lower() != "https":
        raise ForbiddenFhirServer("'fhirServer' must use https", expression=["fhirServer"])
    if not config.allowed_fhir_servers:
        return
    if any(url_within(url, prefix) for prefix in config.allowed_fhir_servers):
        return
    raise ForbiddenFhirServer(
        "'fhirServer' is not a FHIR server this service is allowed to call", expression=["fhirServer"]
    )
