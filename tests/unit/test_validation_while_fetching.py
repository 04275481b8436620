"""Without prefetch, each page's resources are validated in a fetch thread as the page lands,
and the prefetch semantics stay as they were: a query counts as answered in time when its last
page lands, however long checking it then takes; one still on the wire at the deadline is a 412."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fhir_builders import ecog, patient, primary

from cds_service.errors import PrefetchUnavailable
from cds_service.fhir import gather as gathering
from cds_service.fhir.client import Deadline
from cds_service.protocol.request import parse_hook_request
from cds_service.protocol.services import SARCOMA_PATIENT_VIEW
from cds_service.summary.validate import Prechecked

CHART = {
    "patient": [patient("p1")],
    "conditions": [primary("c1"), {**primary("bad"), "onsetDateTime": "not a date"}],
    "observations": [ecog("e1", 1), {"resourceType": "Observation", "id": "lab", "status": "final", "code": {}}],
}


class FakeFhirServer:
    """A FHIR client answering from ``CHART`` (by the query's resource type), after ``delay_s``."""

    metrics = None

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s

    def read_pages(self, query: str, deadline: Deadline, resource_type: str = "") -> list[list[dict[str, Any]]]:
        time.sleep(self.delay_s)
        kind = query.split("?")[0].split("/")[0]
        key = {"Patient": "patient", "Condition": "conditions", "Observation": "observations"}.get(kind)
        if "category=" in query:
            return [[]]  # no Observation here has a category
        return [[dict(r) for r in CHART.get(key or "", [])]]

    def follow_pages(
        self, bundle: dict[str, Any], deadline: Deadline, resource_type: str = ""
    ) -> list[list[dict[str, Any]]]:
        return []


def run_gather(client: FakeFhirServer, deadline_s: float = 2.0) -> gathering.Gathered:
    body = {
        "hook": "patient-view",
        "hookInstance": "6f1e2b8e-8a8c-4a5e-9a59-3e0c2a6b1f11",
        "context": {"patientId": "p1", "userId": "Practitioner/dr-1"},
        "fhirServer": "https://ehr.example/fhir",
    }
    request = parse_hook_request(body, SARCOMA_PATIENT_VIEW)
    with ThreadPoolExecutor(max_workers=8) as executor:
        return gathering.gather(
            request,
            SARCOMA_PATIENT_VIEW,
            client_for=lambda _: client,  # type: ignore[arg-type, return-value]
            executor=executor,
            deadline=Deadline.after(deadline_s),
        )


def test_fetched_resources_the_summary_may_read_arrive_validated_by_the_fetch_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: set[str] = set()
    precheck = gathering.precheck

    def recording(resource: Any) -> Any:
        threads.add(threading.current_thread().name)
        return precheck(resource)

    monkeypatch.setattr(gathering, "precheck", recording)
    gathered = run_gather(FakeFhirServer())
    checked = {r["id"]: r.checked for r in gathered.resources if isinstance(r, Prechecked)}
    assert checked["p1"].model is not None and checked["c1"].model is not None
    assert checked["bad"].model is None and "onsetDateTime" in (checked["bad"].problem or "")
    assert checked["e1"].model is not None  # an Observation of a code the summary reads
    assert "lab" not in checked  # one it does not read is left as it came
    assert threads and threading.current_thread().name not in threads


def test_a_query_answered_in_time_is_not_timed_out_by_slow_checking(monkeypatch: pytest.MonkeyPatch) -> None:
    precheck = gathering.precheck

    def slow(resource: Any) -> Any:
        time.sleep(0.1)
        return precheck(resource)

    monkeypatch.setattr(gathering, "precheck", slow)
    gathered = run_gather(FakeFhirServer(), deadline_s=0.15)
    assert {r["id"] for r in gathered.resources} >= {"p1", "c1", "bad", "e1"}


def test_a_query_still_on_the_wire_at_the_deadline_is_a_412() -> None:
    with pytest.raises(PrefetchUnavailable, match="did not answer in time"):
        run_gather(FakeFhirServer(delay_s=0.5), deadline_s=0.1)


def test_an_observation_the_profile_query_also_finds_is_read_once() -> None:
    """Without prefetch, Observations are searched by code and by mCODE profile; one both find counts once."""
    gathered = run_gather(FakeFhirServer())
    observations = [r["id"] for r in gathered.resources if r["resourceType"] == "Observation"]
    assert sorted(observations) == ["e1", "lab"]
    assert gathered.fetched.count("observations") == 1


class ProfileQueryLater(FakeFhirServer):
    """The profile query (the supplement) answers ``delay_s`` after the code query, or before it."""

    def __init__(self, delay_s: float, *, profile_first: bool = False) -> None:
        super().__init__()
        self.later = delay_s
        self.profile_first = profile_first

    def read_pages(self, query: str, deadline: Deadline, resource_type: str = "") -> list[list[dict[str, Any]]]:
        if ("_profile=" in query) != self.profile_first and query.startswith("Observation"):
            time.sleep(self.later)
        return super().read_pages(query, deadline, resource_type)


@pytest.mark.parametrize("profile_first", [False, True], ids=["code-query-first", "profile-query-first"])
def test_the_profile_query_checks_only_what_the_code_query_did_not_deliver(
    monkeypatch: pytest.MonkeyPatch, profile_first: bool
) -> None:
    expected = [r["id"] for r in run_gather(FakeFhirServer()).resources]
    checked: list[str] = []
    precheck = gathering.precheck

    def counting(resource: Any) -> Any:
        checked.append(resource["id"])
        return precheck(resource)

    monkeypatch.setattr(gathering, "precheck", counting)
    gathered = run_gather(ProfileQueryLater(0.1, profile_first=profile_first))
    assert [r["id"] for r in gathered.resources] == expected  # the same resources, in the same order
    if not profile_first:  # the code query's Observations were all in when the profile query's landed
        assert checked.count("e1") == 1 and checked.count("lab") == 1
    else:  # landed first: checked as they came, then dropped as before
        assert checked.count("e1") == 2
