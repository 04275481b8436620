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

from fhir_fixtures.ehr import build_prefetch

Resource = dict[str, Any]

MCODE = "http://hl7.org/fhir/us/mcode/StructureDefinition/"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
NCIT = "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl"
ICDO3 = "http://terminology.hl7.org/CodeSystem/icd-o-3"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
USER = "Practitioner/bench-oncologist"

DIAGNOSED = datetime(2021, 3, 1, 9, 0)
FOLLOW_UP_DAYS = 1200  # follow-up spreads over this span whatever the chart size
ECOG_ANSWERS = ("LA9622-7", "LA9623-5", "LA9624-3", "LA9625-0")
DISEASE_STATUS = (("359746009", "Stable"), ("271299001", "Worsening"), ("268910001", "Improving"))
DOXORUBICIN = ("1790099", "10 ML doxorubicin hydrochloride 2 MG/ML Injection")  # first line
GEMCITABINE = ("12574", "gemcitabine")  # second line, after progression
SECOND_LINE_DAY = 200


def concept(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")


class _Builder:
    """Builds resources of one patient; ``n`` numbers their ids."""

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

    def primary(self) -> Resource:
        return {
            "resourceType": "Condition",
            "id": f"{self.patient_id}-primary",
            "meta": {"profile": [MCODE + "mcode-primary-cancer-condition"]},
            "extension": [
                {
                    "url": MCODE + "mcode-histology-morphology-behavior",
                    "valueCodeableConcept": concept(ICDO3, "8890/3", "Leiomyosarcoma, NOS"),
                }
            ],
            "clinicalStatus": concept("http://terminology.hl7.org/CodeSystem/condition-clinical", "active"),
            "verificationStatus": concept("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed"),
            "category": [concept("http://terminology.hl7.org/CodeSystem/condition-category", "problem-list-item")],
            "code": concept(SNOMED, "443719001", "Leiomyosarcoma (disorder)"),
            "bodySite": [
                {
                    "extension": [
                        {
                            "url": MCODE + "mcode-laterality-qualifier",
                            "valueCodeableConcept": concept(SNOMED, "7771000", "Left"),
                        }
                    ],
                    **concept(SNOMED, "68367000", "Thigh structure"),
                }
            ],
            "subject": self.subject,
            "onsetDateTime": DIAGNOSED.date().isoformat(),
            "recordedDate": DIAGNOSED.date().isoformat(),
        }

    def secondary(self, code: str, display: str, site: str, days: int) -> Resource:
        return {
            "resourceType": "Condition",
            "id": self._id("metastasis"),
            "meta": {"profile": [MCODE + "mcode-secondary-cancer-condition"]},
            "extension": [
                {"url": "http://hl7.org/fhir/StructureDefinition/condition-related", "valueReference": self.primary_ref}
            ],
            "clinicalStatus": concept("http://terminology.hl7.org/CodeSystem/condition-clinical", "active"),
            "verificationStatus": concept("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed"),
            "category": [concept("http://terminology.hl7.org/CodeSystem/condition-category", "problem-list-item")],
            "code": concept(SNOMED, code, display),
            "bodySite": [concept(SNOMED, site)],
            "subject": self.subject,
            "onsetDateTime": (DIAGNOSED + timedelta(days=days)).date().isoformat(),
        }

    def observation(self, profile: str, code: dict[str, Any], when: datetime, category: str, **fields: Any) -> Resource:
        return {
            "resourceType": "Observation",
            "id": self._id("obs"),
            "meta": {"profile": [MCODE + profile]},
            "status": "final",
            "category": [concept(OBS_CATEGORY, category)],
            "code": code,
            "subject": self.subject,
            "effectiveDateTime": _when(when),
            **fields,
        }

    def tnm(self, profile: str, code: str, display: str, value: str) -> Resource:
        return self.observation(
            profile,
            concept(SNOMED, code, display),
            DIAGNOSED,
            "imaging",
            valueCodeableConcept=concept(SNOMED, value),
            method=concept(SNOMED, "897275008", "AJCC 8th edition"),
            focus=[self.primary_ref],
        )

    def stage_group(self) -> Resource:
        stage = self.tnm("mcode-tnm-stage-group", "399537006", "Clinical TNM stage grouping", "1222837003")
        stage["hasMember"] = [{"reference": f"Observation/{self.patient_id}-obs-{i}"} for i in (1, 2, 3)]
        return stage

    def grade(self) -> Resource:
        return self.observation(
            "mcode-histologic-grade",
            concept(NCIT, "C18000", "Histologic Grade"),
            DIAGNOSED,
            "laboratory",
            valueCodeableConcept=concept(SNOMED, "1155707008", "High grade"),
            focus=[self.primary_ref],
        )

    def size(self, when: datetime) -> Resource:
        longest = round(self.rng.uniform(4.0, 14.0), 1)
        return self.observation(
            "mcode-tumor-size",
            concept(LOINC, "21889-1", "Size Tumor"),
            when,
            "imaging",
            component=[
                {
                    "code": concept(LOINC, "33728-7", "Size.maximum dimension in Tumor"),
                    "valueQuantity": {"value": longest, "unit": "cm", "system": UCUM, "code": "cm"},
                }
            ],
        )

    def ecog(self, when: datetime) -> Resource:
        score = self.rng.choice((0, 1, 1, 2))
        return self.observation(
            "mcode-ecog-performance-status",
            concept(LOINC, "89247-1", "ECOG Performance Status score"),
            when,
            "survey",
            valueInteger=score,
            interpretation=[concept(LOINC, ECOG_ANSWERS[score])],
        )

    def karnofsky(self, when: datetime) -> Resource:
        return self.observation(
            "mcode-karnofsky-performance-status",
            concept(LOINC, "89243-0", "Karnofsky Performance Status score"),
            when,
            "survey",
            valueInteger=self.rng.choice((60, 70, 80, 90)),
        )

    def disease_status(self, when: datetime) -> Resource:
        code, display = self.rng.choice(DISEASE_STATUS)
        return self.observation(
            "mcode-cancer-disease-status",
            concept(LOINC, "97509-4", "Cancer Disease Progression"),
            when,
            "exam",
            valueCodeableConcept=concept(SNOMED, code, display),
            focus=[self.primary_ref],
        )

    def _medication(self, kind: str, profile: str, drug: tuple[str, str]) -> Resource:
        return {
            "resourceType": kind,
            "id": self._id(kind.removeprefix("Medication").lower()),
            "meta": {"profile": [MCODE + profile]},
            "medicationCodeableConcept": concept(RXNORM, *drug),
            "subject": self.subject,
            "reasonReference": [self.primary_ref],
        }

    def statement(self, drug: tuple[str, str], start: datetime) -> Resource:
        resource = self._medication("MedicationStatement", "mcode-cancer-related-medication-statement", drug)
        resource.update(
            status="completed",
            effectivePeriod={"start": _when(start), "end": _when(start + timedelta(days=126))},
            dateAsserted=_when(start),
        )
        return resource

    def request(self, drug: tuple[str, str], when: datetime) -> Resource:
        resource = self._medication("MedicationRequest", "mcode-cancer-related-medication-request", drug)
        resource.update(status="completed", intent="order", authoredOn=_when(when))
        return resource

    def administration(self, drug: tuple[str, str], when: datetime) -> Resource:
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
        lambda: b.tnm("mcode-tnm-primary-tumor-category", "399504009", "cT category", "1228929004"),
        lambda: b.tnm("mcode-tnm-regional-nodes-category", "399534004", "cN category", "1229967007"),
        lambda: b.tnm("mcode-tnm-distant-metastases-category", "399387003", "cM category", "1229903009"),
        lambda: b.secondary("94391008", "Secondary malignant neoplasm of lung", "39607008", 10),
        b.stage_group,
        b.grade,
        lambda: b.size(DIAGNOSED),
        lambda: b.ecog(DIAGNOSED),
        lambda: b.statement(doxorubicin, start),
        lambda: b.request(doxorubicin, start),
        lambda: b.administration(doxorubicin, start),
        lambda: b.disease_status(DIAGNOSED + timedelta(days=150)),
        lambda: b.secondary("94381002", "Secondary malignant neoplasm of liver", "10200004", 160),
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
