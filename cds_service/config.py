"""Service settings, read once from ``CDS_*`` environment variables.

| variable | default | meaning |
|---|---|---|
| CDS_PUBLIC_BASE_URL | (request host) | external base URL for card links and the JWT ``aud`` (required with auth) |
| CDS_CARDS_DIR | ``cards/`` beside the package | the guideline knowledge base |
| CDS_FIXTURES_DIR | ``fhir_fixtures/`` beside the package | fixture patients for the sandbox |
| CDS_FEEDBACK_DB | ``var/sarcoma-cds.sqlite3`` | SQLite file for feedback and the JWT replay store |
| CDS_FHIR_DEADLINE_S | 2.0 | overall deadline for the FHIR fallback of one hook call |
| CDS_FHIR_TIMEOUT_S | 1.5 | connect/read timeout of one FHIR request |
| CDS_FHIR_MAX_PAGES | 20 | pages followed per search (prefetch or fallback) |
| CDS_FHIR_MAX_BYTES | 20000000 | largest FHIR response body read |
| CDS_MAX_BODY_BYTES | 10000000 | largest hook request body accepted (413 above) |
| CDS_SYNCHRONOUS_MONTHS | 3 | metastasis within this many months of diagnosis is synchronous |
| CDS_SANDBOX | false | serve the sandbox page at /sandbox (``make run`` turns it on) |
| CDS_CORS_ORIGINS | ``*`` | comma-separated allowed browser origins |
| CDS_AUTH_REQUIRED | false | require a client JWT on every call (set true in production) |
| CDS_TRUSTED_ISSUERS_FILE | (none) | JSON list of trusted clients ``[{"iss", "jwks" or "jwks_uri", "jku"}]`` |
| CDS_JWT_ALGORITHMS | ES384,RS384 | accepted JWT algorithms (ES256/RS256 may be added) |
| CDS_ALLOWED_FHIR_SERVERS | (any) | comma-separated base-URL prefixes the service may call |
| CDS_REQUIRE_HTTPS | false | refuse non-https fhirServer values (set true in production) |
| CDS_TODAY | (the real date) | read records as on this date (YYYY-MM-DD): synthetic patients, tests |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _list(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


@dataclass(frozen=True)
class Config:
    public_base_url: str | None = None
    cards_dir: Path = PROJECT_ROOT / "cards"
    fixtures_dir: Path = PROJECT_ROOT / "fhir_fixtures"
    feedback_db: Path = PROJECT_ROOT / "var" / "sarcoma-cds.sqlite3"
    fhir_deadline_s: float = 2.0
    fhir_timeout_s: float = 1.5
    fhir_max_pages: int = 20
    fhir_max_bytes: int = 20_000_000
    max_body_bytes: int = 10_000_000
    synchronous_months: float = 3.0
    sandbox: bool = False
    cors_origins: tuple[str, ...] = ("*",)
    auth_required: bool = False
    trusted_issuers_file: Path | None = None
    jwt_algorithms: tuple[str, ...] = ("ES384", "RS384")
    allowed_fhir_servers: tuple[str, ...] = ()
    require_https: bool = False
    today: date | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        env = os.environ if environ is None else environ
        parsers: dict[str, tuple[str, Any]] = {
            "CDS_PUBLIC_BASE_URL": ("public_base_url", lambda v: v.rstrip("/") or None),
            "CDS_CARDS_DIR": ("cards_dir", Path),
            "CDS_FIXTURES_DIR": ("fixtures_dir", Path),
            "CDS_FEEDBACK_DB": ("feedback_db", Path),
            "CDS_FHIR_DEADLINE_S": ("fhir_deadline_s", float),
            "CDS_FHIR_TIMEOUT_S": ("fhir_timeout_s", float),
            "CDS_FHIR_MAX_PAGES": ("fhir_max_pages", int),
            "CDS_FHIR_MAX_BYTES": ("fhir_max_bytes", int),
            "CDS_MAX_BODY_BYTES": ("max_body_bytes", int),
            "CDS_SYNCHRONOUS_MONTHS": ("synchronous_months", float),
            "CDS_SANDBOX": ("sandbox", _bool),
            "CDS_CORS_ORIGINS": ("cors_origins", _list),
            "CDS_AUTH_REQUIRED": ("auth_required", _bool),
            "CDS_TRUSTED_ISSUERS_FILE": ("trusted_issuers_file", Path),
            "CDS_JWT_ALGORITHMS": ("jwt_algorithms", _list),
            "CDS_ALLOWED_FHIR_SERVERS": ("allowed_fhir_servers", _list),
            "CDS_REQUIRE_HTTPS": ("require_https", _bool),
            "CDS_TODAY": ("today", date.fromisoformat),
        }
        values: dict[str, Any] = {}
        for name, (attr, parse) in parsers.items():
            if name in env and env[name] != "":
                try:
                    values[attr] = parse(env[name])
                except ValueError as exc:
                    raise ValueError(f"{name} has an invalid value: {exc}") from None
        return cls(**values)

    def reading_date(self) -> date:
        """The date records are read on: the real date unless ``today`` fixes one."""
        return self.today or date.today()

    def with_overrides(self, **changes: Any) -> Config:
        return replace(self, **changes)
