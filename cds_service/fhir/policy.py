"""Which servers the service may call: never an arbitrary host named in a request or a token.

``url_within`` is the one URL allow-list test, shared by the FHIR-server policy
(``CDS_ALLOWED_FHIR_SERVERS``) and the JWT ``jku`` allow-list (cds-hooks.md item 26). It compares
parsed URLs rather than strings, so ``https://ehr.example.com.evil.net``, ``https://ehr.example.com@evil``,
another port, or ``/fhir/../admin`` (in any encoding) do not pass for a prefix ``https://ehr.example.com/fhir``.

Deny by default: a ``fhirServer`` must be listed in ``CDS_ALLOWED_FHIR_SERVERS``; the development
switch ``CDS_ALLOW_ANY_FHIR_SERVER`` opens public addresses only, never loopback, link-local or
private ones (the service would otherwise be a proxy into the network it runs in).
"""

from __future__ import annotations

import ipaddress
import socket
import unicodedata
from urllib.parse import SplitResult, unquote, urlsplit

from ..config import Config
from ..errors import ForbiddenFhirServer
from ..outbound import resolve

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
    return parts, DEFAULT_PORTS[scheme] if port is None else port  # ":0" is port 0, not the default


def _has_dot_segment(path: str) -> bool:
    """A ``.``/``..`` segment in any spelling a server might decode: percent-encoded once or more
    (``%2e``, ``%252e``), with a path parameter (``..;``, which Tomcat reads as ``..``), in Unicode
    dots that normalise to ``.`` (fullwidth U+FF0E), or hidden behind an encoded backslash."""
    decoded = path
    for _ in range(4):
        once = unquote(decoded)
        if once == decoded:
            break
        decoded = once
    decoded = unicodedata.normalize("NFKC", decoded)
    if "\\" in decoded:
        return True
    return any(segment.split(";", 1)[0] in {".", ".."} for segment in decoded.split("/"))


def url_within(url: str, prefix: str) -> bool:
    """True if ``url`` is ``prefix`` or lies below it at a path boundary.

    Same scheme, host (case-insensitive), effective port; no userinfo, fragment, backslash,
    non-ASCII character or dot segment (``_has_dot_segment``) in ``url``.
    """
    if not url.isascii():
        return False
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


NOT_LISTED = (
    "'fhirServer' is not on this service's allow-list of FHIR servers: the setting CDS_ALLOWED_FHIR_SERVERS "
    "lists the FHIR base URLs it may read from"
)


def check_fhir_server(config: Config, url: str) -> None:
    """Raise ``ForbiddenFhirServer`` unless configuration allows reading from ``url``.

    Deny by default: the URL must lie within a prefix of ``CDS_ALLOWED_FHIR_SERVERS`` (``url_within``),
    or ``CDS_ALLOW_ANY_FHIR_SERVER`` (development) must be on, and then the host must not be loopback,
    link-local or private (``names_internal_host``). With ``CDS_REQUIRE_HTTPS`` it must use https. A
    base URL never carries a query or fragment. Checked before any outbound call is made; the message
    never repeats the URL.
    """
    if "?" in url or "#" in url:
        raise ForbiddenFhirServer(
            "'fhirServer' must be a base URL, without query or fragment", expression=["fhirServer"]
        )
    if config.require_https and urlsplit(url).scheme.lower() != "https":
        raise ForbiddenFhirServer("'fhirServer' must use https", expression=["fhirServer"])
    if any(url_within(url, prefix) for prefix in config.allowed_fhir_servers):
        return
    if not config.allow_any_fhir_server:
        raise ForbiddenFhirServer(NOT_LISTED, expression=["fhirServer"])
    if _parts(url) is None or not url.isascii() or _has_dot_segment(urlsplit(url).path):
        raise ForbiddenFhirServer("'fhirServer' is not a usable FHIR base URL", expression=["fhirServer"])
    if names_internal_host(urlsplit(url).hostname or "", timeout_s=config.fhir_timeout_s):
        raise ForbiddenFhirServer(
            "'fhirServer' is at a loopback, link-local or private address, or does not resolve: only servers listed in "
            "CDS_ALLOWED_FHIR_SERVERS may be, whatever CDS_ALLOW_ANY_FHIR_SERVER says",
            expression=["fhirServer"],
        )


def public_only(config: Config, url: str) -> bool:
    """Whether reads from ``url`` must stay off loopback, link-local and private addresses: it passed
    ``check_fhir_server`` by the development switch, not by being listed. For ``FhirClient(public_only=)``,
    which checks the address actually connected to (a name may resolve differently the second time)."""
    return not any(url_within(url, prefix) for prefix in config.allowed_fhir_servers)


def names_internal_host(host: str, timeout_s: float = 2.0) -> bool:
    """True for a host that is, or resolves to, an address outside the public internet.

    Literal addresses in any spelling ``inet_aton`` reads (``127.1``, ``0x7f.1``, ``2130706433``),
    ``localhost`` names, single-label names (resolved through the host's search domains), and
    names whose addresses (all of them) include a loopback, link-local, private or reserved one.
    A name that does not resolve, or not within ``timeout_s``, is refused too: nothing could be read
    from it.
    """
    host = host.strip("[]").rstrip(".").lower()
    literal = _literal_address(host) if host else None
    if literal is not None:
        return not _public(literal)
    if not host or host == "localhost" or host.endswith(".localhost") or "." not in host:
        return True
    try:
        addresses = resolve(host, None, timeout_s)
    except (OSError, UnicodeError):
        return True
    return not addresses or not all(_public(ipaddress.ip_address(address.split("%", 1)[0])) for address in addresses)


def _literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast
