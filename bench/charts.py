"""Synthetic mCODE-shaped charts of an exact size, for the benchmark.

A chart is one patient with metastatic leiomyosarcoma of the thigh,
doxorubicin first line then gemcitabine:
a core of Patient, PrimaryCancerCondition with histology extension, SecondaryCancerConditions,
TNM/stage/grade/size/ECOG/disease-status Observations and one of each medication resource, then
follow-up as repeated ECOG, Karnofsky, tumour-size and disease-status Observations and chemotherapy
cycles. Every Observation carries a code the ``observations`` prefetch template asks for, so the
chart is what a CDS client would prefetch. The same seed gives the same chart.

Verbs: ``make_chart`` (resources), ``prefetch_for`` (prefetch keys -> searchset Bundles),
``hook_request`` (a CDS Hooks 2.0 patient-view request), ``transaction`` (a Bundle to load a FHIR
server with).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from fhir_fixtures import resources as fhir
from fhir_fixtures.ehr import build_prefetch
from fhir_fixtures.resources import ICDO3, LOINC, MCODE, RXNORM, SCT, code_of, coded, concept

Resource = dict[str, Any]
USER = "Practitioner/bench-oncologist"

DIAGNOSED = datetime(2021, 3, 1, 9, 0)
FOLLOW_UP_DAYS = 1200  # follow-up spreads over this span whatever the chart size
DISEASE_STATUS = tuple(fhir.DISEASE_STATUS[status] for status in ("stable", "worsened", "improved"))
DOXORUBICIN = fhir.DRUG["doxorubicin-scd"]  # first line
GEMCITABINE = fhir.DRUG["gemcitabine"]  # second line, after progression
SECOND_LINE_DAY = 200


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _status(system: str, code: str) -> dict[str, Any]:
    return coded(system, code)


class _Builder:
    """Builds resources of one patient; ``n`` numbers their ids. Codes from ``fhir_fixtures.resources``."""

    def __init__(self, patient_id: str, rng: random.Random) -> None:
        self.patient_id = patient_id
        self.rng = rng
        self.n = 0

    @property
    def subject(self) -> dict[str, str]:
        return {"reference": f"Patient/{self.patient_id}"}

    @property
    def primary_ref(self) -> dict[str, str]:
        return {"reference": f"Condition/{self.patient_id}-primary"}

    def _id(self, kind: str) -> str:
        self.n += 1
        return f"{self.patient_id}-{kind}-{self.n}"

    def patient(self) -> Resource:
        return {
            "resourceType": "Patient",
            "id": self.patient_id,
            "meta": {"profile": [MCODE + "mcode-cancer-patient"]},
            "identifier": [{"system": "https://ehr.example.org/mrn", "value": f"MRN-{self.patient_id}"}],
            "name": [{"family": "Synthetic", "given": ["Bench"]}],
            "gender": "female",
            "birthDate": "1964-07-12",
        }

    def _condition_status(self) -> Resource:
        return {
            "clinicalStatus": _status(fhir.CLINICAL_STATUS, "active"),
            "verificationStatus": _status(fhir.VERIFICATION_STATUS, "confirmed"),
            "category": [_status(fhir.CONDITION_CATEGORY, "problem-list-item")],
        }

    def primary(self) -> Resource:
        return {
            "resourceType": "Condition",
            "id": f"{self.patient_id}-primary",
            "meta": {"profile": [MCODE + "mcode-primary-cancer-condition"]},
            "extension": [{"url": fhir.HISTOLOGY_EXTENSION, "valueCodeableConcept": coded(ICDO3, *fhir.ICDO["lms"])}],
            **self._condition_status(),
            "code": coded(SCT, *fhir.STS["lms"]),
            "bodySite": [
                {
                    "extension": [
                        {
                            "url": MCODE + "mcode-laterality-qualifier",
                            "valueCodeableConcept": coded(SCT, *fhir.LATERALITY["left"]),
                        }
                    ],
                    **coded(SCT, *fhir.BODY_SITE["thigh"]),
                }
            ],
            "subject": self.subject,
            "onsetDateTime": DIAGNOSED.date().isoformat(),
            "recordedDate": DIAGNOSED.date().isoformat(),
        }

    def secondary(self, site: str, days: int) -> Resource:
        code, display, _, _ = fhir.METASTASIS[site]
        return {
            "resourceType": "Condition",
            "id": self._id("metastasis"),
            "meta": {"profile": [MCODE + "mcode-secondary-cancer-condition"]},
            "extension": [{"url": fhir.CONDITION_RELATED, "valueReference": self.primary_ref}],
            **self._condition_status(),
            "code": coded(SCT, code, display),
            "bodySite": [coded(SCT, fhir.BODY_SITE[site][0])],
            "subject": self.subject,
            "onsetDateTime": (DIAGNOSED + timedelta(days=days)).date().isoformat(),
        }

    def observation(self, profile: str, code: dict[str, Any], when: datetime, category: str, **fields: Any) -> Resource:
        return {
            "resourceType": "Observation",
            "id": self._id("obs"),
            "meta": {"profile": [MCODE + profile]},
            "status": "final",
            "category": [coded(fhir.OBS_CATEGORY, category)],
            "code": code,
            "subject": self.subject,
            "effectiveDateTime": _when(when),
            **fields,
        }

    def _staged(self, profile: str, code: tuple[str, str], value: str) -> Resource:
        return self.observation(
            profile,
            coded(SCT, *code),
            DIAGNOSED,
            "imaging",
            valueCodeableConcept=coded(SCT, value),
            method=concept(fhir.STAGING_METHOD["ajcc8"]),
            focus=[self.primary_ref],
        )

    def tnm(self, axis: str, value: str) -> Resource:
        code, display, _, _ = fhir.TNM_CODE[("c", axis)]
        return self._staged(fhir.TNM_PROFILE[axis], (code, display), fhir.TNM_VALUE_SCT[f"c{value}"])

    def stage_group(self, stage: str) -> Resource:
        code, display, _, _ = fhir.GROUP_CODE["c"]
        group = self._staged("mcode-tnm-stage-group", (code, display), fhir.STAGE_SCT[stage])
        group["hasMember"] = [{"reference": f"Observation/{self.patient_id}-obs-{i}"} for i in (1, 2, 3)]
        return group

    def grade(self) -> Resource:
        return self.observation(
            "mcode-histologic-grade",
            concept(code_of("grade")),
            DIAGNOSED,
            "laboratory",
            valueCodeableConcept=coded(SCT, *fhir.GRADE_MCODE["G3"]),
            focus=[self.primary_ref],
        )

    def size(self, when: datetime) -> Resource:
        longest = round(self.rng.uniform(4.0, 14.0), 1)
        return self.observation(
            "mcode-tumor-size",
            concept(code_of("size")),
            when,
            "imaging",
            component=[
                {
                    "code": concept(code_of("size-longest")),
                    "valueQuantity": {"value": longest, "unit": "cm", "system": fhir.UCUM, "code": "cm"},
                }
            ],
        )

    def ecog(self, when: datetime) -> Resource:
        score = self.rng.choice((0, 1, 1, 2))
        return self.observation(
            "mcode-ecog-performance-status",
            concept(code_of("ecog")),
            when,
            "survey",
            valueInteger=score,
            interpretation=[coded(LOINC, fhir.ECOG_ANSWER[score][0])],
        )

    def karnofsky(self, when: datetime) -> Resource:
        return self.observation(
            "mcode-karnofsky-performance-status",
            concept(code_of("karnofsky")),
            when,
            "survey",
            valueInteger=self.rng.choice((60, 70, 80, 90)),
        )

    def disease_status(self, when: datetime) -> Resource:
        code, display = self.rng.choice(DISEASE_STATUS)
        return self.observation(
            "mcode-cancer-disease-status",
            concept(code_of("disease-status")),
            when,
            "exam",
            valueCodeableConcept=coded(SCT, code, display),
            focus=[self.primary_ref],
        )

    def _medication(self, kind: str, profile: str, drug: tuple[str | None, str]) -> Resource:
        code, display = drug
        return {
            "resourceType": kind,
            "id": self._id(kind.removeprefix("Medication").lower()),
            "meta": {"profile": [MCODE + profile]},
            "medicationCodeableConcept": coded(RXNORM, str(code), display),
            "subject": self.subject,
            "reasonReference": [self.primary_ref],
        }

    def statement(self, drug: tuple[str | None, str], start: datetime) -> Resource:
        resource = self._medication("MedicationStatement", "mcode-cancer-related-medication-statement", drug)
        resource.update(
            status="completed",
            effectivePeriod={"start": _when(start), "end": _when(start + timedelta(days=126))},
            dateAsserted=_when(start),
        )
        return resource

    def request(self, drug: tuple[str | None, str], when: datetime) -> Resource:
        resource = self._medication("MedicationRequest", "mcode-cancer-related-medication-request", drug)
        resource.update(status="completed", intent="order", authoredOn=_when(when))
        return resource

    def administration(self, drug: tuple[str | None, str], when: datetime) -> Resource:
        resource = self._medication("MedicationAdministration", "mcode-cancer-related-medication-administration", drug)
        resource.update(status="completed", effectiveDateTime=_when(when))
        return resource


def _core(b: _Builder) -> list[Callable[[], Resource]]:
    """The staging record, most essential first: a small chart is a prefix of this list."""
    doxorubicin = DOXORUBICIN
    start = DIAGNOSED + timedelta(days=30)
    return [
        b.patient,
        b.primary,
        lambda: b.tnm("T", "T2"),
        lambda: b.tnm("N", "N0"),
        lambda: b.tnm("M", "M1"),
        lambda: b.secondary("lung", 10),
        lambda: b.stage_group("IV"),
        b.grade,
        lambda: b.size(DIAGNOSED),
        lambda: b.ecog(DIAGNOSED),
        lambda: b.statement(doxorubicin, start),
        lambda: b.request(doxorubicin, start),
        lambda: b.administration(doxorubicin, start),
        lambda: b.disease_status(DIAGNOSED + timedelta(days=150)),
        lambda: b.secondary("liver", 160),
    ]


def _follow_up(b: _Builder, when: datetime) -> Resource:
    """One follow-up resource: mostly Observations the prefetch filter matches, some chemo cycles."""
    roll = b.rng.random()
    if roll < 0.30:
        return b.ecog(when)
    if roll < 0.45:
        return b.karnofsky(when)
    if roll < 0.60:
        return b.size(when)
    if roll < 0.78:
        return b.disease_status(when)
    drug = DOXORUBICIN if when < DIAGNOSED + timedelta(days=SECOND_LINE_DAY) else GEMCITABINE
    if roll < 0.96:
        return b.administration(drug, when)
    if roll < 0.99:
        return b.request(drug, when)
    return b.statement(drug, when)


def make_chart(size: int, *, seed: int = 0, patient_id: str = "bench-patient") -> list[Resource]:
    """Exactly ``size`` resources of one patient (Patient first); deterministic for a seed."""
    if size < 1:
        raise ValueError("a chart holds at least the Patient")
    b = _Builder(patient_id, random.Random(seed))
    chart = [make() for make in _core(b)[:size]]
    extra = size - len(chart)
    step = timedelta(days=FOLLOW_UP_DAYS) / max(extra, 1)
    start = DIAGNOSED + timedelta(days=40)
    chart += [_follow_up(b, start + step * i) for i in range(extra)]
    return chart


def prefetch_for(chart: list[Resource], patient_id: str = "bench-patient") -> dict[str, Any]:
    """The prefetch keys as a CDS client fills them from this chart (the service's own templates)."""
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in chart]}
    return build_prefetch(bundle, {"patientId": patient_id, "userId": USER})


def hook_request(
    chart: list[Resource] | None,
    *,
    patient_id: str = "bench-patient",
    hook_instance: str | None = None,
    fhir_server: str | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    """A patient-view request; ``chart=None`` sends no prefetch (the service reads ``fhir_server``)."""
    body: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": hook_instance or str(uuid.uuid4()),
        "context": {"userId": USER, "patientId": patient_id},
    }
    if fhir_server:
        body["fhirServer"] = fhir_server
    if token:
        body["fhirAuthorization"] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "bench",
        }
    if chart is not None:
        body["prefetch"] = prefetch_for(chart, patient_id)
    return body


def transaction(chart: list[Resource]) -> dict[str, Any]:
    """A transaction Bundle that PUTs every resource under its own id."""
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, r['resourceType'] + '/' + r['id'])}",
                "resource": r,
                "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
            }
            for r in chart
        ],
    }
