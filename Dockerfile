# The CDS service as a container: gunicorn on :8080, cards/ and fhir_fixtures/ baked in, with the
# PostgreSQL and Redis drivers (extras postgres, redis) for several replicas sharing their stores.
# docker compose (docker-compose.yml) runs it beside a HAPI FHIR R4 server.
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 cds \
 && useradd --system --uid 10001 --gid cds --home-dir /app --shell /usr/sbin/nologin cds

WORKDIR /app
COPY requirements.lock pyproject.toml README.md ./
COPY cds_service/ cds_service/
COPY fhir_fixtures/*.py fhir_fixtures/
# The locked runtime versions with both storage extras (scripts/lock.sh), then the package (the
# service and the fixture tooling its sandbox and `load-fixtures` use) without resolving again; then
# drop the source tree so only the installed package is importable.
RUN pip install -r requirements.lock && pip install --no-deps . && rm -rf build cds_service fhir_fixtures ./*.egg-info

COPY cards/ cards/
COPY fhir_fixtures/ fhir_fixtures/
RUN mkdir -p var && chown cds:cds var

# The installed package cannot find cards/ beside itself; point it at the copies above.
# CDS_HOST repeats the command's --host for the workers, whose defaults depend on it. Safe as shipped:
# on 0.0.0.0 the service refuses to start until CDS_AUTH_REQUIRED=true, CDS_TRUSTED_ISSUERS_FILE,
# CDS_ALLOWED_FHIR_SERVERS and CDS_PUBLIC_BASE_URL are set (or CDS_INSECURE=true, for a demo), and it
# belongs behind a reverse proxy with header and body timeouts (deploy/nginx.conf).
ENV CDS_CARDS_DIR=/app/cards \
    CDS_FIXTURES_DIR=/app/fhir_fixtures \
    CDS_FEEDBACK_DB=/app/var/sarcoma-cds.sqlite3 \
    CDS_HOST=0.0.0.0

USER cds
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=2).status != 200)"]
CMD ["sarcoma-cds", "serve", "--host", "0.0.0.0", "--port", "8080"]
