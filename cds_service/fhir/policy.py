"""Which FHIR servers the service may call (never an arbitrary host named in a request)."""

from __future__ import annotations

from urllib.parse import urlsplit

from ..config import Config
from ..errors import ForbiddenFhirServer


def check_fhir_server(config: Config, url: str) -> None:
    """Raise ``ForbiddenFhirServer`` unless ``url`` is allowed by configuration.

    With ``CDS_ALLOWED_FHIR_SERVERS`` set, the URL must start with one of its prefixes at a path
    boundary; with ``CDS_REQUIRE_HTTPS`` it must use https.
    """
    if config.require_https and urlsplit(url).scheme != "https":
        raise ForbiddenFhirServer("'fhirServer' must use https", expression=["fhirServer"])
    if not config.allowed_fhir_servers:
        return
    for prefix in config.allowed_fhir_servers:
        base = prefix.rstrip("/")
        if url == base or url.startswith(base + "/"):
            return
    raise ForbiddenFhirServer("'fhirServer' is not a FHIR server this service is allowed to call", expression=["fhirServer"])
