"""Service settings, read once from ``CDS_*`` environment variables.

Every setting is declared once in ``SETTINGS``: its variable, the ``Config`` field it fills, how its
value is parsed, its default as documented and what it means. ``Config.from_env`` reads them and the
README's settings table is generated from them (``settings_table``; a test keeps the two equal), so
a new setting is one ``Setting(...)`` line plus its dataclass field.

Values are parsed strictly: a boolean is ``true``/``false`` (or ``1/0``, ``yes/no``, ``on/off``), never
"anything else means false"; durations are finite and above zero; URLs are absolute http(s). Every
bad value is reported, one line each, by ``ConfigError`` (``sarcoma-cds check-config``, and ``serve``
before gunicorn starts). ``check`` adds what needs more than one setting or a file: the trusted-issuers
file, the knowledge base, ``CDS_PUBLIC_BASE_URL`` with ``CDS_AUTH_REQUIRED``.
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent

TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off"})
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FHIR_THREADS = 16
"""Threads per worker that read FHIR servers (all the calls of the worker share them)."""


class ConfigError(ValueError):
    """One or more settings cannot be used; ``problems`` holds one line per setting, naming it."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


# --- value parsers: each raises ValueError with a message that completes "CDS_X: ..." -------------


def parse_bool(value: str) -> bool:
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"{_shown_value(value)} is not a boolean; use true or false")


