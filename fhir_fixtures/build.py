"""Build the synthetic mCODE-shaped FHIR R4 test patients and their index.

Run ``.venv/bin/python fhir_fixtures/build.py`` to rewrite every ``fhir_fixtures/<slug>.json``
(one transaction Bundle per patient, every entry a PUT to ``Type/id``) and ``index.yaml`` (what
each patient must and must not produce, by statement id of shared/reference/clinical.md §1).

Builder verbs, all on ``Chart(slug)``: ``patient``, ``primary``, ``metastasis``, ``nodes``,
``tnm``, ``stage_group``, ``record_stage``, ``grade``, ``size``, ``ecog``, ``karnofsky``,
``status``, ``surgery``, ``radiotherapy``, ``administered``, ``requested``, ``stated``,
``observation``; ``bundle()`` returns the Bundle. Every resource id starts with the slug so all
fixtures can share one FHIR server. Codes and their sources: clinical.md §3 and §4; a code marked
"(R)" there is used only where nothing verified exists.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
TODAY = "2026-03-01"

SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
ICDO3 = "http://terminology.hl7.org/CodeSystem/icd-o-3"
AJCC = "http://cancerstaging.org"
NCIT = "http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl"
UCUM = "http://unitsofmeasure.org"
MCODE = "http://hl7.org/fhir/us/mcode/StructureDefinition/"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"

Coding = dict[str, str]
Resource = dict[str, Any]


def coding(system: str, code: str, display: str | None = None) -> Coding:
    return {"system": system, "code": code, **({"display": display} if display else {})}


def concept(*codings: Coding, text: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if codings:
        out["coding"] = list(codings)
    if text:
        out["text"] = text
    return out


def ref(resource: Resource) -> dict[str, str]:
    return {"reference": f"{resource['resourceType']}/{resource['id']}"}


# --- code tables (clinical.md §3) -------------------------------------------------------------

AJCC8 = coding(SCT, "897275008", "American Joint Commission on Cancer, Cancer Staging Manual, "
               "8th edition neoplasm staging system (tumor staging)")
AJCC7 = coding(SCT, "443830009", "American Joint Commission on Cancer, Cancer Staging Manual, "
               "7th edition neoplasm staging system (tumor staging)")

STAGE_SCT = {"IA": "1222724007", "IB": "1222728005", "II": "1222765007", "IIIA": "1222802001",
             "IIIB": "1222805004", "IIIC": "1222806003", "IV": "1222837003"}
STAGE_AJCC = {"IA": "1A", "IB": "1B", "II": "2", "III": "3", "IIIA": "3A", "IIIB": "3B",
              "IIIC": "3C", "IV": "4"}
# (kind, axis) -> (SNOMED category code, display, LOINC code, display)
TNM_CODE = {
    ("c", "T"): ("399504009", "cT category", "21905-5", "Primary tumor.clinical [Class] Cancer"),
    ("p", "T"): ("384625004", "pT category", "21899-0", "Primary tumor.pathology Cancer"),
    ("c", "N"): ("399534004", "cN category", "21906-3",
                 "Regional lymph nodes.clinical [Class] Cancer"),
    ("p", "N"): ("371494008", "pN category", "21900-6", "Regional lymph nodes.pathology Cancer"),
    ("c", "M"): ("399387003", "cM category", "21907-1",
                 "Distant metastases.clinical [Class] Cancer"),
    ("p", "M"): ("371497001", "pM category", "21901-4", "Distant metastases.pathology Cancer"),
}
GROUP_CODE = {"c": ("399537006", "Clinical TNM stage grouping", "21908-9",
                    "Stage group.clinical Cancer"),
              "p": ("399588009", "Pathological TNM stage grouping", "21902-2",
                    "Stage group.pathology Cancer")}
TNM_VALUE_SCT = {
    "cT1": "1228889001", "cT2": "1228929004", "cT3": "1228938002", "cT4": "1228944003",
    "pT1": "1228957006", "pT2": "1229852009", "pT3": "1229859000", "pT4": "1229864001",
    "cN0": "1229967007", "cN1": "1229973008", "pN0": "1229947003", "pN1": "1229951001",
    "cM0": "1229901006", "cM1": "1229903009", "pM1": "1229916009",
}
GRADE_MCODE = {"G1": ("1155708003", "Low histologic grade (qualifier value)"),
               "G2": ("1286893008", "Intermediate histologic grade (qualifier value)"),
               "G3": ("1155707008", "High histologic grade (qualifier value)")}
GRADE_SCT = {"GX": ("12619005", "GX grade (finding)"), "G1": ("54102005", "G1 grade (finding)"),
             "G2": ("1663004", "G2 grade (finding)"), "G3": ("61026006", "G3 grade (finding)")}
ECOG_ANSWER = {
    0: ("LA9622-7", "Fully active, able to carry on all pre-disease performance without "
        "restriction"),
    1: ("LA9623-5", "Restricted in physically strenuous activity but ambulatory and able to "
        "carry out work of a light or sedentary nature, e.g., light house work, office work"),
    2: ("LA9624-3", "Ambulatory and capable of all selfcare but unable to carry out any work "
        "activities. Up and about more than 50% of waking hours"),
    3: ("LA9625-0", "Capable of only limited selfcare, confined to bed or chair more than 50% "
        "of waking hours"),
    4: ("LA9626-8", "Completely disabled. Cannot carry on any selfcare. Totally confined to bed "
        "or chair"),
}
DISEASE_STATUS = {"improved": ("268910001", "Patient's condition improved (finding)"),
                  "stable": ("359746009", "Patient's condition stable (finding)"),
                  "worsened": ("271299001", "Patient's condition worsened (finding)"),
                  "undetermined": ("709137006", "Patient condition undetermined (finding)")}
# site -> (SNOMED secondary disorder, display, ICD-10-CM, display)
METASTASIS = {
    "lung": ("94391008", "Secondary malignant neoplasm of lung", "C78.00",
             "Secondary malignant neoplasm of unspecified lung"),
    "bone": ("94222008", "Secondary malignant neoplasm of bone", "C79.51",
             "Secondary malignant neoplasm of bone"),
    "liver": ("94381002", "Secondary malignant neoplasm of liver", "C78.7",
              "Secondary malignant neoplasm of liver and intrahepatic bile duct"),
    "brain": ("94225005", "Secondary malignant neoplasm of brain", "C79.31",
              "Secondary malignant neoplasm of brain"),
    "pleura": ("94493005", "Secondary malignant neoplasm of pleura", "C78.2",
               "Secondary malignant neoplasm of pleura"),
    "adrenal": ("94161006", "Secondary malignant neoplasm of adrenal gland", "C79.70",
                "Secondary malignant neoplasm of unspecified adrenal gland"),
}
NODES_ICD10 = {
    "C77.2": "Secondary and unspecified malignant neoplasm of intra-abdominal lymph nodes",
    "C77.3": "Secondary and unspecified malignant neoplasm of axilla and upper limb lymph nodes",
    "C77.4": "Secondary and unspecified malignant neoplasm of inguinal and lower limb lymph nodes",
}
BODY_SITE = {
    "lower-limb": ("61685007", "Lower limb structure (body structure)"),
    "upper-limb": ("53120007", "Upper limb structure (body structure)"),
    "trunk": ("22943007", "Trunk structure (body structure)"),
    "retroperitoneum": ("82849001", "Retroperitoneal structure (body structure)"),
    "head-and-neck": ("774007", "Structure of head and/or neck (body structure)"),
    "stomach": ("69695003", "Stomach structure (body structure)"),
    "lung": ("39607008", "Lung structure (body structure)"),
    "left-breast": ("80248007", "Left breast structure (body structure)"),
    "abdominal-wall": ("83035003", "Abdominal wall structure (body structure)"),
}
LATERALITY = {"left": ("7771000", "Left (qualifier value)"),
              "right": ("24028007", "Right (qualifier value)")}
INTENT = {"curative": ("373808002", "Curative - procedure intent (qualifier value)"),
          "palliative": ("363676003", "Palliative - procedure intent (qualifier value)")}
STOP_REASON = {"no-response": ("266721009", "Absent response to treatment (situation)"),
               "not-tolerated": ("407563006", "Treatment not tolerated (situation)")}
# name -> (RXCUI, display); ingredient (TTY IN) unless the name says scd
DRUG = {
    "doxorubicin": ("3639", "doxorubicin"),
    "doxorubicin-scd": ("1790099", "10 ML doxorubicin hydrochloride 2 MG/ML Injection"),
    "ifosfamide": ("5657", "ifosfamide"),
    "dacarbazine": ("3098", "dacarbazine"),
    "gemcitabine": ("12574", "gemcitabine"),
    "docetaxel": ("72962", "docetaxel"),
    "pazopanib": ("714438", "pazopanib"),
    "paclitaxel": ("56946", "paclitaxel"),
    "imatinib": ("282388", "imatinib"),
    "cyclophosphamide": ("3002", "cyclophosphamide"),
    "olaratumab": (None, "olaratumab (Lartruvo)"),  # no RXCUI verified: text only
}
ROUTE = {"iv": ("47625008", "Intravenous route (qualifier value)"),
         "oral": ("26643006", "Oral route (qualifier value)")}
ORAL = {"pazopanib", "imatinib"}


def day(value: str) -> date:
    return date.fromisoformat(value)


def every(start: str, days: int, count: int) -> list[str]:
    """Cycle dates: ``count`` dates ``days`` apart from ``start``."""
    return [(day(start) + timedelta(days=days * i)).isoformat() for i in range(count)]


# --- the builder ------------------------------------------------------------------------------


@dataclass
class Chart:
    """One synthetic patient; each verb adds an mCODE-shaped resource and returns it."""

    slug: str
    resources: list[Resource] = field(default_factory=list)

    def _add(self, resource_type: str, suffix: str | None, body: Resource,
             profile: str | None = None) -> Resource:
        rid = f"{self.slug}-{suffix}" if suffix else self.slug
        resource: Resource = {"resourceType": resource_type, "id": rid}
        if profile:
            resource["meta"] = {"profile": [profile if "/" in profile else MCODE + profile]}
        resource.update(body)
        self.resources.append(resource)
        return resource

    def _primary(self) -> Resource:
        return next(r for r in self.resources if r["id"] == f"{self.slug}-primary")

    @property
    def subject(self) -> dict[str, str]:
        return {"reference": f"Patient/{self.slug}"}

    @property
    def primary_ref(self) -> dict[str, str]:
        return {"reference": f"Condition/{self.slug}-primary"}

    # people and diagnoses

    def patient(self, given: str, family: str, gender: str, birth: str) -> Resource:
        return self._add("Patient", None, {
            "identifier": [{"system": "http://example.org/sarcoma-cds/mrn",
                            "value": f"MRN-{self.slug}"}],
            "name": [{"use": "official", "family": family, "given": [given]}],
            "gender": gender, "birthDate": birth}, "mcode-cancer-patient")

    def primary(self, codes: list[Coding], histology: tuple[str, str] | None, onset: str,
                site: str | None = None, laterality: str | None = None,
                site_text: str | None = None, clinical: str = "active",
                text: str | None = None) -> Resource:
        body: Resource = {}
        if histology:
            body["extension"] = [{"url": MCODE + "mcode-histology-morphology-behavior",
                                  "valueCodeableConcept": concept(coding(ICDO3, *histology))}]
        body |= {
            "clinicalStatus": concept(coding(
                "http://terminology.hl7.org/CodeSystem/condition-clinical", clinical,
                clinical.capitalize())),
            "verificationStatus": concept(coding(
                "http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed",
                "Confirmed")),
            "category": [concept(coding("http://terminology.hl7.org/CodeSystem/condition-category",
                                        "problem-list-item", "Problem List Item"))],
            "code": concept(*codes, text=text),
        }
        if site or site_text:
            place = concept(coding(SCT, *BODY_SITE[site]), text=site_text) if site else \
                concept(text=site_text)
            if laterality:
                place["extension"] = [{"url": MCODE + "mcode-laterality-qualifier",
                                       "valueCodeableConcept": concept(
                                           coding(SCT, *LATERALITY[laterality]))}]
            body["bodySite"] = [place]
        body |= {"subject": self.subject, "onsetDateTime": onset, "recordedDate": onset}
        return self._add("Condition", "primary", body, "mcode-primary-cancer-condition")

    def metastasis(self, site: str, onset: str, icd10: bool = False) -> Resource:
        """SecondaryCancerCondition linked to the primary (condition-related, mCODE STU2+)."""
        sct, sct_display, icd, icd_display = METASTASIS[site]
        codes = [coding(SCT, sct, sct_display)]
        if icd10:
            codes.append(coding(ICD10, icd, icd_display))
        return self._secondary(f"met-{site}", codes, onset)

    def nodes(self, icd10: str, onset: str) -> Resource:
        """Regional nodal disease recorded as a secondary condition (N1, not an organ: §3.10)."""
        return self._secondary("met-regional-nodes", [coding(ICD10, icd10, NODES_ICD10[icd10])],
                               onset)

    def _secondary(self, suffix: str, codes: list[Coding], onset: str) -> Resource:
        return self._add("Condition", suffix, {
            "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/condition-related",
                           "valueReference": self.primary_ref}],
            "clinicalStatus": concept(coding(
                "http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active")),
            "verificationStatus": concept(coding(
                "http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed",
                "Confirmed")),
            "category": [concept(coding("http://terminology.hl7.org/CodeSystem/condition-category",
                                        "problem-list-item", "Problem List Item"))],
            "code": concept(*codes), "subject": self.subject,
            "onsetDateTime": onset, "recordedDate": onset,
        }, "mcode-secondary-cancer-condition")

    # observations

    def observation(self, suffix: str, code: dict[str, Any], when: str, category: str,
                    profile: str | None = None, **fields: Any) -> Resource:
        body = {"status": "final", "category": [concept(coding(OBS_CATEGORY, category))],
                "code": code, "subject": self.subject, "effectiveDateTime": when}
        return self._add("Observation", suffix, body | fields, profile)

    def tnm(self, kind: str, t: str | None, n: str | None, m: str | None, when: str,
            style: str = "snomed", tag: str = "dx") -> list[Resource]:
        """T, N and M category Observations. ``style``: snomed (mCODE STU3+ codes and values),
        ajcc (LOINC codes, cancerstaging.org values as in STU1/2) or loinc-sct (LOINC codes with
        SNOMED values). A pathological stage takes cM (pM0 does not exist)."""
        out = []
        profiles = {"T": "mcode-tnm-primary-tumor-category",
                    "N": "mcode-tnm-regional-nodes-category",
                    "M": "mcode-tnm-distant-metastases-category"}
        for axis, value in (("T", t), ("N", n), ("M", m)):
            if value is None:
                continue
            prefix = "c" if axis == "M" and value == "M0" else kind
            sct, sct_display, loinc, loinc_display = TNM_CODE[(prefix, axis)]
            key = prefix + value
            code = concept(coding(SCT, sct, sct_display)) if style == "snomed" else \
                concept(coding(LOINC, loinc, loinc_display))
            if style == "ajcc":
                val = concept(coding(AJCC, key, key))
            else:
                val = concept(coding(SCT, TNM_VALUE_SCT[key],
                                     f"American Joint Committee on Cancer {key} (qualifier value)"))
            out.append(self.observation(
                f"tnm-{tag}-{axis.lower()}", code, when,
                "laboratory" if prefix == "p" else "imaging", profiles[axis],
                valueCodeableConcept=val, method=concept(AJCC8), focus=[self.primary_ref]))
        return out

    def stage_group(self, kind: str, stage: str, when: str, members: list[Resource],
                    style: str = "snomed", tag: str = "dx", method: Coding = AJCC8) -> Resource:
        sct, sct_display, loinc, loinc_display = GROUP_CODE[kind]
        if style == "snomed":
            code = concept(coding(SCT, sct, sct_display))
            val = concept(coding(SCT, STAGE_SCT[stage], "American Joint Committee on Cancer "
                                 f"stage {stage} (qualifier value)"))
        else:
            code = concept(coding(LOINC, loinc, loinc_display))
            val = concept(coding(AJCC, STAGE_AJCC[stage], stage))
        extra: dict[str, Any] = {"hasMember": [ref(r) for r in members]} if members else {}
        return self.observation(
            f"tnm-{tag}-stage-group", code, when,
            "laboratory" if kind == "p" else "imaging", "mcode-tnm-stage-group",
            valueCodeableConcept=val, method=concept(method), focus=[self.primary_ref], **extra)

    def record_stage(self, group: Resource | None, summary: dict[str, Any]) -> None:
        """Condition.stage on the primary: summary and, if any, the assessment Observation."""
        primary = self._primary()
        entry: dict[str, Any] = {"summary": summary}
        if group:
            entry["assessment"] = [ref(group)]
        primary.setdefault("stage", []).append(entry)

    def grade(self, g: str, when: str, style: str = "mcode") -> Resource:
        """FNCLCC grade. mcode: NCIt C18000 + HistologicGradeVS (G1 low, G2 intermediate, G3
        high); loinc: 21858-6 + SNOMED "Gn grade (finding)"."""
        if style == "mcode":
            code = concept(coding(NCIT, "C18000", "Histologic Grade"))
            val = concept(coding(SCT, *GRADE_MCODE[g]))
        else:
            code = concept(coding(LOINC, "21858-6", "Grade Cancer"))
            val = concept(coding(SCT, *GRADE_SCT[g]))
        return self.observation("grade", code, when, "laboratory", "mcode-histologic-grade",
                                valueCodeableConcept=val, method=concept(text="FNCLCC"),
                                focus=[self.primary_ref])

    def size(self, value: float, when: str, unit: str = "cm") -> Resource:
        """Tumour size (mcode-tumor-size); focus is the tumour BodyStructure, as mCODE asks."""
        body: Resource = {"identifier": [{"system": "http://example.org/sarcoma-cds/tumour",
                                          "value": f"{self.slug}-tumour-1"}]}
        site = self._primary().get("bodySite")
        if site:
            body["location"] = {k: v for k, v in site[0].items() if k != "extension"}
        tumour = self._add("BodyStructure", "tumour", body | {"patient": self.subject},
                           "mcode-tumor")
        quantity = {"value": value, "unit": unit, "system": UCUM, "code": unit}
        return self.observation(
            "tumour-size", concept(coding(LOINC, "21889-1", "Size Tumor")), when, "laboratory",
            "mcode-tumor-size", focus=[ref(tumour)],
            component=[{"code": concept(coding(LOINC, "33728-7",
                                               "Size.maximum dimension in Tumor")),
                        "valueQuantity": quantity}])

    def ecog(self, score: int, when: str, tag: str = "") -> Resource:
        answer = ECOG_ANSWER[score]
        return self.observation(
            f"ecog{tag}", concept(coding(LOINC, "89247-1", "ECOG Performance Status score")),
            when, "survey", "mcode-ecog-performance-status", valueInteger=score,
            interpretation=[concept(coding(LOINC, *answer))],
            method=concept(coding(SCT, "5880005", "Clinical examination")))

    def karnofsky(self, score: int, when: str, meaning: str, tag: str = "") -> Resource:
        return self.observation(
            f"karnofsky{tag}",
            concept(coding(LOINC, "89243-0", "Karnofsky Performance Status score")),
            when, "survey", "mcode-karnofsky-performance-status", valueInteger=score,
            interpretation=[concept(text=meaning)])

    def status(self, value: str, when: str, note: str, tag: str = "") -> Resource:
        """Cancer disease status (LOINC 97509-4), focus on the primary."""
        return self.observation(
            f"disease-status{tag}", concept(coding(LOINC, "97509-4", "Cancer Disease Progression")),
            when, "exam", "mcode-cancer-disease-status",
            extension=[{"url": MCODE + "mcode-evidence-type",
                        "valueCodeableConcept": concept(coding(SCT, "363679005",
                                                               "Imaging (procedure)"))}],
            valueCodeableConcept=concept(coding(SCT, *DISEASE_STATUS[value])),
            focus=[self.primary_ref], note=[{"text": note}])

    # procedures

    def surgery(self, when: str, text: str, intent: str = "curative") -> Resource:
        return self._add("Procedure", "surgery", {
            "extension": [self._intent(intent)], "status": "completed",
            "category": concept(coding(SCT, "387713003", "Surgical procedure (procedure)")),
            "code": concept(coding(SCT, "65801008", "Excision (procedure)"), text=text),
            "subject": self.subject, "performedDateTime": when,
            "reasonReference": [self.primary_ref]}, "mcode-cancer-related-surgical-procedure")

    def radiotherapy(self, start: str, end: str, text: str) -> Resource:
        return self._add("Procedure", "radiotherapy", {
            "extension": [self._intent("curative")], "status": "completed",
            "code": concept(coding(SCT, "108290001",
                                   "Radiation oncology AND/OR radiotherapy (procedure)"),
                            text=text),
            "subject": self.subject, "performedPeriod": {"start": start, "end": end},
            "reasonReference": [self.primary_ref]})

    # medications: one resource per drug and cycle (administration) or per course

    @staticmethod
    def _intent(intent: str) -> dict[str, Any]:
        return {"url": MCODE + "mcode-procedure-intent",
                "valueCodeableConcept": concept(coding(SCT, *INTENT[intent]))}

    @staticmethod
    def _drug(name: str) -> dict[str, Any]:
        code, display = DRUG[name]
        return concept(coding(RXNORM, code, display)) if code else concept(text=display)

    def administered(self, drug: str, dates: list[str], intent: str = "palliative") -> None:
        """MedicationAdministration per cycle (mCODE STU2+ shape, as the jenny-m example)."""
        short = drug.removesuffix("-scd")
        route = "oral" if short in ORAL else "iv"
        for i, when in enumerate(dates, 1):
            self._add("MedicationAdministration", f"madm-{short}-c{i}", {
                "extension": [self._intent(intent)], "status": "completed",
                "medicationCodeableConcept": self._drug(drug), "subject": self.subject,
                "effectiveDateTime": when, "reasonReference": [self.primary_ref],
                "dosage": {"route": concept(coding(SCT, *ROUTE[route]))}},
                "mcode-cancer-related-medication-administration")

    def requested(self, drug: str, start: str, end: str | None, status: str,
                  reason: str | None = None, intent: str = "palliative") -> Resource:
        """MedicationRequest for a course (mCODE STU2+); stop reason in statusReason."""
        short = drug.removesuffix("-scd")
        bounds = {"start": start, **({"end": end} if end else {})}
        body: Resource = {"extension": [self._intent(intent)], "status": status}
        if reason:
            body["statusReason"] = concept(coding(SCT, *STOP_REASON[reason]))
        body |= {"intent": "order", "medicationCodeableConcept": self._drug(drug),
                 "subject": self.subject, "authoredOn": start,
                 "reasonReference": [self.primary_ref],
                 "dosageInstruction": [{"timing": {"repeat": {"boundsPeriod": bounds}},
                                        "route": concept(coding(SCT, *ROUTE[
                                            "oral" if short in ORAL else "iv"]))}]}
        return self._add("MedicationRequest", f"mreq-{short}", body,
                         "mcode-cancer-related-medication-request")

    def stated(self, drug: str, start: str, end: str, status: str,
               reason: str | None = None, intent: str = "palliative") -> Resource:
        """MedicationStatement for a course (mCODE STU1 profile and extension names)."""
        short = drug.removesuffix("-scd")
        body: Resource = {"extension": [{
            "url": MCODE + "mcode-treatment-intent",
            "valueCodeableConcept": concept(coding(SCT, INTENT[intent][0]))}], "status": status}
        if reason:
            body["statusReason"] = [concept(coding(SCT, *STOP_REASON[reason]))]
        body |= {"medicationCodeableConcept": self._drug(drug), "subject": self.subject,
                 "effectivePeriod": {"start": start, "end": end}, "dateAsserted": end,
                 "reasonReference": [self.primary_ref],
                 "dosage": [{"route": concept(coding(SCT, *ROUTE[
                     "oral" if short in ORAL else "iv"]))}]}
        return self._add("MedicationStatement", f"mstmt-{short}", body,
                         "mcode-cancer-related-medication-statement")

    def bundle(self) -> Resource:
        return {"resourceType": "Bundle", "id": self.slug, "type": "transaction",
                "entry": [{"fullUrl": f"{r['resourceType']}/{r['id']}", "resource": r,
                           "request": {"method": "PUT",
                                       "url": f"{r['resourceType']}/{r['id']}"}}
                          for r in self.resources]}


# --- the patients -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Fixture:
    slug: str
    description: str
    situation: list[str]
    must: list[str]
    must_not: list[str]
    build: Callable[[Chart], None]
    today: str = TODAY


def sct(code: str, display: str) -> Coding:
    return coding(SCT, code, display)


def icd(code: str, display: str) -> Coding:
    return coding(ICD10, code, display)


STS = {"lms": sct("443719001", "Leiomyosarcoma (disorder)"),
       "lps": sct("254829001", "Liposarcoma (disorder)"),
       "ddlps": sct("404072004", "Dedifferentiated liposarcoma (disorder)"),
       "mlps": sct("404069006", "Myxoid liposarcoma (disorder)"),
       "ups": sct("443439001", "Undifferentiated pleomorphic sarcoma (disorder)"),
       "synovial": sct("302851001", "Synovial sarcoma (disorder)"),
       "angio": sct("403977003", "Angiosarcoma (disorder)"),
       "dfsp": sct("276799004", "Dermatofibrosarcoma protuberans (disorder)"),
       "asps": sct("404056007", "Alveolar soft part sarcoma (disorder)"),
       "mpnst": sct("404037002", "Malignant peripheral nerve sheath tumor (disorder)"),
       "myxofibro": sct("253042009", "Myxofibrosarcoma (disorder)"),
       "epithelioid": sct("782827000", "Epithelioid sarcoma (disorder)"),
       "fibro": sct("443250000", "Fibrosarcoma (disorder)"),
       "clear-cell": sct("402561003", "Clear cell sarcoma (disorder)"),
       "sts": sct("424952003", "Soft tissue sarcoma (disorder)")}
ICDO = {"lms": ("8890/3", "Leiomyosarcoma, NOS"),
        "wdlps": ("8851/3", "Liposarcoma, well differentiated"),
        "mlps": ("8852/3", "Myxoid liposarcoma"),
        "ddlps": ("8858/3", "Dedifferentiated liposarcoma"),
        "ups-8802": ("8802/3", "Giant cell sarcoma (pleomorphic cell sarcoma)"),
        "ups-8830": ("8830/3", "Malignant fibrous histiocytoma (undifferentiated pleomorphic "
                               "sarcoma)"),
        "ups-8805": ("8805/3", "Undifferentiated sarcoma"),
        "synovial": ("9040/3", "Synovial sarcoma, NOS"),
        "synovial-spindle": ("9041/3", "Synovial sarcoma, spindle cell"),
        "synovial-biphasic": ("9043/3", "Synovial sarcoma, biphasic"),
        "angio": ("9120/3", "Hemangiosarcoma"),
        "dfsp": ("8832/3", "Dermatofibrosarcoma, NOS"),
        "asps": ("9581/3", "Alveolar soft part sarcoma"),
        "mpnst": ("9540/3", "Malignant peripheral nerve sheath tumor"),
        "myxofibro": ("8811/3", "Fibromyxosarcoma (myxofibrosarcoma)"),
        "epithelioid": ("8804/3", "Epithelioid sarcoma"),
        "fibro": ("8810/3", "Fibrosarcoma, NOS"),
        "clear-cell": ("9044/3", "Clear cell sarcoma, NOS"),
        "spindle": ("8801/3", "Spindle cell sarcoma"),
        "sfts": ("8815/3", "Solitary fibrous tumor, malignant"),
        "sarcoma": ("8800/3", "Sarcoma, NOS"),
        "gist-1": ("8936/1", "Gastrointestinal stromal tumor, NOS"),
        "gist-3": ("8936/3", "Gastrointestinal stromal sarcoma"),
        "desmoid": ("8821/1", "Aggressive fibromatosis"),
        "erms": ("8910/3", "Embryonal rhabdomyosarcoma, NOS"),
        "kaposi": ("9140/3", "Kaposi sarcoma"),
        "nsclc": ("8046/3", "Non-small cell carcinoma"),
        "breast-ductal": ("8500/3", "Infiltrating duct carcinoma, NOS")}

# statement groups used in the must / must_not lists
LINE1_PLUS = ["S38", "S39", "S40", "S41", "S42", "S43"]
HISTOLOGY_FIRST_LINE = ["S32", "S33", "S34", "S35", "S36"]
NOT_STS = ["S01", "S04", "S05", "S06", "S07", "S08", "S09", "S10", "S15", "S16", "S17", "S18",
           "S19", "S20", "S21", "S24", "S26", "S27", "S28", "S29", "S32", "S33", "S34", "S35",
           "S36", "S38", "S39", "S40", "S41", "S42", "S43", "S44", "S45"]


def localized(c: Chart, kind: str, t: str, n: str, when: str, style: str = "snomed") -> list[
        Resource]:
    return c.tnm(kind, t, n, "M0", when, style)


def f_ia_thigh(c: Chart) -> None:
    c.patient("Maren", "Holt", "female", "1971-05-12")
    c.primary([STS["myxofibro"]], ICDO["myxofibro"], "2025-02-10", "lower-limb", "left")
    c.surgery("2025-03-01", "Wide local excision, left thigh")
    members = c.tnm("p", "T1", "N0", "M0", "2025-03-05")
    group = c.stage_group("p", "IA", "2025-03-05", members)
    c.record_stage(group, concept(coding(SCT, STAGE_SCT["IA"],
                                         "American Joint Committee on Cancer stage IA "
                                         "(qualifier value)")))
    c.grade("G1", "2025-03-05")
    c.size(4.2, "2025-03-05")
    c.ecog(0, "2025-03-20")


def f_ib_trunk(c: Chart) -> None:
    c.patient("Tomas", "Brenner", "male", "1962-09-30")
    c.primary([STS["lps"], icd("C49.6", "Malignant neoplasm of connective and soft tissue of "
                                       "trunk, unspecified")],
              ICDO["wdlps"], "2024-06-18", "trunk", site_text="Posterior trunk wall")
    members = c.tnm("c", "T2", "N0", "M0", "2024-07-01", style="ajcc")
    c.stage_group("c", "IB", "2024-07-01", members, style="ajcc")
    c.grade("G1", "2024-07-01", style="loinc")
    c.size(8.5, "2024-07-01")
    c.ecog(0, "2024-07-01")


def f_ii_forearm(c: Chart) -> None:
    c.patient("Ines", "Varga", "female", "1988-01-22")
    c.primary([STS["synovial"]], ICDO["synovial-spindle"], "2025-05-06", "upper-limb", "right",
              site_text="Right forearm")
    c.surgery("2025-06-02", "Wide local excision, right forearm")
    members = c.tnm("p", "T1", "N0", "M0", "2025-06-10", style="ajcc")
    c.stage_group("p", "II", "2025-06-10", members, style="ajcc")
    c.grade("G3", "2025-06-10", style="loinc")
    c.size(4.5, "2025-06-10")
    c.ecog(0, "2025-06-10")


def f_iiia_thigh(c: Chart) -> None:
    c.patient("Rafael", "Ortiz", "male", "1958-11-03")
    c.primary([STS["ups"]], ICDO["ups-8802"], "2025-08-19", "lower-limb", "right",
              site_text="Right thigh")
    c.tnm("c", "T2", "N0", "M0", "2025-09-01")
    c.grade("G3", "2025-09-01")
    c.size(7.8, "2025-09-01")
    c.ecog(0, "2025-09-01")


def f_iiib_thigh(c: Chart) -> None:
    c.patient("Helga", "Sorensen", "female", "1955-03-14")
    c.primary([STS["lms"]], ICDO["lms"], "2024-10-02", "lower-limb", "left",
              site_text="Left thigh")
    c.radiotherapy("2024-10-14", "2024-11-15", "Preoperative radiotherapy 50 Gy in 25 fractions")
    c.surgery("2024-12-16", "Wide local excision, left thigh")
    members = c.tnm("p", "T3", "N0", "M0", "2024-12-20")
    group = c.stage_group("p", "IIIB", "2024-12-20", members)
    c.record_stage(group, concept(coding(SCT, STAGE_SCT["IIIB"],
                                         "American Joint Committee on Cancer stage IIIB "
                                         "(qualifier value)")))
    c.grade("G2", "2024-12-20")
    c.size(12.4, "2024-12-20")
    c.ecog(1, "2025-01-10")


def f_ib_calf(c: Chart) -> None:
    c.patient("Jonas", "Weber", "male", "1969-07-07")
    c.primary([STS["fibro"]], ICDO["fibro"], "2025-01-13", "lower-limb", "left",
              site_text="Left calf")
    c.tnm("c", "T3", "N0", "M0", "2025-01-27", style="loinc-sct")
    c.grade("G1", "2025-01-27", style="loinc")
    c.size(112, "2025-01-27", unit="mm")
    c.ecog(0, "2025-01-27")


def f_retroperitoneal_n1(c: Chart) -> None:
    c.patient("Paul", "Lindqvist", "male", "1960-02-19")
    c.primary([STS["ddlps"], icd("C48.0", "Malignant neoplasm of retroperitoneum")],
              ICDO["ddlps"], "2025-04-08", "retroperitoneum")
    c.nodes("C77.2", "2025-04-08")
    c.tnm("c", "T3", "N1", "M0", "2025-04-22")
    c.grade("G3", "2025-04-22")
    c.size(13.0, "2025-04-22")
    c.ecog(1, "2025-04-22")


def f_extremity_n1(c: Chart) -> None:
    c.patient("Noor", "Haddad", "female", "1990-12-01")
    c.primary([STS["clear-cell"]], ICDO["clear-cell"], "2025-06-11", "lower-limb", "right",
              site_text="Right foot")
    c.nodes("C77.4", "2025-06-11")
    members = c.tnm("c", "T2", "N1", "M0", "2025-06-25")
    group = c.stage_group("c", "IV", "2025-06-25", members)
    c.record_stage(group, concept(coding(SCT, STAGE_SCT["IV"],
                                         "American Joint Committee on Cancer stage IV "
                                         "(qualifier value)")))
    c.grade("G3", "2025-06-25", style="loinc")
    c.size(6.1, "2025-06-25")
    c.ecog(0, "2025-06-25")


def f_head_neck(c: Chart) -> None:
    c.patient("Walter", "Krug", "male", "1949-04-25")
    c.primary([STS["ups"], icd("C49.0", "Malignant neoplasm of connective and soft tissue of "
                                        "head, face and neck")],
              ICDO["ups-8830"], "2025-09-09", "head-and-neck", site_text="Left neck")
    c.tnm("c", "T2", "N0", "M0", "2025-09-23")
    c.grade("G3", "2025-09-23")
    c.size(3.2, "2025-09-23")
    c.ecog(1, "2025-09-23")


def f_visceral(c: Chart) -> None:
    c.patient("Olga", "Petrova", "female", "1966-08-08")
    c.primary([STS["lms"]], ICDO["lms"], "2025-01-20", "stomach", site_text="Gastric body")
    c.surgery("2025-02-17", "Partial gastrectomy")
    c.tnm("p", "T1", "N0", "M0", "2025-02-24")
    c.grade("G2", "2025-02-24")
    c.ecog(0, "2025-02-24")


def f_lms_first_line(c: Chart) -> None:
    c.patient("Claire", "Dubois", "female", "1963-10-17")
    c.primary([STS["lms"], icd("C48.0", "Malignant neoplasm of retroperitoneum")], ICDO["lms"],
              "2024-03-12", "retroperitoneum")
    c.surgery("2024-04-15", "Resection of retroperitoneal leiomyosarcoma")
    members = c.tnm("p", "T3", "N0", "M0", "2024-04-20")
    group = c.stage_group("p", "IIIB", "2024-04-20", members)
    c.record_stage(group, concept(coding(SCT, STAGE_SCT["IIIB"],
                                         "American Joint Committee on Cancer stage IIIB "
                                         "(qualifier value)")))
    c.grade("G2", "2024-04-20")
    c.size(11.5, "2024-04-20")
    c.metastasis("lung", "2025-06-03")
    c.metastasis("liver", "2025-06-03")
    m1 = c.tnm("c", None, None, "M1", "2025-06-10", tag="restage")
    group = c.stage_group("c", "IV", "2025-06-10", m1, tag="restage")
    c.record_stage(group, concept(coding(SCT, STAGE_SCT["IV"],
                                         "American Joint Committee on Cancer stage IV "
                                         "(qualifier value)")))
    c.ecog(1, "2025-06-10")


def f_lms_third_line(c: Chart) -> None:
    c.patient("Marek", "Nowak", "male", "1957-06-02")
    c.primary([STS["lms"], icd("C49.21", "Malignant neoplasm of connective and soft tissue of "
                                         "right lower limb, including hip")],
              ICDO["lms"], "2023-05-10", "lower-limb", "right")
    c.surgery("2023-06-01", "Wide local excision, right thigh")
    members = c.tnm("p", "T3", "N0", "M0", "2023-06-08", style="ajcc")
    c.stage_group("p", "IIIB", "2023-06-08", members, style="ajcc")
    c.grade("G3", "2023-06-08")
    c.metastasis("lung", "2024-02-14", icd10=True)
    c.metastasis("bone", "2024-02-14", icd10=True)
    cycles = every("2024-03-01", 21, 6)
    c.administered("doxorubicin", cycles)
    c.administered("dacarbazine", cycles)
    c.status("worsened", "2024-11-05", "CT: new and enlarging lung nodules", tag="-1")
    c.requested("gemcitabine", "2024-11-20", "2025-04-10", "completed")
    c.requested("docetaxel", "2024-11-20", "2025-04-10", "completed")
    c.status("worsened", "2025-06-10", "CT: progression in lung and bone", tag="-2")
    c.ecog(1, "2025-06-12")


def f_lung_metachronous(c: Chart) -> None:
    c.patient("Elena", "Rossi", "female", "1975-02-27")
    c.primary([STS["ups"]], ICDO["ups-8805"], "2024-01-15", "lower-limb", "left")
    c.surgery("2024-02-20", "Wide local excision, left thigh")
    c.radiotherapy("2024-03-18", "2024-04-26", "Postoperative radiotherapy 60 Gy")
    members = c.tnm("p", "T2", "N0", "M0", "2024-03-01")
    group = c.stage_group("p", "IIIA", "2024-03-01", members)
    c.record_stage(group, concept(coding(SCT, STAGE_SCT["IIIA"],
                                         "American Joint Committee on Cancer stage IIIA "
                                         "(qualifier value)")))
    c.grade("G3", "2024-03-01")
    c.size(7.0, "2024-03-01")
    c.metastasis("lung", "2025-07-20")
    c.ecog(0, "2025-07-25")


def f_lung_synchronous(c: Chart) -> None:
    c.patient("Amir", "Rahimi", "male", "1985-09-09")
    c.primary([STS["synovial"]], ICDO["synovial"], "2025-03-04", "lower-limb", "right")
    c.metastasis("lung", "2025-03-18")
    members = c.tnm("c", "T2", "N0", "M1", "2025-03-20")
    group = c.stage_group("c", "IV", "2025-03-20", members)
    c.record_stage(group, concept(coding(SCT, STAGE_SCT["IV"],
                                         "American Joint Committee on Cancer stage IV "
                                         "(qualifier value)")))
    c.grade("G3", "2025-03-20")
    c.size(9.0, "2025-03-20")
    c.ecog(0, "2025-03-20")


def f_liver_only(c: Chart) -> None:
    c.patient("Beatrix", "Keller", "female", "1952-12-12")
    c.primary([STS["sts"]], ICDO["spindle"], "2023-09-05", "trunk", site_text="Chest wall")
    c.surgery("2023-10-02", "Chest wall resection")
    c.tnm("p", "T2", "N0", "M0", "2023-10-09")
    c.grade("G2", "2023-10-09")
    c.size(6.5, "2023-10-09")
    c.metastasis("liver", "2024-11-18", icd10=True)
    c.tnm("c", None, None, "M1", "2024-11-25", tag="restage")
    c.ecog(1, "2024-11-25")


def f_ups_fit(c: Chart) -> None:
    c.patient("Lukas", "Meier", "male", "1978-04-04")
    c.primary([STS["ups"]], ICDO["ups-8802"], "2025-07-01", "lower-limb", "right")
    c.metastasis("lung", "2025-07-01")
    c.metastasis("bone", "2025-07-08")
    members = c.tnm("c", "T3", "N0", "M1", "2025-07-10")
    c.stage_group("c", "IV", "2025-07-10", members)
    c.grade("G3", "2025-07-10")
    c.size(11.0, "2025-07-10")
    c.ecog(0, "2025-07-10")


def f_ups_frail(c: Chart) -> None:
    c.patient("Gertrud", "Albers", "female", "1944-01-30")
    c.primary([STS["ups"]], ICDO["ups-8830"], "2025-05-14", "lower-limb", "left")
    c.metastasis("lung", "2025-05-14")
    c.metastasis("bone", "2025-05-20")
    c.tnm("c", "T4", "N0", "M1", "2025-05-28")
    c.grade("G3", "2025-05-28")
    c.size(16.0, "2025-05-28")
    c.ecog(3, "2025-05-28")


def f_angiosarcoma(c: Chart) -> None:
    c.patient("Ruth", "Castellano", "female", "1959-07-19")
    c.primary([STS["angio"]], ICDO["angio"], "2025-02-11", "trunk", site_text="Left chest wall")
    c.tnm("c", "T2", "N0", "M0", "2025-02-20")
    c.grade("G3", "2025-02-20")
    c.metastasis("lung", "2025-08-05")
    c.metastasis("liver", "2025-08-05")
    c.tnm("c", None, None, "M1", "2025-08-10", tag="restage")
    c.ecog(1, "2025-08-10")


def f_dfsp(c: Chart) -> None:
    c.patient("Kwame", "Mensah", "male", "1972-03-03")
    c.primary([STS["dfsp"]], ICDO["dfsp"], "2023-04-18", "trunk", site_text="Skin of upper back")
    c.surgery("2023-05-22", "Wide excision, upper back")
    c.metastasis("lung", "2025-09-02")
    c.metastasis("bone", "2025-09-02")
    c.ecog(1, "2025-09-10")


def f_dfsp_local(c: Chart) -> None:
    c.patient("Ingrid", "Solberg", "female", "1986-02-14")
    c.primary([STS["dfsp"]], ("8832/1", "Dermatofibrosarcoma protuberans"), "2025-06-02", "trunk",
              site_text="Skin of left shoulder")
    c.size(2.4, "2025-06-02")
    c.ecog(0, "2025-06-02")


def f_after_olaratumab(c: Chart) -> None:
    c.patient("Marek", "Nowak", "male", "1966-04-09")
    c.primary([STS["ups"]], ICDO["ups-8802"], "2023-01-16", "lower-limb", "left")
    c.metastasis("lung", "2023-02-01")
    c.metastasis("liver", "2023-02-01")
    c.tnm("c", "T3", "N0", "M1", "2023-02-06")
    c.grade("G3", "2023-02-06")
    c.stated("doxorubicin", "2023-02-20", "2023-07-10", "completed")
    c.stated("olaratumab", "2023-02-20", "2023-07-10", "completed")
    c.status("worsened", "2023-08-21", "CT: progression of lung metastases", tag="")
    c.ecog(1, "2023-08-28")


def f_asps(c: Chart) -> None:
    c.patient("Sofia", "Lindgren", "female", "1997-08-21")
    c.primary([STS["asps"]], ICDO["asps"], "2025-01-09", "lower-limb", "right")
    c.metastasis("lung", "2025-01-09")
    c.metastasis("brain", "2025-02-03")
    members = c.tnm("c", "T3", "N0", "M1", "2025-02-05")
    group = c.stage_group("c", "IV", "2025-02-05", members)
    c.record_stage(group, concept(coding(SCT, STAGE_SCT["IV"],
                                         "American Joint Committee on Cancer stage IV "
                                         "(qualifier value)")))
    c.size(10.5, "2025-02-05")
    c.ecog(0, "2025-02-05")


def f_epithelioid(c: Chart) -> None:
    c.patient("Daniel", "Okafor", "male", "1993-05-15")
    c.primary([STS["epithelioid"]], ICDO["epithelioid"], "2025-10-07", "upper-limb", "left",
              site_text="Left forearm")
    c.nodes("C77.3", "2025-10-07")
    c.metastasis("lung", "2025-10-14")
    c.tnm("c", "T1", "N1", "M1", "2025-10-20")
    c.grade("G3", "2025-10-20")
    c.size(3.8, "2025-10-20")
    c.ecog(1, "2025-10-20")


def f_ddlps(c: Chart) -> None:
    c.patient("Henrik", "Aalto", "male", "1961-11-11")
    c.primary([STS["ddlps"], icd("C48.0", "Malignant neoplasm of retroperitoneum")],
              ICDO["ddlps"], "2023-11-20", "retroperitoneum")
    c.surgery("2024-01-10", "Resection of retroperitoneal liposarcoma with left nephrectomy")
    members = c.tnm("p", "T4", "N0", "M0", "2024-01-17")
    group = c.stage_group("p", "IIIB", "2024-01-17", members)
    c.record_stage(group, concept(coding(SCT, STAGE_SCT["IIIB"],
                                         "American Joint Committee on Cancer stage IIIB "
                                         "(qualifier value)")))
    c.grade("G3", "2024-01-17")
    c.size(22.0, "2024-01-17")
    c.metastasis("lung", "2024-09-03")
    c.metastasis("liver", "2024-09-03")
    c.administered("doxorubicin-scd", every("2024-09-20", 21, 6))
    c.status("stable", "2024-12-02", "CT after 4 cycles: stable disease", tag="-1")
    c.status("worsened", "2025-04-08", "CT: progression of liver and lung metastases", tag="-2")
    c.ecog(1, "2025-04-10")


def f_ups_second_line(c: Chart) -> None:
    c.patient("Franziska", "Huber", "female", "1970-06-30")
    c.primary([STS["ups"]], ICDO["ups-8802"], "2024-02-05", "lower-limb", "right")
    c.metastasis("lung", "2024-02-20")
    c.metastasis("bone", "2024-02-20")
    c.tnm("c", "T3", "N0", "M1", "2024-02-26")
    c.grade("G3", "2024-02-26")
    c.requested("doxorubicin", "2024-03-04", "2024-06-10", "stopped", reason="no-response")
    c.requested("ifosfamide", "2024-03-04", "2024-06-10", "stopped", reason="no-response")
    c.status("worsened", "2024-06-05", "CT after 4 cycles: progression in lung", tag="")
    c.ecog(1, "2024-06-12")


def f_synovial_third_line(c: Chart) -> None:
    c.patient("Jan", "de Vries", "male", "1982-10-05")
    c.primary([STS["synovial"]], ICDO["synovial-biphasic"], "2023-08-14", "lower-limb", "left")
    c.surgery("2023-09-11", "Wide local excision, left knee region")
    c.tnm("p", "T2", "N0", "M0", "2023-09-18")
    c.grade("G3", "2023-09-18", style="loinc")
    c.metastasis("lung", "2024-06-03")
    c.metastasis("adrenal", "2024-06-03")
    c.stated("doxorubicin", "2024-06-24", "2024-10-07", "completed")
    c.status("worsened", "2024-12-02", "CT: progression in lung", tag="-1")
    c.stated("pazopanib", "2024-12-16", "2025-07-21", "stopped", reason="no-response")
    c.status("worsened", "2025-07-14", "CT: progression in lung and adrenal", tag="-2")
    c.ecog(1, "2025-07-21")


def f_local_recurrence(c: Chart) -> None:
    c.patient("Miriam", "Goldberg", "female", "1956-09-09")
    c.primary([STS["myxofibro"]], ICDO["myxofibro"], "2023-03-14", "lower-limb", "right",
              clinical="recurrence")
    c.surgery("2023-04-11", "Wide local excision, right thigh")
    members = c.tnm("p", "T2", "N0", "M0", "2023-04-18", style="ajcc")
    c.stage_group("p", "IIIA", "2023-04-18", members, style="ajcc")
    c.grade("G2", "2023-04-18")
    c.status("worsened", "2025-02-18",
             "MRI: local recurrence at the resection site, right thigh; CT chest clear")
    c.tnm("c", None, None, "M0", "2025-02-25", tag="recurrence")
    c.ecog(0, "2025-02-25")


def f_indolent(c: Chart) -> None:
    c.patient("Edith", "Brandt", "female", "1948-05-05")
    c.primary([STS["sts"], icd("C48.0", "Malignant neoplasm of retroperitoneum")],
              ICDO["sfts"], "2023-06-20", "retroperitoneum")
    c.surgery("2023-07-25", "Resection of retroperitoneal solitary fibrous tumour")
    c.tnm("p", "T3", "N0", "M0", "2023-08-01")
    c.grade("G1", "2023-08-01")
    c.size(12.0, "2023-08-01")
    c.metastasis("lung", "2025-01-14")
    c.metastasis("liver", "2025-01-14")
    for i, when in enumerate(["2025-04-15", "2025-07-15", "2025-10-14"], 1):
        c.status("stable", when, "Asymptomatic; small lung and liver lesions, minimal growth",
                 tag=f"-{i}")
    c.ecog(0, "2025-10-14")


def f_karnofsky(c: Chart) -> None:
    c.patient("Gustav", "Lind", "male", "1946-02-14")
    c.primary([STS["myxofibro"]], ICDO["myxofibro"], "2024-09-10", "upper-limb", "right")
    c.surgery("2024-10-14", "Wide local excision, right arm")
    c.tnm("p", "T2", "N0", "M0", "2024-10-21")
    c.grade("G3", "2024-10-21")
    c.metastasis("lung", "2025-10-01")
    c.metastasis("liver", "2025-10-01")
    c.karnofsky(40, "2025-10-08", "Disabled; requires special care and assistance")


def f_after_neoadjuvant(c: Chart) -> None:
    c.patient("Alina", "Popescu", "female", "1980-07-07")
    c.primary([STS["ups"]], ICDO["ups-8802"], "2024-01-22", "lower-limb", "left")
    cycles = every("2024-02-05", 21, 3)
    c.administered("doxorubicin", cycles, intent="curative")
    c.administered("ifosfamide", cycles, intent="curative")
    c.surgery("2024-05-06", "Wide local excision, left thigh, after neoadjuvant chemotherapy")
    members = c.tnm("p", "T3", "N0", "M0", "2024-05-13")
    c.stage_group("p", "IIIB", "2024-05-13", members)
    c.grade("G3", "2024-05-13")
    c.metastasis("lung", "2024-12-10")
    c.metastasis("liver", "2024-12-10")
    c.ecog(1, "2024-12-16")


def f_followup_ned(c: Chart) -> None:
    c.patient("Lena", "Fischer", "female", "1984-04-12")
    c.primary([STS["mlps"]], ICDO["mlps"], "2023-10-03", "lower-limb", "right",
              clinical="remission")
    c.radiotherapy("2023-11-06", "2023-12-08", "Preoperative radiotherapy 50 Gy")
    c.surgery("2024-01-15", "Wide local excision, right thigh, R0")
    members = c.tnm("p", "T3", "N0", "M0", "2024-01-22")
    group = c.stage_group("p", "IIIB", "2024-01-22", members)
    c.record_stage(group, concept(coding(SCT, STAGE_SCT["IIIB"],
                                         "American Joint Committee on Cancer stage IIIB "
                                         "(qualifier value)")))
    c.grade("G2", "2024-01-22")
    c.status("improved", "2025-06-10", "Surveillance MRI and CT: no evidence of disease")
    c.ecog(0, "2025-06-10")


def f_nsclc(c: Chart) -> None:
    c.patient("Harold", "Finch", "male", "1952-06-15")
    c.primary([sct("254637007", "Non-small cell lung cancer (disorder)")], ICDO["nsclc"],
              "2025-03-01", "lung", "left")
    members = c.tnm("c", "T3", "N1", "M0", "2025-03-10")
    c.stage_group("c", "IIIA", "2025-03-10", members)
    c.metastasis("brain", "2025-08-01")
    c.ecog(1, "2025-08-05")


def f_breast(c: Chart) -> None:
    c.patient("Jenny", "Morales", "female", "1968-11-02")
    c.primary([sct("353431000119107", "Primary malignant neoplasm of female left breast "
                                      "(disorder)")],
              ICDO["breast-ductal"], "2024-02-10", "left-breast", "left")
    c.tnm("c", "T2", "N1", "M0", "2024-02-20")
    cycles = every("2024-03-04", 14, 4)
    c.administered("doxorubicin-scd", cycles, intent="curative")
    c.administered("cyclophosphamide", cycles, intent="curative")
    c.requested("paclitaxel", "2024-04-29", "2024-07-15", "completed", intent="curative")
    c.metastasis("bone", "2025-09-15")
    c.ecog(1, "2025-09-20")


def f_gist(c: Chart) -> None:
    c.patient("Viktor", "Hahn", "male", "1958-01-25")
    c.primary([sct("420120006", "Gastrointestinal stromal tumor (disorder)"),
               icd("C49.A2", "Gastrointestinal stromal tumor of stomach")],
              ICDO["gist-3"], "2024-05-06", "stomach")
    c.surgery("2024-06-03", "Partial gastrectomy")
    c.metastasis("liver", "2025-04-02")
    c.requested("imatinib", "2025-04-20", None, "active")
    c.ecog(0, "2025-04-20")


def f_gist_icd10(c: Chart) -> None:
    c.patient("Rosa", "Klein", "female", "1964-09-17")
    c.primary([icd("C49.A3", "Gastrointestinal stromal tumor of small intestine")],
              ICDO["gist-1"], "2025-05-20", site_text="Jejunum")
    c.ecog(0, "2025-05-28")


def f_desmoid(c: Chart) -> None:
    c.patient("Nadia", "Ferreira", "female", "1991-02-08")
    c.primary([icd("D48.1", "Neoplasm of uncertain behavior of connective and other soft "
                            "tissue")],
              ICDO["desmoid"], "2025-04-14", "abdominal-wall",
              text="Desmoid-type fibromatosis of the abdominal wall")
    c.size(5.5, "2025-04-28")
    c.ecog(0, "2025-04-28")


def f_embryonal_rms(c: Chart) -> None:
    c.patient("Leon", "Schwarz", "male", "2005-03-03")
    c.primary([sct("404051002", "Embryonal rhabdomyosarcoma (disorder)")], ICDO["erms"],
              "2025-07-15", site_text="Left paratesticular region")
    c.ecog(0, "2025-07-22")


def f_kaposi(c: Chart) -> None:
    c.patient("Samuel", "Osei", "male", "1979-12-19")
    c.primary([icd("C46.0", "Kaposi's sarcoma of skin")], ICDO["kaposi"], "2025-02-25",
              site_text="Skin of both lower legs")
    c.ecog(0, "2025-03-04")


def f_incomplete(c: Chart) -> None:
    c.patient("Petra", "Novak", "female", "1973-08-30")
    c.primary([STS["sts"]], ICDO["sarcoma"], "2025-10-20", "lower-limb")


def f_contradiction(c: Chart) -> None:
    c.patient("Ole", "Hansen", "male", "1965-10-10")
    c.primary([STS["mpnst"]], ICDO["mpnst"], "2025-04-01", "lower-limb", "left")
    c.surgery("2025-04-28", "Wide local excision, left thigh")
    members = c.tnm("p", "T3", "N0", "M0", "2025-05-05")
    group = c.stage_group("p", "IB", "2025-05-05", members)
    c.record_stage(group, concept(coding(SCT, STAGE_SCT["IB"],
                                         "American Joint Committee on Cancer stage IB "
                                         "(qualifier value)")))
    c.grade("G3", "2025-05-05")
    c.size(13.5, "2025-05-05")
    c.ecog(0, "2025-05-05")


def f_ajcc7(c: Chart) -> None:
    c.patient("Ivan", "Petrov", "male", "1954-04-04")
    c.primary([STS["lms"]], ICDO["lms"], "2023-02-14", "upper-limb", "right")
    group = c.stage_group("c", "III", "2023-02-28", [], style="ajcc", method=AJCC7)
    c.record_stage(group, concept(text="Stage III (AJCC 7th edition)"))
    c.ecog(1, "2023-02-28")


def f_icd10_only(c: Chart) -> None:
    c.patient("Carla", "Mendes", "female", "1977-03-21")
    c.primary([icd("C49.22", "Malignant neoplasm of connective and soft tissue of left lower "
                             "limb, including hip")], ICDO["lms"], "2025-05-27")
    c.tnm("c", "T2", "N0", "M0", "2025-06-09")
    c.grade("G2", "2025-06-09", style="loinc")
    c.size(6.3, "2025-06-09")
    c.ecog(0, "2025-06-09")


KARNOFSKY = {90: "Able to carry on normal activity; minor signs or symptoms of disease",
             80: "Normal activity with effort; some signs or symptoms of disease"}
VITALS = [("8867-4", "Heart rate", "/min", "{beats}/min", 72, 8, 0),
          ("8480-6", "Systolic blood pressure", "mm[Hg]", "mm[Hg]", 128, 9, 0),
          ("8462-4", "Diastolic blood pressure", "mm[Hg]", "mm[Hg]", 79, 6, 0),
          ("29463-7", "Body weight", "kg", "kg", 81.0, 1.5, 1)]
LABS = [("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 13.4, 0.8, 1),
        ("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", 6.8, 1.2, 1),
        ("777-3", "Platelets [#/volume] in Blood by Automated count", "10*3/uL", 245, 35, 0),
        ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.95, 0.1, 2),
        ("1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
         "U/L", 24, 6, 0)]


def f_many(c: Chart) -> None:
    """A two-year chart (weekly vitals, fortnightly labs) so the FHIR client must page."""
    c.patient("Theo", "Sandberg", "male", "1967-01-19")
    c.primary([STS["ups"]], ICDO["ups-8830"], "2024-01-09", "lower-limb", "right")
    c.radiotherapy("2024-02-12", "2024-03-15", "Preoperative radiotherapy 50 Gy")
    c.surgery("2024-04-15", "Wide local excision, right thigh")
    members = c.tnm("p", "T3", "N0", "M0", "2024-04-22")
    group = c.stage_group("p", "IIIB", "2024-04-22", members)
    c.record_stage(group, concept(coding(SCT, STAGE_SCT["IIIB"],
                                         "American Joint Committee on Cancer stage IIIB "
                                         "(qualifier value)")))
    c.grade("G3", "2024-04-22")
    c.size(11.2, "2024-04-22")
    # ECOG and Karnofsky at every fortnightly visit: over 100 oncology Observations, so even a
    # code-filtered search needs a second page at _count=100.
    for i, when in enumerate(every("2024-01-15", 14, 52), 1):
        fit = i <= 40
        c.ecog(0 if fit else 1, when, tag=f"-{i:02d}")
        c.karnofsky(90 if fit else 80, when, KARNOFSKY[90 if fit else 80], tag=f"-{i:02d}")
    rng = random.Random(20240108)
    for week, when in enumerate(every("2024-01-08", 7, 104), 1):
        for code, display, unit, ucum, mean, sd, digits in VITALS:
            c.observation(f"vs-{code}-w{week:03d}", concept(coding(LOINC, code, display)),
                          when, "vital-signs",
                          valueQuantity={"value": round(rng.gauss(mean, sd), digits),
                                         "unit": unit, "system": UCUM, "code": ucum})
        if week % 2:
            continue
        for code, display, unit, mean, sd, digits in LABS:
            c.observation(f"lab-{code}-w{week:03d}", concept(coding(LOINC, code, display)),
                          when, "laboratory",
                          valueQuantity={"value": round(rng.gauss(mean, sd), digits),
                                         "unit": unit, "system": UCUM, "code": unit})


LOCAL = ["S17", "S18", "S19", "S20", "S23", "S24", "S26", "S28", "S45"]
M1_NOT = ["S05", "S06", "S07", "S08", "S10"]

FIXTURES: list[Fixture] = [
    Fixture("sts-ia-thigh-snomed-stage",
            "Myxofibrosarcoma left thigh, pT1 N0 M0 G1, stage IA recorded as SNOMED on "
            "Condition.stage and a stage-group Observation",
            ["sts", "extremity", "stage-IA", "M0", "stage-recorded:snomed", "resected"],
            ["S01", "S05", "S06", "S07"], ["S08", "S09", "S10", "G7", *LOCAL], f_ia_thigh),
    Fixture("sts-ib-trunk-ajcc-codes",
            "Well-differentiated liposarcoma of the trunk, cT2 N0 M0 G1, stage IB as LOINC "
            "21908-9 with cancerstaging.org codes",
            ["sts", "trunk", "stage-IB", "M0", "stage-recorded:ajcc-loinc", "liposarcoma"],
            ["S01", "S05", "S07"], ["S06", "S08", "S09", "S10", "S42", "G7", *LOCAL], f_ib_trunk),
    Fixture("sts-ii-forearm-ajcc-codes",
            "Synovial sarcoma right forearm, pT1 N0 M0 G3, stage II as LOINC 21902-2 with "
            "cancerstaging.org codes",
            ["sts", "extremity", "stage-II", "M0", "stage-recorded:ajcc-loinc", "resected"],
            ["S01", "S05", "S06", "S08"], ["S07", "S09", "S10", "G7", *LOCAL], f_ii_forearm),
    Fixture("sts-iiia-thigh-tnm-only",
            "UPS right thigh, cT2 N0 M0 G3 (7.8 cm), no stage recorded: service computes IIIA",
            ["sts", "extremity", "stage-IIIA", "M0", "stage-computed", "ups"],
            ["S01", "S05", "S06", "S08", "S09"], ["S07", "S10", "G7", *LOCAL], f_iiia_thigh),
    Fixture("sts-iiib-thigh-snomed-stage",
            "Leiomyosarcoma left thigh after preoperative RT and excision, pT3 N0 M0 G2, stage "
            "IIIB recorded as SNOMED",
            ["sts", "extremity", "stage-IIIB", "M0", "stage-recorded:snomed", "lms", "resected"],
            ["S01", "S05", "S06", "S08", "S09"], ["S07", "S10", "S32", "G7", *LOCAL],
            f_iiib_thigh),
    Fixture("sts-ib-calf-tnm-only",
            "Fibrosarcoma left calf, T3 N0 M0 G1, size 112 mm, T/N/M as LOINC codes with SNOMED "
            "values, no stage: service computes IB",
            ["sts", "extremity", "stage-IB", "M0", "stage-computed", "size-in-mm",
             "tnm:loinc-code-snomed-value"],
            ["S01", "S05", "S06", "S07"], ["S08", "S09", "S10", "G7", *LOCAL], f_ib_calf),
    Fixture("sts-retroperitoneal-n1-iiib",
            "Dedifferentiated liposarcoma of the retroperitoneum, cT3 N1 M0 G3 with nodal "
            "secondary (C77.2): AJCC 8 IIIB, nodal extent",
            ["sts", "retroperitoneum", "stage-IIIB", "N1", "M0", "extent:nodal",
             "nodes-not-an-organ", "stage-computed"],
            ["S01", "S05", "S09", "S10"],
            ["S06", "S08", "S17", "S23", "S24", "S26", "S42", "S45", "G7"], f_retroperitoneal_n1),
    Fixture("sts-extremity-n1-nodal-stage-iv",
            "Clear cell sarcoma right foot, cT2 N1 M0 G3, inguinal nodes: AJCC 8 stage IV but "
            "regional, not distant (flag F1)",
            ["sts", "extremity", "stage-IV", "N1", "M0", "extent:nodal", "F1",
             "stage-recorded:snomed"],
            ["S01", "S05", "S06", "S09", "S10"],
            ["S08", "S17", "S19", "S20", "S23", "S24", "S26", "S45", "G7"], f_extremity_n1),
    Fixture("sts-head-neck-no-stage-group",
            "UPS of the neck, cT2 (3.2 cm) N0 M0 G3: head and neck has no AJCC 8 stage group",
            ["sts", "head-and-neck", "no-stage-group", "M0"],
            ["S01", "S05"], ["S06", "S07", "S08", "S09", "S10", *LOCAL], f_head_neck),
    Fixture("sts-visceral-stomach-lms",
            "Leiomyosarcoma of the stomach (not GIST), pT1 N0 M0 G2: visceral site, no AJCC 8 "
            "stage group",
            ["sts", "visceral", "no-stage-group", "M0", "lms", "not-gist"],
            ["S01", "S05"], ["S06", "S07", "S08", "S09", "S10", "S32", "G1", *LOCAL], f_visceral),
    Fixture("lms-metastatic-first-line",
            "Retroperitoneal leiomyosarcoma resected 2024 (IIIB), lung and liver metastases "
            "2025, no systemic therapy yet, ECOG 1",
            ["sts", "lms", "M1", "extent:disseminated", "metachronous", "line-0", "ecog-1",
             "restaged-IV"],
            ["S01", "S17", "S23", "S24", "S26", "S28", "S32", "S45"],
            [*M1_NOT, "S18", "S19", "S20", "S33", "S34", "S35", "S36", *LINE1_PLUS, "S44",
             "G7"], f_lms_first_line),
    Fixture("lms-metastatic-third-line",
            "Leiomyosarcoma right thigh, lung and bone metastases; progressed on doxorubicin + "
            "dacarbazine then on gemcitabine + docetaxel",
            ["sts", "lms", "M1", "extent:disseminated", "line-2-done", "prior-anthracycline",
             "prior-gemcitabine-docetaxel", "progression", "meds:administration+request"],
            ["S01", "S03", "S17", "S24", "S38", "S39", "S40", "S42", "S45"],
            [*M1_NOT, "S28", "S29", "S32", "S33", "S34", "S35", "S36", "S41", "S43"],
            f_lms_third_line),
    Fixture("sts-lung-only-metachronous",
            "UPS left thigh resected 2024-02 (IIIA); single-organ lung metastasis 18 months "
            "after diagnosis; M0 only in old staging, M1 from the secondary condition",
            ["sts", "ups", "M1", "extent:lung-only", "metachronous", "line-0", "ecog-0",
             "m-from-secondary-condition"],
            ["S01", "S17", "S19", "S21", "S23", "S26", "S45"],
            [*M1_NOT, "S20", "S24", *LINE1_PLUS, "S44"], f_lung_metachronous),
    Fixture("sts-lung-only-synchronous",
            "Synovial sarcoma right thigh with lung metastases found in the same month, "
            "cT2 N0 M1 G3, stage IV, no therapy yet",
            ["sts", "synovial", "M1", "extent:lung-only", "synchronous", "line-0", "ecog-0"],
            ["S01", "S17", "S20", "S21", "S23", "S26", "S28", "S45"],
            [*M1_NOT, "S19", "S24", *LINE1_PLUS, "S44"], f_lung_synchronous),
    Fixture("sts-limited-liver-only",
            "Spindle cell sarcoma of the chest wall resected 2023; liver-only metastasis 14 "
            "months later (limited, single non-lung organ)",
            ["sts", "trunk", "M1", "extent:limited", "liver-only", "metachronous", "line-0",
             "diagnosis:snomed+icd10-secondary"],
            ["S01", "S16", "S17", "S18", "S23", "S26", "S45"],
            [*M1_NOT, "S19", "S20", "S21", "S24", *LINE1_PLUS], f_liver_only),
    Fixture("ups-disseminated-first-line-fit",
            "UPS right thigh with synchronous lung and bone metastases, ECOG 0, no therapy",
            ["sts", "ups", "M1", "extent:disseminated", "synchronous", "line-0", "ecog-0", "fit"],
            ["S01", "S17", "S23", "S24", "S26", "S28", "S29", "S45"],
            [*M1_NOT, "S18", "S19", "S20", "S21", *HISTOLOGY_FIRST_LINE, *LINE1_PLUS, "S44"],
            f_ups_fit),
    Fixture("ups-disseminated-first-line-frail",
            "UPS left thigh, lung and bone metastases, ECOG 3, age 81, no therapy",
            ["sts", "ups", "M1", "extent:disseminated", "line-0", "ecog-3", "frail"],
            ["S01", "S17", "S24", "S26", "S44", "S45"],
            [*M1_NOT, "S18", "S19", "S20", "S29", "S31", "S32", *LINE1_PLUS], f_ups_frail),
    Fixture("angiosarcoma-advanced-first-line",
            "Angiosarcoma of the chest wall with lung and liver metastases, no therapy, ECOG 1",
            ["sts", "angiosarcoma", "M1", "extent:disseminated", "line-0", "histology-specific"],
            ["S01", "S17", "S23", "S24", "S26", "S33", "S45"],
            [*M1_NOT, "S28", "S32", "S34", "S35", "S36", *LINE1_PLUS], f_angiosarcoma),
    Fixture("dfsp-metastatic",
            "Dermatofibrosarcoma protuberans (8832/3) of the back resected 2023, lung and bone "
            "metastases 2025, no TNM recorded",
            ["sts", "dfsp", "M1", "extent:disseminated", "line-0", "histology-specific",
             "no-tnm"],
            ["S01", "S17", "S24", "S26", "S34", "S45"],
            [*M1_NOT, "S28", "S29", "S32", "S33", "S35", "S36", *LINE1_PLUS], f_dfsp),
    Fixture("dfsp-localized-shoulder",
            "Dermatofibrosarcoma protuberans (8832/1) of the skin of the left shoulder, 2.4 cm, "
            "no spread: a superficial tumour where Mohs surgery may be used",
            ["sts", "dfsp", "M0", "superficial", "no-tnm"],
            ["S01", "S05", "S11"], ["S34", *LOCAL], f_dfsp_local),
    Fixture("ups-after-doxorubicin-olaratumab",
            "UPS left thigh, lung and liver metastases; doxorubicin plus olaratumab "
            "(MedicationStatement, text-only olaratumab), then progression",
            ["sts", "ups", "M1", "extent:disseminated", "line-1-done", "prior-anthracycline",
             "prior-olaratumab", "progression", "meds:statement", "medication:text-only"],
            ["S01", "S38", "S41", "S42", "G5"],
            [*M1_NOT, "S28", "S29", "S32", "S33", "S34", "S35", "S36", "S43"], f_after_olaratumab),
    Fixture("asps-metastatic",
            "Alveolar soft part sarcoma right thigh, age 27, lung and brain metastases, stage IV",
            ["sts", "asps", "M1", "extent:disseminated", "line-0", "histology-specific",
             "no-grade"],
            ["S01", "S17", "S24", "S26", "S35", "S45", "S46"],
            [*M1_NOT, "S28", "S29", "S32", "S33", "S34", "S36", *LINE1_PLUS], f_asps),
    Fixture("epithelioid-sarcoma-advanced",
            "Epithelioid sarcoma left forearm with axillary nodes and lung metastases "
            "(synchronous); nodes do not count as an organ, so extent is lung-only",
            ["sts", "epithelioid", "N1", "M1", "extent:lung-only", "nodes-not-an-organ",
             "synchronous", "line-0"],
            ["S01", "S17", "S20", "S26", "S28", "S45"],
            [*M1_NOT, "S19", "S24", "S32", "S33", "S34", "S35", *LINE1_PLUS], f_epithelioid),
    Fixture("ddlps-metastatic-after-doxorubicin",
            "Dedifferentiated liposarcoma (8858/3) retroperitoneum, lung and liver metastases, "
            "6 cycles doxorubicin (MedicationAdministration, SCD 1790099), then progression",
            ["sts", "liposarcoma", "adipocytic", "M1", "extent:disseminated", "line-1-done",
             "prior-anthracycline", "progression", "meds:administration", "rxnorm:scd"],
            ["S01", "S03", "S17", "S24", "S36", "S38", "S39", "S40", "S43", "S45"],
            [*M1_NOT, "S28", "S29", "S32", "S33", "S34", "S35", "S41", "S42"], f_ddlps),
    Fixture("ups-second-line-after-doxo-ifos",
            "UPS right thigh, lung and bone metastases; doxorubicin + ifosfamide "
            "(MedicationRequest, stopped: no response 266721009) with progression",
            ["sts", "ups", "non-adipocytic", "M1", "extent:disseminated", "line-1-done",
             "prior-anthracycline", "prior-ifosfamide", "progression", "meds:request",
             "rxnorm:ingredient", "status-reason"],
            ["S01", "S03", "S17", "S24", "S38", "S41", "S42", "S45"],
            [*M1_NOT, "S28", "S29", "S32", "S33", "S34", "S35", "S36", "S43"],
            f_ups_second_line),
    Fixture("synovial-third-line-after-pazopanib",
            "Synovial sarcoma left knee region, lung and adrenal metastases; doxorubicin then "
            "pazopanib (MedicationStatement, stopped) with progression after each",
            ["sts", "synovial", "M1", "extent:disseminated", "line-2-done",
             "prior-anthracycline", "prior-pazopanib", "progression", "meds:statement"],
            ["S01", "S03", "S17", "S24", "S38", "S39", "S45"],
            [*M1_NOT, "S28", "S29", "S32", "S36", "S42", "S43"], f_synovial_third_line),
    Fixture("sts-local-recurrence",
            "Myxofibrosarcoma right thigh resected 2023 (IIIA); local recurrence 2025 "
            "(clinicalStatus recurrence, disease status worsened), CT chest clear, cM0",
            ["sts", "extremity", "local-recurrence", "M0", "no-distant-metastasis"],
            ["S01", "S15", "S16"],
            ["S17", "S18", "S19", "S20", "S23", "S24", "S26", "S28", "S45", *LINE1_PLUS],
            f_local_recurrence),
    Fixture("sts-advanced-indolent-observation",
            "Malignant solitary fibrous tumour (8815/3) retroperitoneum; small lung and liver "
            "metastases stable on three scans, asymptomatic, no therapy",
            ["sts", "sft", "M1", "extent:disseminated", "line-0", "disease-status:stable",
             "slow-growth", "asymptomatic"],
            ["S01", "S17", "S24", "S26", "S27", "S45"],
            [*M1_NOT, *LINE1_PLUS, "S44"], f_indolent),
    Fixture("sts-metastatic-karnofsky-40",
            "Myxofibrosarcoma right arm, lung and liver metastases, Karnofsky 40 (no ECOG), "
            "no therapy",
            ["sts", "M1", "extent:disseminated", "line-0", "karnofsky-40", "poor-ps"],
            ["S01", "S17", "S24", "S26", "S44", "S45"],
            [*M1_NOT, "S29", "S31", *LINE1_PLUS], f_karnofsky),
    Fixture("sts-progression-after-neoadjuvant",
            "UPS left thigh, neoadjuvant doxorubicin + ifosfamide then surgery 2024-05; lung "
            "and liver metastases 2024-12, within 12 months of perioperative chemotherapy",
            ["sts", "ups", "non-adipocytic", "M1", "extent:disseminated",
             "perioperative-chemo", "progression-within-12-months", "line-0-advanced"],
            ["S01", "S17", "S24", "S26", "S42", "S45"],
            [*M1_NOT, "S32", "S36", "S43"], f_after_neoadjuvant),
    Fixture("sts-followup-ned",
            "Myxoid liposarcoma right thigh, preoperative RT and R0 excision 2024 (IIIB); "
            "remission, no evidence of disease on surveillance",
            ["sts", "extremity", "M0", "after-curative-treatment", "remission", "ned"],
            ["S01", "S04"],
            ["S05", "S06", "S07", "S08", "S09", "S10", "S12", "S13", "S14", "S15", "S17", "S24",
             "S26", "S28", "S29", "S36", "S42", "S45"],
            f_followup_ned),
    Fixture("control-nsclc",
            "Non-small cell lung cancer (254637007) with brain metastasis: not a sarcoma",
            ["control", "other-cancer", "M1"], [], [*NOT_STS, "G1", "G2", "G3"], f_nsclc),
    Fixture("control-breast",
            "Left breast cancer (353431000119107) after doxorubicin + cyclophosphamide and "
            "paclitaxel, bone metastasis: not a sarcoma despite anthracycline and M1",
            ["control", "other-cancer", "M1", "prior-anthracycline"], [],
            [*NOT_STS, "G1", "G2", "G3"], f_breast),
    Fixture("gist-stomach",
            "Gastric GIST (SNOMED 420120006, C49.A2, 8936/3) with liver metastasis on imatinib",
            ["gist", "G1", "M1", "imatinib"], ["G1"], [*NOT_STS, "G2", "G3"], f_gist),
    Fixture("gist-small-intestine-icd10-only",
            "Small-intestine GIST coded only as ICD-10-CM C49.A3 with ICD-O 8936/1",
            ["gist", "G1", "diagnosis:icd10-only"], ["G1"], [*NOT_STS, "G2", "G3"], f_gist_icd10),
    Fixture("desmoid-abdominal-wall",
            "Desmoid-type fibromatosis (8821/1, D48.1) of the abdominal wall: not a sarcoma",
            ["desmoid", "G3", "diagnosis:icd10-only"], ["G3"], [*NOT_STS, "G1", "G2"],
            f_desmoid),
    Fixture("embryonal-rms",
            "Embryonal rhabdomyosarcoma (404051002, 8910/3), paratesticular, age 20: outside "
            "the adult STS guideline",
            ["out-of-scope-sarcoma", "G2", "embryonal-rms"], ["G2"], [*NOT_STS, "G1", "G3"],
            f_embryonal_rms),
    Fixture("kaposi-sarcoma",
            "Kaposi sarcoma of skin (C46.0, 9140/3): outside the STS guideline",
            ["out-of-scope-sarcoma", "G2", "kaposi", "diagnosis:icd10-only"], ["G2"],
            [*NOT_STS, "G1", "G3"], f_kaposi),
    Fixture("sts-incomplete-no-stage",
            "Soft tissue sarcoma NOS (8800/3) of the lower limb with no T/N/M, grade, size or "
            "stage",
            ["sts", "data-quality", "missing-stage", "missing-grade", "missing-tnm"],
            ["S01", "G7"],
            ["S07", "S08", "S09", "S10", "S24", "S28", "S29", *LINE1_PLUS], f_incomplete),
    Fixture("sts-stage-contradiction",
            "MPNST left thigh: recorded stage IB but pT3 N0 M0 G3 (13.5 cm) gives IIIB",
            ["sts", "data-quality", "contradiction", "recorded-IB", "computed-IIIB"],
            ["S01", "G7"], ["S17", "S24", "S28", "S45"], f_contradiction),
    Fixture("sts-ajcc7-stage-only",
            "Leiomyosarcoma right arm with only an AJCC 7th-edition stage III (method "
            "443830009); no 8th-edition T/N/M/G",
            ["sts", "data-quality", "ajcc7-only", "missing-tnm"],
            ["S01", "G7"], ["S07", "S08", "S24", "S28"], f_ajcc7),
    Fixture("sts-icd10-only-thigh",
            "Leiomyosarcoma coded only as ICD-10-CM C49.22 (left lower limb) with histology "
            "8890/3, cT2 N0 M0 G2: IIIA computed",
            ["sts", "extremity", "diagnosis:icd10-only", "stage-IIIA", "M0", "stage-computed",
             "no-bodysite"],
            ["S01", "S05", "S06", "S08", "S09"], ["S07", "S10", "S32", "G7", *LOCAL],
            f_icd10_only),
    Fixture("many-observations",
            "UPS right thigh, pT3 N0 M0 G3 (IIIB) resected, with two years of weekly vital signs "
            "and fortnightly labs (600+ Observations) and fortnightly ECOG + Karnofsky (100+ "
            "oncology Observations) to exercise server paging",
            ["sts", "extremity", "stage-IIIB", "M0", "large-chart", "paging",
             "repeated-ecog"],
            ["S01", "S05", "S06", "S08", "S09"], ["S07", "S10", "G7", *LOCAL], f_many),
]


def build(fixture: Fixture) -> Resource:
    chart = Chart(fixture.slug)
    fixture.build(chart)
    return chart.bundle()


def index_entry(fixture: Fixture) -> dict[str, Any]:
    return {"file": f"{fixture.slug}.json", "patient": fixture.slug,
            "description": fixture.description, "situation": fixture.situation,
            "must": fixture.must, "must_not": sorted(set(fixture.must_not)),
            "today": fixture.today}


def write_all(folder: Path = HERE) -> None:
    for fixture in FIXTURES:
        text = json.dumps(build(fixture), indent=2, ensure_ascii=False) + "\n"
        (folder / f"{fixture.slug}.json").write_text(text, encoding="utf-8")
    header = ("# Generated by fhir_fixtures/build.py; edit there. One entry per fixture patient:\n"
              "# must / must_not are statement ids (shared/reference/clinical.md §1) that the\n"
              "# sarcoma-patient-view response must / must not contain; situation tags show why.\n")
    body = yaml.safe_dump([index_entry(f) for f in FIXTURES], sort_keys=False, width=100,
                          allow_unicode=True)
    (folder / "index.yaml").write_text(header + body, encoding="utf-8")


if __name__ == "__main__":
    write_all()
