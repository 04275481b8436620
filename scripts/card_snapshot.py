"""The cards of every fixture, byte for byte (uuids blanked), to compare before and after a change.

    .venv/bin/python scripts/card_snapshot.py OUT_DIR
    diff -r BEFORE_DIR AFTER_DIR     # no output: the same cards, byte for byte

Every request in ``fhir_fixtures/requests/`` is posted to the hook endpoint (``app.test_client()``,
read as of 2026-03-01) and its response body written as sent; every Bundle in
``tests/data/independent-patients/`` goes through ``engine.cards_for`` as the scenario tests run it,
serialised as the endpoint serialises. Card and suggestion uuids, fresh on every call, are blanked.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from datetime import date
from pathlib import Path

import orjson

from cds_service import Config, create_app
from cds_service.engine import cards_for
from cds_service.knowledge import load_knowledge
from cds_service.protocol.cards import CdsResponse

ROOT = Path(__file__).resolve().parent.parent
REQUESTS = ROOT / "fhir_fixtures" / "requests"
INDEPENDENT = ROOT / "tests" / "data" / "independent-patients"
TODAY = date(2026, 3, 1)
UUID = re.compile(rb'"uuid":"[0-9a-f-]{36}"')


def blank(body: bytes) -> bytes:
    return UUID.sub(b'"uuid":""', body)


def snapshot(out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    with tempfile.TemporaryDirectory(prefix="card-snapshot-") as tmp:
        app = create_app(Config(feedback_db=Path(tmp) / "feedback.sqlite3", today=TODAY, log_level="WARNING"))
        client = app.test_client()
        for path in sorted(REQUESTS.glob("*.json")):
            response = client.post(
                "/cds-services/sarcoma-patient-view", data=path.read_bytes(), content_type="application/json"
            )
            (out / f"request-{path.stem}.json").write_bytes(b"%d\n" % response.status_code + blank(response.data))
            written += 1
    knowledge = load_knowledge(ROOT / "cards")
    for path in sorted(INDEPENDENT.glob("*.json")):
        bundle = json.loads(path.read_text("utf-8"))
        resources = [entry["resource"] for entry in bundle.get("entry", [])]
        cards = cards_for(resources, knowledge=knowledge, base_url="http://cds.test", today=TODAY)
        body = orjson.dumps(CdsResponse(cards=tuple(cards)).to_json(), default=str)
        (out / f"independent-{path.stem}.json").write_bytes(blank(body))
        written += 1
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    count = snapshot(Path(argv[0]))
    print(f"wrote {count} card lists to {argv[0]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