def _list(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _number(value: str, kind: Callable[[str], Any], what: str) -> Any:
    try:
        return kind(value.strip())
    except ValueError:
        raise ValueError(f"{_shown_value(value)} is not {what}") from None


def _duration(unit: str, most: float | None = None) -> Callable[[str], float]:
    def parse(value: str) -> float:
        number = float(_number(value, float, "a number"))
        if not math.isfinite(number) or number <= 0:
            raise ValueError(f"{_shown_value(value)} is not a duration; give a finite number of {unit} above 0")
        if most is not None and number > most:
            raise ValueError(f"{number:g} is out of range; give at most {most:g} {unit}")
        return number

    return parse


def _integer(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(value: str) -> int:
        number = int(_number(value, int, "a whole number"))
        if number < low or (high is not None and number > high):
            bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise ValueError(f"{number} is out of range; give a whole number {bounds}")
        return number

    return parse


def _url(value: str) -> str:
    """An absolute http(s) URL without credentials, query or fragment, trailing ``/`` dropped."""
    text = value.strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ValueError(f"{_shown_value(value)} is not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{_shown_value(value)} is not an absolute http(s) URL")
    if parts.username or parts.password or parts.query or parts.fragment or "?" in text or "#" in text:
        raise ValueError(f"{_shown_value(value)} must have no credentials, query or fragment")
    return text.rstrip("/")


def _urls(value: str) -> tuple[str, ...]:
    return tuple(_url(item) for item in _list(value))


def _server_url(schemes: tuple[str, ...]) -> Callable[[str], str]:
    """A database or Redis URL: one of ``schemes`` with a host; credentials allowed, never echoed."""

    def parse(value: str) -> str:
        text = value.strip()
        try:
            parts = urlsplit(text)
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError:
            raise ValueError("is not a URL") from None
        if parts.scheme not in schemes or not (parts.hostname or parts.query):
            raise ValueError(f"is not a {schemes[0]}:// URL with a host")
        return text

    return parse


_database_url = _server_url(("postgresql", "postgres"))
_redis_url = _server_url(("redis", "rediss"))


def _origins(value: str) -> tuple[str, ...]:
    """``*`` alone, or browser origins: ``scheme://host[:port]``, no path, query or credentials."""
    origins = _list(value)
    if origins == ("*",):
        return origins
    for origin in origins:
        if origin == "*":
            raise ValueError("'*' must stand alone (any origin), not in a list")
        if _url(origin) != origin or urlsplit(origin).path:
            raise ValueError(f"{_shown_value(origin)} is not an origin; give scheme://host[:port] without a path")
    if not origins:
        raise ValueError("no origin given")
    return origins


def _iso_date(value: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{_shown_value(value)} is not a date; use YYYY-MM-DD") from None


def _choice(choices: tuple[str, ...], normalise: Callable[[str], str]) -> Callable[[str], str]:
    def parse(value: str) -> str:
        word = normalise(value.strip())
        if word not in choices:
            raise ValueError(f"{_shown_value(value)} is not one of {', '.join(choices)}")
        return word

    return parse


def _path(value: str) -> Path:
    return Path(value.strip())


def _shown_value(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:57] + "...")


# --- the settings -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    env: str
    attr: str
    parse: Callable[[str], Any]
    meaning: str
    default: str | None = None
    """The default as documented; ``None``: the dataclass default, shown by ``shown_default``."""


SETTINGS: tuple[Setting, ...] = (
    Setting("CDS_HOST", "host", str.strip, "address `sarcoma-cds serve` binds (`--host`)"),
    Setting("CDS_PORT", "port", _integer(1, 65535), "port `sarcoma-cds serve` listens on (`--port`)"),
    Setting("CDS_WORKERS", "workers", _integer(1), "gunicorn worker processes (`--workers`)"),
    Setting("CDS_THREADS", "threads", _integer(1), "request threads per worker (`--threads`)"),
    Setting(
        "CDS_PUBLIC_BASE_URL",
        "public_base_url",
        _url,
        "external base URL for card links and the JWT `aud` (required with `CDS_AUTH_REQUIRED`)",
        "(the request's host)",
    ),
    Setting("CDS_CARDS_DIR", "cards_dir", _path, "the guideline knowledge base", "`cards/` beside the package"),
    Setting(
        "CDS_FIXTURES_DIR",
        "fixtures_dir",
        _path,
        "fixture patients for the sandbox",
        "`fhir_fixtures/` beside the package",
    ),
    Setting(
        "CDS_FEEDBACK_DB",
        "feedback_db",
        _path,
        "embedded SQLite file for feedback, issued cards and the JWT replay store (without `CDS_DATABASE_URL`)",
        "`var/sarcoma-cds.sqlite3`",
    ),
    Setting(
        "CDS_DATABASE_URL",
        "database_url",
        _database_url,
        "PostgreSQL shared by several replicas, `postgresql://user:password@host/db` (`sarcoma-cds migrate` first)",
        "(none: the embedded SQLite file)",
    ),
    Setting(
        "CDS_REDIS_URL",
        "redis_url",
        _redis_url,
        "Redis for the JWT replay store, feedback rate counts and fetched JWKS, shared by replicas "
        "(`redis://host:6379/0`)",
        "(none: the database)",
    ),
    Setting(
        "CDS_RETENTION_DAYS",
        "retention_days",
        _integer(1),
        "days issued-card records and feedback are kept (purged at start-up and daily)",
    ),
    Setting(
        "CDS_FHIR_DEADLINE_S",
        "fhir_deadline_s",
        _duration("seconds", most=60),
        "overall deadline of the FHIR reads of one hook call: connect, headers and body (at most 60)",
    ),
    Setting(
        "CDS_FHIR_TIMEOUT_S",
        "fhir_timeout_s",
        _duration("seconds", most=60),
        "connect timeout, and longest silence while reading, of one FHIR request (at most 60)",
    ),
    Setting(
        "CDS_FHIR_THREADS_PER_SERVER",
        "fhir_threads_per_server",
        _integer(1, FHIR_THREADS - 1),
        f"of a worker's {FHIR_THREADS} FHIR fetch threads, most one FHIR server may hold at once (412 when its share "
        "stays taken until the deadline)",
    ),
    Setting("CDS_FHIR_MAX_PAGES", "fhir_max_pages", _integer(1), "pages followed per search (prefetch or fallback)"),
    Setting(
        "CDS_FHIR_MAX_BYTES",
        "fhir_max_bytes",
        _integer(1),
        "most bytes read from the FHIR server in one hook call, all queries and pages together (412 above)",
    ),
    Setting(
        "CDS_FHIR_BYTES_PER_WORKER",
        "fhir_bytes_per_worker",
        _integer(1),
        "most bytes of FHIR answers all the calls of one worker hold at once (a call waits for room until its "
        "deadline, then 412); at least `CDS_FHIR_MAX_BYTES`",
    ),
    Setting("CDS_MAX_BODY_BYTES", "max_body_bytes", _integer(1), "largest request body accepted (bytes; 413 above)"),
    Setting(
        "CDS_MAX_RESOURCES",
        "max_resources",
        _integer(1),
        "most FHIR resources one hook call may read, prefetched and fetched together (413 above)",
    ),
    Setting(
        "CDS_CARD_CACHE_TTL_S",
        "card_cache_ttl_s",
        _integer(0, 86_400),
        "seconds a worker keeps the cards of a record for a repeat open (0: no cache)",
    ),
    Setting(
        "CDS_CARD_CACHE_ENTRIES",
        "card_cache_entries",
        _integer(1, 100_000),
        "records whose cards one worker keeps, at most (with `CDS_CARD_CACHE_TTL_S`)",
    ),
    Setting(
        "CDS_MAX_FEEDBACK_BYTES",
        "max_feedback_bytes",
        _integer(1024),
        "largest feedback call body (bytes; 413 above)",
    ),
    Setting(
        "CDS_FEEDBACK_PER_MINUTE",
        "feedback_per_minute",
        _integer(1),
        "feedback calls one client (JWT `iss`, else address) may make per minute, all replicas together (429 above)",
    ),
    Setting(
        "CDS_SYNCHRONOUS_MONTHS",
        "synchronous_months",
        _duration("months"),
        "metastasis found within this many months of diagnosis is synchronous",
    ),
    Setting("CDS_SANDBOX", "sandbox", parse_bool, "serve the sandbox page at `/sandbox` (`make run` turns it on)"),
    Setting(
        "CDS_CORS_ORIGINS",
        "cors_origins",
        _origins,
        "comma-separated browser origins allowed to call, or `*` for any",
        "`*` on a loopback `CDS_HOST`; otherwise none",
    ),
    Setting(
        "CDS_AUTH_REQUIRED", "auth_required", parse_bool, "require the client's JWT on every call (true in production)"
    ),
    Setting(
        "CDS_TRUSTED_ISSUERS_FILE",
        "trusted_issuers_file",
        _path,
        "JSON list of trusted clients, each `iss` with `jwks`, `jwks_uri` or `jku`",
    ),
    Setting("CDS_JWT_ALGORITHMS", "jwt_algorithms", _list, "accepted JWT algorithms (ES256, RS256 may be added)"),
    Setting(
        "CDS_ALLOWED_FHIR_SERVERS",
        "allowed_fhir_servers",
        _urls,
        "comma-separated FHIR base URLs the service may read from (unset: a request naming a `fhirServer` gets 403)",
    ),
    Setting(
        "CDS_ALLOW_ANY_FHIR_SERVER",
        "allow_any_fhir_server",
        parse_bool,
        "development only: read from any `fhirServer` at a public address, listed or not",
    ),
    Setting("CDS_REQUIRE_HTTPS", "require_https", parse_bool, "refuse a non-https `fhirServer` (true in production)"),
    Setting(
        "CDS_INSECURE",
        "insecure",
        parse_bool,
        "demos only: serve on a non-loopback `CDS_HOST` without authentication, FHIR allow-list or public base "
        "URL (one line at start says what is off)",
    ),
    Setting(
        "CDS_TODAY",
        "today",
        _iso_date,
        "read records as on this date (YYYY-MM-DD): synthetic patients, tests",
        "(the real date)",
    ),
    Setting(
        "CDS_LOG_FORMAT",
        "log_format",
        _choice(LOG_FORMATS, str.lower),
        "`text` (one readable line per event) or `json` (JSON lines for log shippers)",
    ),
    Setting("CDS_LOG_LEVEL", "log_level", _choice(LOG_LEVELS, str.upper), "least severe level written"),
    Setting(
        "CDS_METRICS",
        "metrics",
        parse_bool,
        "serve Prometheus metrics at `/metrics`, to direct callers only (see Metrics)",
    ),
)


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 2
    threads: int = 4
    public_base_url: str | None = None
    cards_dir: Path = PROJECT_ROOT / "cards"
    fixtures_dir: Path = PROJECT_ROOT / "fhir_fixtures"
    feedback_db: Path = PROJECT_ROOT / "var" / "sarcoma-cds.sqlite3"
    database_url: str | None = None
    redis_url: str | None = None
    retention_days: int = 365
    fhir_deadline_s: float = 2.0
    fhir_timeout_s: float = 1.5
    fhir_threads_per_server: int = 11  # every query of one call at once (ten templates, one supplement)
    fhir_max_pages: int = 20
    fhir_max_bytes: int = 10_000_000
    fhir_bytes_per_worker: int = 10_000_000
    max_body_bytes: int = 10_000_000
    max_resources: int = 20_000
    card_cache_ttl_s: int = 0
    card_cache_entries: int = 256
    max_feedback_bytes: int = 65_536
    feedback_per_minute: int = 120
    synchronous_months: float = 3.0
    sandbox: bool = False
    cors_origins: tuple[str, ...] | None = None
    """``None``: derived by ``allowed_origins``."""
    auth_required: bool = False
    trusted_issuers_file: Path | None = None
    jwt_algorithms: tuple[str, ...] = ("ES384", "RS384")
    allowed_fhir_servers: tuple[str, ...] = ()
    allow_any_fhir_server: bool = False
    require_https: bool = False
    insecure: bool = False
    today: date | None = None
    log_format: str = "text"
    log_level: str = "INFO"
    metrics: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        """Settings from the environment; ``ConfigError`` names every bad one. Empty means unset."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        problems: list[str] = []
        for setting in SETTINGS:
            raw = env.get(setting.env, "")
            if raw.strip() == "":
                continue
            try:
                values[setting.attr] = setting.parse(raw)
            except ValueError as error:
                problems.append(f"{setting.env}: {error}")
        if problems:
            raise ConfigError(problems)
        return cls(**values)

    def allowed_origins(self) -> tuple[str, ...]:
        """Browser origins CORS lets call: as configured; by default ``*`` only where no web page
        elsewhere can reach the service (bound to loopback)."""
        if self.cors_origins is not None:
            return self.cors_origins
        return ("*",) if is_loopback(self.host) else ()

    def reading_date(self) -> date:
        """The date records are read on: the real date unless ``today`` fixes one."""
        return self.today or date.today()

    def with_overrides(self, **changes: Any) -> Config:
        return replace(self, **changes)


def is_loopback(host: str) -> bool:
    """True for an address only this machine can reach (``127.0.0.0/8``, ``::1``, ``localhost``)."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


# --- checks beyond single values, and the documentation -----------------------------------------


def check(config: Config) -> list[str]:
    """Problems that stop start-up, one line each: what ``create_app`` would fail on, said plainly.

    Reads the trusted-issuers file (whenever set, so a file prepared before auth is turned on is
    checked too), loads the knowledge base and checks the database's schema and Redis, as start-up does.
    """
    from .auth.issuers import TrustedIssuersError, check_algorithms, load_trusted_issuers
    from .knowledge import KnowledgeError, load_knowledge

    problems = exposure_problems(config)
    try:
        check_algorithms(config.jwt_algorithms)
    except TrustedIssuersError as error:
        problems.append(str(error))
    if config.auth_required or config.trusted_issuers_file is not None:
        try:
            load_trusted_issuers(config.trusted_issuers_file)
        except TrustedIssuersError as error:
            problems.append(str(error))
    if config.fhir_max_bytes > config.fhir_bytes_per_worker:
        problems.append(
            f"CDS_FHIR_MAX_BYTES ({config.fhir_max_bytes}) is above CDS_FHIR_BYTES_PER_WORKER "
            f"({config.fhir_bytes_per_worker}): a call reading that much could never be held"
        )
    if config.auth_required and not config.public_base_url:
        problems.append("CDS_AUTH_REQUIRED needs CDS_PUBLIC_BASE_URL, the URL clients call (the JWT aud)")
    if not config.cards_dir.is_dir():
        problems.append(f"CDS_CARDS_DIR: {config.cards_dir} is not a folder")
    else:
        try:
            load_knowledge(config.cards_dir)
        except KnowledgeError as error:
            problems.append(f"CDS_CARDS_DIR: the knowledge base is invalid: {' '.join(str(error).split())}")
    if config.sandbox and not config.fixtures_dir.is_dir():
        problems.append(f"CDS_FIXTURES_DIR: {config.fixtures_dir} is not a folder (the sandbox lists its patients)")
    if not config.database_url:
        problems += _feedback_db_problems(config.feedback_db)
    if not problems:
        from .storage.stores import store_problems

        problems += store_problems(config)
    return problems


EXPOSED_NEEDS = (
    ("auth_required", "CDS_AUTH_REQUIRED=true", "authentication off"),
    ("allowed_fhir_servers", "CDS_ALLOWED_FHIR_SERVERS", "no FHIR allow-list"),
    ("public_base_url", "CDS_PUBLIC_BASE_URL", "card links taken from the Host header"),
)
"""What a service others can reach must have (who may call, which servers it reads, its own URL), and
what is off without it."""


def exposure_problems(config: Config) -> list[str]:
    """Secure by default: on an address other machines can reach, refuse to start unless every call
    is authenticated, the FHIR servers are listed and the public base URL is given, or
    ``CDS_INSECURE`` says this is a demo."""
    if is_loopback(config.host) or config.insecure:
        return []
    missing = [name for attr, name, _ in EXPOSED_NEEDS if not getattr(config, attr)]
    problems = []
    if missing:
        problems.append(
            f"CDS_HOST: {config.host} is reachable from other machines, so the service needs "
            f"{', '.join(missing)} (or CDS_INSECURE=true for a demo)"
        )
    if config.allow_any_fhir_server:
        problems.append(
            f"CDS_ALLOW_ANY_FHIR_SERVER: development only, on a loopback CDS_HOST (or with CDS_INSECURE=true), "
            f"not on {config.host}"
        )
    return problems


def insecure_notice(config: Config) -> str | None:
    """The one line start-up logs when ``CDS_INSECURE`` lets an exposed service run unprotected."""
    if not config.insecure or is_loopback(config.host):
        return None
    off = [what for attr, _, what in EXPOSED_NEEDS if not getattr(config, attr)]
    if config.allow_any_fhir_server:
        off.append("any public FHIR server readable (CDS_ALLOW_ANY_FHIR_SERVER)")
    if not off:
        return None
    return f"INSECURE: CDS_INSECURE=true on {config.host}: {'; '.join(off)}. For demos only, never with patient data"


def _feedback_db_problems(path: Path) -> list[str]:
    """The database file must be writable, or creatable in its nearest existing folder."""
    if path.exists():
        ok = path.is_file() and os.access(path, os.W_OK)
        return [] if ok else [f"CDS_FEEDBACK_DB: {path} is not a writable file"]
    folder = next(p for p in path.parents if p.exists())
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        return [f"CDS_FEEDBACK_DB: cannot create {path}: {folder} is not a writable folder"]
    return []


def warnings(config: Config) -> list[str]:
    """Settings that work but are unsafe, or refuse what an EHR may send: one line each, starting with
    the setting's name (``check-config`` prints them; start-up logs them)."""
    found = []
    if not config.auth_required:
        found.append("CDS_AUTH_REQUIRED is off: calls are not authenticated (set it in production)")
    if not config.allowed_fhir_servers:
        found.append(
            "CDS_ALLOWED_FHIR_SERVERS is not set: a request naming a fhirServer gets 403 "
            "(list the EHR's FHIR base URL to read missing prefetch from it)"
        )
    if config.allow_any_fhir_server:
        found.append(
            "CDS_ALLOW_ANY_FHIR_SERVER is on: the service reads from any public fhirServer a request names "
            "(development only)"
        )
    if config.allowed_origins() == ("*",) and not config.auth_required and not is_loopback(config.host):
        found.append(
            f"CDS_CORS_ORIGINS is '*' on {config.host} without CDS_AUTH_REQUIRED: any web page a user opens "
            "may call the service"
        )
    return found


def shown_default(setting: Setting) -> str:
    """The default as the settings table shows it."""
    if setting.default is not None:
        return setting.default
    declared = next(f for f in fields(Config) if f.name == setting.attr)
    value = declared.default if declared.default is not MISSING else None
    if value is None or value == ():
        return "(none)"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, tuple):
        return "`" + ",".join(value) + "`"
    return f"`{value}`"


def settings_table() -> str:
    """The README's settings table (Markdown), one row per ``SETTINGS`` entry."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows += [f"| `{s.env}` | {shown_default(s)} | {s.meaning} |" for s in SETTINGS]
    return "\n".join(rows) + "\n"
