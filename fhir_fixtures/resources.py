"""The one builder of FHIR R4 test data: mCODE-shaped resources from named codes.

The code systems and code tables here are the only ones the test data uses: the fixture patients
(``build.py`` reads ``patients/*.yaml`` steps, each a method of ``Chart``), the unit tests'
resource builders (``tests/unit/fhir_builders.py``) and the benchmark charts (``bench/charts.py``).
Codes and their sources: ``cds_service/summary/codes.yaml`` and ``drugs.yaml``.

Verbs: ``coding``, ``concept`` and ``ref`` make the data types; ``named_code`` reads ``sts:lms``,
``sct:gist`` or ``icd:C49.22``; ``Chart(slug)`` adds one patient's resources step by step
(``patient``, ``primary``, ``metastasis``, ``tnm``, ``ecog``, ``administered``, ...) and
``Chart.bundle`` makes its transaction Bundle.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import partialmethod
from typing import Any

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
CLINICAL_STATUS = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION_STATUS = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
CONDITION_RELATED = "http://hl7.org/fhir/StructureDefinition/condition-related"
HISTOLOGY_EXTENSION = MCODE + "mcode-histology-morphology-behavior"

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


def coded(system: str, code: str, display: str | None = None, text: str | None = None) -> dict[str, Any]:
    """A CodeableConcept of one Coding."""
    return concept(coding(system, code, display), text=text)


def ref(resource: Resource) -> dict[str, str]:
    return {"reference": f"{resource['resourceType']}/{resource['id']}"}


# --- code tables ----------------------------------------------------------------------------

AJCC8 = coding(
    SCT,
    "897275008",
    "American Joint Commission on Cancer, Cancer Staging Manual, 8th edition neoplasm staging system (tumor staging)",
)
AJCC7 = coding(
    SCT,
    "443830009",
    "American Joint Commission on Cancer, Cancer Staging Manual, 7th edition neoplasm staging system (tumor staging)",
)
STAGING_METHOD = {"ajcc8": AJCC8, "ajcc7": AJCC7}

STAGE_SCT = {
    "IA": "1222724007",
    "IB": "1222728005",
    "II": "1222765007",
    "IIIA": "1222802001",
    "IIIB": "1222805004",
    "IIIC": "1222806003",
    "IV": "1222837003",
}
STAGE_AJCC = {"IA": "1A", "IB": "1B", "II": "2", "III": "3", "IIIA": "3A", "IIIB": "3B", "IIIC": "3C", "IV": "4"}
# (kind, axis) -> (SNOMED category code, display, LOINC code, display)
TNM_CODE = {
    ("c", "T"): ("399504009", "cT category", "21905-5", "Primary tumor.clinical [Class] Cancer"),
    ("p", "T"): ("384625004", "pT category", "21899-0", "Primary tumor.pathology Cancer"),
    ("c", "N"): ("399534004", "cN category", "21906-3", "Regional lymph nodes.clinical [Class] Cancer"),
    ("p", "N"): ("371494008", "pN category", "21900-6", "Regional lymph nodes.pathology Cancer"),
    ("c", "M"): ("399387003", "cM category", "21907-1", "Distant metastases.clinical [Class] Cancer"),
    ("p", "M"): ("371497001", "pM category", "21901-4", "Distant metastases.pathology Cancer"),
}
TNM_PROFILE = {
    "T": "mcode-tnm-primary-tumor-category",
    "N": "mcode-tnm-regional-nodes-category",
    "M": "mcode-tnm-distant-metastases-category",
}
GROUP_CODE = {
    "c": ("399537006", "Clinical TNM stage grouping", "21908-9", "Stage group.clinical Cancer"),
    "p": ("399588009", "Pathological TNM stage grouping", "21902-2", "Stage group.pathology Cancer"),
}
TNM_VALUE_SCT = {
    "cTX": "1222604002",
    "cT1": "1228889001",
    "cT2": "1228929004",
    "cT3": "1228938002",
    "cT4": "1228944003",
    "pT1": "1228957006",
    "pT2": "1229852009",
    "pT3": "1229859000",
    "pT4": "1229864001",
    "cN0": "1229967007",
    "cN1": "1229973008",
    "pN0": "1229947003",
    "pN1": "1229951001",
    "cM0": "1229901006",
    "cM1": "1229903009",
    "pM1": "1229916009",
}
GRADE_MCODE = {
    "G1": ("1155708003", "Low histologic grade (qualifier value)"),
    "G2": ("1286893008", "Intermediate histologic grade (qualifier value)"),
    "G3": ("1155707008", "High histologic grade (qualifier value)"),
}
GRADE_SCT = {
    "GX": ("12619005", "GX grade (finding)"),
    "G1": ("54102005", "G1 grade (finding)"),
    "G2": ("1663004", "G2 grade (finding)"),
    "G3": ("61026006", "G3 grade (finding)"),
}
ECOG_ANSWER = {
    0: ("LA9622-7", "Fully active, able to carry on all pre-disease performance without restriction"),
    1: (
        "LA9623-5",
        "Restricted in physically strenuous activity but ambulatory and able to "
        "carry out work of a light or sedentary nature, e.g., light house work, office work",
    ),
    2: (
        "LA9624-3",
        "Ambulatory and capable of all selfcare but unable to carry out any work "
        "activities. Up and about more than 50% of waking hours",
    ),
    3: ("LA9625-0", "Capable of only limited selfcare, confined to bed or chair more than 50% of waking hours"),
    4: ("LA9626-8", "Completely disabled. Cannot carry on any selfcare. Totally confined to bed or chair"),
    5: ("LA9627-6", "Dead"),
}
KARNOFSKY = {
    90: "Able to carry on normal activity; minor signs or symptoms of disease",
    80: "Normal activity with effort; some signs or symptoms of disease",
    40: "Disabled; requires special care and assistance",
}
DISEASE_STATUS = {
    "improved": ("268910001", "Patient's condition improved (finding)"),
    "stable": ("359746009", "Patient's condition stable (finding)"),
    "worsened": ("271299001", "Patient's condition worsened (finding)"),
    "undetermined": ("709137006", "Patient condition undetermined (finding)"),
}
# site -> (SNOMED secondary disorder, display, ICD-10-CM, display)
METASTASIS = {
    "lung": (
        "94391008",
        "Secondary malignant neoplasm of lung",
        "C78.00",
        "Secondary malignant neoplasm of unspecified lung",
    ),
    "bone": ("94222008", "Secondary malignant neoplasm of bone", "C79.51", "Secondary malignant neoplasm of bone"),
    "liver": (
        "94381002",
        "Secondary malignant neoplasm of liver",
        "C78.7",
        "Secondary malignant neoplasm of liver and intrahepatic bile duct",
    ),
    "brain": ("94225005", "Secondary malignant neoplasm of brain", "C79.31", "Secondary malignant neoplasm of brain"),
    "pleura": ("94493005", "Secondary malignant neoplasm of pleura", "C78.2", "Secondary malignant neoplasm of pleura"),
    "adrenal": (
        "94161006",
        "Secondary malignant neoplasm of adrenal gland",
        "C79.70",
        "Secondary malignant neoplasm of unspecified adrenal gland",
    ),
}
ICD10_DISPLAY = {
    "C46.0": "Kaposi's sarcoma of skin",
    "C48.0": "Malignant neoplasm of retroperitoneum",
    "C49.0": "Malignant neoplasm of connective and soft tissue of head, face and neck",
    "C49.21": "Malignant neoplasm of connective and soft tissue of right lower limb, including hip",
    "C49.22": "Malignant neoplasm of connective and soft tissue of left lower limb, including hip",
    "C49.6": "Malignant neoplasm of connective and soft tissue of trunk, unspecified",
    "C49.A2": "Gastrointestinal stromal tumor of stomach",
    "C49.A3": "Gastrointestinal stromal tumor of small intestine",
    "C77.2": "Secondary and unspecified malignant neoplasm of intra-abdominal lymph nodes",
    "C77.3": "Secondary and unspecified malignant neoplasm of axilla and upper limb lymph nodes",
    "C77.4": "Secondary and unspecified malignant neoplasm of inguinal and lower limb lymph nodes",
    "D48.1": "Neoplasm of uncertain behavior of connective and other soft tissue",
    "Z94.0": "Kidney transplant status",
    "Z33.1": "Pregnant state, incidental",
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
    "uterus": ("35039007", "Uterine structure (body structure)"),
    "thigh": ("68367000", "Thigh structure (body structure)"),
    "liver": ("10200004", "Liver structure (body structure)"),
}
LATERALITY = {"left": ("7771000", "Left (qualifier value)"), "right": ("24028007", "Right (qualifier value)")}
IMAGING_RESULT: dict[str, tuple[str, str] | str] = {  # a SNOMED value, or a result in words only
    "negative": ("260385009", "Negative (qualifier value)"),
    "indeterminate": "Two 4 mm pulmonary nodules, indeterminate",
}
INTENT = {
    "curative": ("373808002", "Curative - procedure intent (qualifier value)"),
    "palliative": ("363676003", "Palliative - procedure intent (qualifier value)"),
}
STOP_REASON = {
    "no-response": ("266721009", "Absent response to treatment (situation)"),
    "not-tolerated": ("407563006", "Treatment not tolerated (situation)"),
}
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
    "trabectedin": (None, "trabectedin (Yondelis)"),  # no RXCUI verified: text only
    "epirubicin": ("3995", "epirubicin"),
    "eribulin": ("1045453", "eribulin"),
    "sirolimus": ("35302", "sirolimus"),
    "filgrastim": ("68442", "filgrastim"),
    "mesna": ("44", "mesna"),
}
ROUTE = {
    "iv": ("47625008", "Intravenous route (qualifier value)"),
    "oral": ("26643006", "Oral route (qualifier value)"),
}
ORAL = {"pazopanib", "imatinib", "sirolimus"}
VERIFICATION = {
    "confirmed": "Confirmed",
    "provisional": "Provisional",
    "differential": "Differential",
    "unconfirmed": "Unconfirmed",
    "refuted": "Refuted",
    "entered-in-error": "Entered in Error",
}

STS = {
    "lms": ("443719001", "Leiomyosarcoma (disorder)"),
    "lps": ("254829001", "Liposarcoma (disorder)"),
    "ddlps": ("404072004", "Dedifferentiated liposarcoma (disorder)"),
    "mlps": ("404069006", "Myxoid liposarcoma (disorder)"),
    "ups": ("443439001", "Undifferentiated pleomorphic sarcoma (disorder)"),
    "synovial": ("302851001", "Synovial sarcoma (disorder)"),
    "angio": ("403977003", "Angiosarcoma (disorder)"),
    "dfsp": ("276799004", "Dermatofibrosarcoma protuberans (disorder)"),
    "asps": ("404056007", "Alveolar soft part sarcoma (disorder)"),
    "mpnst": ("404037002", "Malignant peripheral nerve sheath tumor (disorder)"),
    "myxofibro": ("253042009", "Myxofibrosarcoma (disorder)"),
    "epithelioid": ("782827000", "Epithelioid sarcoma (disorder)"),
    "fibro": ("443250000", "Fibrosarcoma (disorder)"),
    "clear-cell": ("402561003", "Clear cell sarcoma (disorder)"),
    "sts": ("424952003", "Soft tissue sarcoma (disorder)"),
}
SCT_DISORDER = {
    "nsclc": ("254637007", "Non-small cell lung cancer (disorder)"),
    "breast-left": ("353431000119107", "Primary malignant neoplasm of female left breast (disorder)"),
    "gist": ("420120006", "Gastrointestinal stromal tumor (disorder)"),
    "erms": ("404051002", "Embryonal rhabdomyosarcoma (disorder)"),
    "secondary": ("128462008", "Secondary malignant neoplastic disease (disorder)"),
}
ICDO = {
    "lms": ("8890/3", "Leiomyosarcoma, NOS"),
    "wdlps": ("8851/3", "Liposarcoma, well differentiated"),
    "mlps": ("8852/3", "Myxoid liposarcoma"),
    "ddlps": ("8858/3", "Dedifferentiated liposarcoma"),
    "ups-8802": ("8802/3", "Giant cell sarcoma (pleomorphic cell sarcoma)"),
    "ups-8830": ("8830/3", "Malignant fibrous histiocytoma (undifferentiated pleomorphic sarcoma)"),
    "ups-8805": ("8805/3", "Undifferentiated sarcoma"),
    "synovial": ("9040/3", "Synovial sarcoma, NOS"),
    "synovial-spindle": ("9041/3", "Synovial sarcoma, spindle cell"),
    "synovial-biphasic": ("9043/3", "Synovial sarcoma, biphasic"),
    "angio": ("9120/3", "Hemangiosarcoma"),
    "dfsp": ("8832/3", "Dermatofibrosarcoma, NOS"),
    "dfsp-1": ("8832/1", "Dermatofibrosarcoma protuberans"),
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
    "breast-ductal": ("8500/3", "Infiltrating duct carcinoma, NOS"),
}
VITALS = [
    ("8867-4", "Heart rate", "/min", "{beats}/min", 72, 8, 0),
    ("8480-6", "Systolic blood pressure", "mm[Hg]", "mm[Hg]", 128, 9, 0),
    ("8462-4", "Diastolic blood pressure", "mm[Hg]", "mm[Hg]", 79, 6, 0),
    ("29463-7", "Body weight", "kg", "kg", 81.0, 1.5, 1),
]
LABS = [
    ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 13.4, 0.8, 1),
    ("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", 6.8, 1.2, 1),
    ("777-3", "Platelets [#/volume] in Blood by Automated count", "10*3/uL", 245, 35, 0),
    ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.95, 0.1, 2),
    ("1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "U/L", 24, 6, 0),
]


# what an Observation or Procedure is: kind -> (system, code, display)
CODE = {
    "grade": (NCIT, "C18000", "Histologic Grade"),
    "grade-loinc": (LOINC, "21858-6", "Grade Cancer"),
    "size": (LOINC, "21889-1", "Size Tumor"),
    "size-longest": (LOINC, "33728-7", "Size.maximum dimension in Tumor"),
    "ecog": (LOINC, "89247-1", "ECOG Performance Status score"),
    "karnofsky": (LOINC, "89243-0", "Karnofsky Performance Status score"),
    "disease-status": (LOINC, "97509-4", "Cancer Disease Progression"),
    "histology": (LOINC, "31206-6", None),
    "residual-tumour": (LOINC, "84892-9", None),
    "excision": (SCT, "65801008", "Excision (procedure)"),
    "biopsy": (SCT, "86273004", "Biopsy (procedure)"),
    "radiotherapy": (SCT, "108290001", "Radiation oncology AND/OR radiotherapy (procedure)"),
    "recurrence": (SCT, "25173007", "Recurrent tumor"),
}
RESIDUAL_TUMOUR = {"R0": "258254000", "R1": "278271003", "R2": "278272005"}


def code_of(kind: str) -> Coding:
    """The Coding of a ``CODE`` entry."""
    return coding(*CODE[kind])


def named_code(name: str) -> Coding:
    """``sts:lms``, ``sct:gist`` or ``icd:C49.22`` as a Coding."""
    table, _, key = name.partition(":")
    if table == "icd" and key in ICD10_DISPLAY:
        return coding(ICD10, key, ICD10_DISPLAY[key])
    if key in {"sts": STS, "sct": SCT_DISORDER}.get(table, {}):
        return coding(SCT, *(STS if table == "sts" else SCT_DISORDER)[key])
    raise KeyError(name)


def cycle_dates(first: str, days: int, count: int) -> list[str]:
    """``count`` dates ``days`` apart from ``first``."""
    start = date.fromisoformat(first)
    return [(start + timedelta(days=days * i)).isoformat() for i in range(count)]


# --- the builder ------------------------------------------------------------------------------


@dataclass
class Chart:
    """One synthetic patient; each step adds mCODE-shaped resources and returns what it made."""

    slug: str
    resources: list[Resource] = field(default_factory=list)

    def _add(self, resource_type: str, suffix: str | None, body: Resource, profile: str | None = None) -> Resource:
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

    def patient(self, given: str, family: str, gender: str, birth: str, deceased: bool | str | None = None) -> Resource:
        body: Resource = {
            "identifier": [{"system": "http://example.org/sarcoma-cds/mrn", "value": f"MRN-{self.slug}"}],
            "name": [{"use": "official", "family": family, "given": [given]}],
            "gender": gender,
            "birthDate": birth,
        }
        if isinstance(deceased, bool):
            body["deceasedBoolean"] = deceased
        elif deceased is not None:
            body["deceasedDateTime"] = deceased
        return self._add("Patient", None, body, "mcode-cancer-patient")

    def primary(
        self,
        codes: list[str],
        onset: str | None = None,
        histology: str | None = None,
        site: str | None = None,
        laterality: str | None = None,
        site_text: str | None = None,
        clinical: str = "active",
        text: str | None = None,
        verification: str = "confirmed",
        note: str | None = None,
        noted: str | None = None,
        recorded: str | None = None,
        suffix: str = "primary",
    ) -> Resource:
        if not (codes or text):
            raise ValueError("a primary needs 'codes' or 'text'")
        if onset is None and recorded is None:
            raise ValueError("a primary needs 'onset' or 'recorded'")
        body: Resource = {}
        if histology:
            body["extension"] = [
                {
                    "url": HISTOLOGY_EXTENSION,
                    "valueCodeableConcept": concept(coding(ICDO3, *ICDO[histology])),
                }
            ]
        body |= {
            "clinicalStatus": self._clinical(clinical),
            "verificationStatus": self._verification(verification),
            "category": [self._problem_list()],
            "code": concept(*map(named_code, codes), text=text),
        }
        if site or site_text:
            place = concept(coding(SCT, *BODY_SITE[site]), text=site_text) if site else concept(text=site_text)
            if laterality:
                place["extension"] = [
                    {
                        "url": MCODE + "mcode-laterality-qualifier",
                        "valueCodeableConcept": concept(coding(SCT, *LATERALITY[laterality])),
                    }
                ]
            body["bodySite"] = [place]
        body["subject"] = self.subject
        if onset:
            body["onsetDateTime"] = onset
        body["recordedDate"] = recorded or onset
        body |= self._note(note, noted or recorded or onset)
        return self._add("Condition", suffix, body, "mcode-primary-cancer-condition")

    def condition(
        self,
        tag: str,
        onset: str,
        text: str,
        codes: list[str] | None = None,
        clinical: str = "active",
        note: str | None = None,
    ) -> Resource:
        """Any other Condition (a transplant, a second disease), id ``condition-<tag>``."""
        return self._add(
            "Condition",
            f"condition-{tag}",
            {
                "clinicalStatus": self._clinical(clinical),
                "verificationStatus": self._verification("confirmed"),
                "category": [self._problem_list()],
                "code": concept(*map(named_code, codes or []), text=text),
                "subject": self.subject,
                "onsetDateTime": onset,
                "recordedDate": onset,
            }
            | self._note(note, onset),
        )

    def metastasis(
        self,
        site: str,
        onset: str,
        icd10: bool = False,
        verification: str = "confirmed",
        note: str | None = None,
        noted: str | None = None,
    ) -> Resource:
        sct, sct_display, icd, icd_display = METASTASIS[site]
        codes = [coding(SCT, sct, sct_display)]
        if icd10:
            codes.append(coding(ICD10, icd, icd_display))
        return self._secondary(f"met-{site}", codes, onset, verification, self._note(note, noted or onset))

    def nodes(self, icd10: str, onset: str) -> Resource:
        return self._secondary("met-regional-nodes", [coding(ICD10, icd10, ICD10_DISPLAY[icd10])], onset)

    def recurrence(self, onset: str, text: str, note: str | None = None, noted: str | None = None) -> Resource:
        """A local recurrence of the primary, at its site: a Condition coded as a recurrent
        tumour, related to the primary."""
        body: Resource = {
            "extension": [{"url": CONDITION_RELATED, "valueReference": self.primary_ref}],
            "clinicalStatus": self._clinical("active"),
            "verificationStatus": self._verification("confirmed"),
            "category": [self._problem_list()],
            "code": concept(code_of("recurrence"), text=text),
        }
        site = self._primary().get("bodySite")
        if site:
            body["bodySite"] = site
        body |= {"subject": self.subject, "onsetDateTime": onset, "recordedDate": onset}
        return self._add("Condition", "local-recurrence", body | self._note(note, noted or onset))

    def _secondary(
        self,
        suffix: str,
        codes: list[Coding],
        onset: str,
        verification: str = "confirmed",
        extra: Resource | None = None,
    ) -> Resource:
        return self._add(
            "Condition",
            suffix,
            {
                "extension": [
                    {
                        "url": CONDITION_RELATED,
                        "valueReference": self.primary_ref,
                    }
                ],
                "clinicalStatus": self._clinical("active"),
                "verificationStatus": self._verification(verification),
                "category": [self._problem_list()],
                "code": concept(*codes),
                "subject": self.subject,
                "onsetDateTime": onset,
                "recordedDate": onset,
            }
            | (extra or {}),
            "mcode-secondary-cancer-condition",
        )

    @staticmethod
    def _clinical(status: str) -> dict[str, Any]:
        return concept(coding(CLINICAL_STATUS, status, status.capitalize()))

    @staticmethod
    def _verification(status: str) -> dict[str, Any]:
        return concept(coding(VERIFICATION_STATUS, status, VERIFICATION[status]))

    @staticmethod
    def _note(text: str | None, when: str | None) -> Resource:
        """``note`` as a one-Annotation list dated ``when``, or nothing."""
        if not text:
            return {}
        return {"note": [{"time": when, "text": text} if when else {"text": text}]}

    @staticmethod
    def _problem_list() -> dict[str, Any]:
        return concept(coding(CONDITION_CATEGORY, "problem-list-item", "Problem List Item"))

    # observations

    def observation(
        self, suffix: str, code: dict[str, Any], when: str, category: str, profile: str | None = None, **fields: Any
    ) -> Resource:
        body = {
            "status": "final",
            "category": [concept(coding(OBS_CATEGORY, category))],
            "code": code,
            "subject": self.subject,
            "effectiveDateTime": when,
        }
        return self._add("Observation", suffix, body | fields, profile)

    def tnm(
        self,
        kind: str,
        when: str,
        t: str | None = None,
        n: str | None = None,
        m: str | None = None,
        style: str = "snomed",
        tag: str = "dx",
    ) -> list[Resource]:
        out = []
        for axis, value in (("T", t), ("N", n), ("M", m)):
            if value is None:
                continue
            prefix = "c" if axis == "M" and value == "M0" else kind
            sct, sct_display, loinc, loinc_display = TNM_CODE[(prefix, axis)]
            key = prefix + value
            code = (
                concept(coding(SCT, sct, sct_display))
                if style == "snomed"
                else concept(coding(LOINC, loinc, loinc_display))
            )
            if style == "ajcc":
                val = concept(coding(AJCC, key, key))
            else:
                val = concept(
                    coding(SCT, TNM_VALUE_SCT[key], f"American Joint Committee on Cancer {key} (qualifier value)")
                )
            out.append(
                self.observation(
                    f"tnm-{tag}-{axis.lower()}",
                    code,
                    when,
                    "laboratory" if prefix == "p" else "imaging",
                    TNM_PROFILE[axis],
                    valueCodeableConcept=val,
                    method=concept(AJCC8),
                    focus=[self.primary_ref],
                )
            )
        return out

    def stage_group(
        self,
        kind: str,
        stage: str,
        when: str,
        members: list[Resource] | None = None,
        style: str = "snomed",
        tag: str = "dx",
        method: str = "ajcc8",
    ) -> Resource:
        sct, sct_display, loinc, loinc_display = GROUP_CODE[kind]
        if style == "snomed":
            code = concept(coding(SCT, sct, sct_display))
            val = concept(self._stage_sct(stage))
        else:
            code = concept(coding(LOINC, loinc, loinc_display))
            val = concept(coding(AJCC, STAGE_AJCC[stage], stage))
        extra: dict[str, Any] = {"hasMember": [ref(r) for r in members]} if members else {}
        return self.observation(
            f"tnm-{tag}-stage-group",
            code,
            when,
            "laboratory" if kind == "p" else "imaging",
            "mcode-tnm-stage-group",
            valueCodeableConcept=val,
            method=concept(STAGING_METHOD[method]),
            focus=[self.primary_ref],
            **extra,
        )

    @staticmethod
    def _stage_sct(stage: str) -> Coding:
        return coding(SCT, STAGE_SCT[stage], f"American Joint Committee on Cancer stage {stage} (qualifier value)")

    def record_stage(self, group: Resource | None = None, stage: str | None = None, text: str | None = None) -> None:
        if (stage is None) == (text is None):
            raise ValueError("record_stage needs exactly one of 'stage' and 'text'")
        summary = concept(self._stage_sct(stage)) if stage else concept(text=text)
        entry: dict[str, Any] = {"summary": summary}
        if group:
            entry["assessment"] = [ref(group)]
        self._primary().setdefault("stage", []).append(entry)

    def grade(self, value: str, when: str, style: str = "mcode") -> Resource:
        if style == "mcode":
            code = concept(code_of("grade"))
            val = concept(coding(SCT, *GRADE_MCODE[value]))
        else:
            code = concept(code_of("grade-loinc"))
            val = concept(coding(SCT, *GRADE_SCT[value]))
        return self.observation(
            "grade",
            code,
            when,
            "laboratory",
            "mcode-histologic-grade",
            valueCodeableConcept=val,
            method=concept(text="FNCLCC"),
            focus=[self.primary_ref],
        )

    def size(
        self,
        value: float,
        when: str,
        unit: str = "cm",
        focus: Resource | None = None,
        tag: str = "",
        note: str | None = None,
    ) -> Resource:
        quantity = {"value": value, "unit": unit, "system": UCUM, "code": unit}
        return self.observation(
            f"tumour-size{tag}",
            concept(code_of("size")),
            when,
            "laboratory",
            "mcode-tumor-size",
            focus=[ref(focus or self._tumour())],
            component=[
                {
                    "code": concept(code_of("size-longest")),
                    "valueQuantity": quantity,
                }
            ],
            **self._note(note, when),
        )

    def _tumour(self) -> Resource:
        """The primary's tumour BodyStructure, made by the first size step that needs it."""
        made = next((r for r in self.resources if r["id"] == f"{self.slug}-tumour"), None)
        if made:
            return made
        body: Resource = {
            "identifier": [{"system": "http://example.org/sarcoma-cds/tumour", "value": f"{self.slug}-tumour-1"}]
        }
        site = self._primary().get("bodySite")
        if site:
            body["location"] = {k: v for k, v in site[0].items() if k != "extension"}
        return self._add("BodyStructure", "tumour", body | {"patient": self.subject}, "mcode-tumor")

    def ecog(self, score: int, when: str, tag: str = "") -> Resource:
        return self.observation(
            f"ecog{tag}",
            concept(code_of("ecog")),
            when,
            "survey",
            "mcode-ecog-performance-status",
            valueInteger=score,
            interpretation=[concept(coding(LOINC, *ECOG_ANSWER[score]))],
            method=concept(coding(SCT, "5880005", "Clinical examination")),
        )

    def karnofsky(self, score: int, when: str, meaning: str | None = None, tag: str = "") -> Resource:
        return self.observation(
            f"karnofsky{tag}",
            concept(code_of("karnofsky")),
            when,
            "survey",
            "mcode-karnofsky-performance-status",
            valueInteger=score,
            interpretation=[concept(text=meaning or KARNOFSKY[score])],
        )

    def progress_note(self, text: str, when: str, tag: str = "") -> Resource:
        """A clinician's progress note recorded as an Observation (LOINC 11506-3), its text as valueString."""
        return self.observation(
            f"progress-note{tag}",
            concept(coding(LOINC, "11506-3", "Progress note")),
            when,
            "exam",
            valueString=text,
        )

    def status(self, value: str, when: str, note: str, number: int | None = None) -> Resource:
        return self.observation(
            f"disease-status-{number}" if number else "disease-status",
            concept(code_of("disease-status")),
            when,
            "exam",
            "mcode-cancer-disease-status",
            extension=[
                {
                    "url": MCODE + "mcode-evidence-type",
                    "valueCodeableConcept": concept(coding(SCT, "363679005", "Imaging (procedure)")),
                }
            ],
            valueCodeableConcept=concept(coding(SCT, *DISEASE_STATUS[value])),
            focus=[self.primary_ref],
            note=[{"text": note}],
        )

    def imaging(self, when: str, result: str, note: str | None = None) -> Resource:
        return self.observation(
            "ct-chest",
            concept(coding(LOINC, "24627-2", "CT Chest")),
            when,
            "imaging",
            valueCodeableConcept=_imaging_value(IMAGING_RESULT[result]),
            focus=[self.primary_ref],
            **({"note": [{"text": note}]} if note else {}),
        )

    def performance_visits(self, first: str, every: int, phases: list[dict[str, int]]) -> None:
        if any(set(phase) != {"visits", "ecog", "karnofsky"} for phase in phases):
            raise ValueError("every phase needs exactly visits, ecog and karnofsky")
        visits = [(p["ecog"], p["karnofsky"]) for p in phases for _ in range(p["visits"])]
        for i, (when, (ecog, karnofsky)) in enumerate(
            zip(cycle_dates(first, every, len(visits)), visits, strict=True), 1
        ):
            self.ecog(ecog, when, tag=f"-{i:02d}")
            self.karnofsky(karnofsky, when, tag=f"-{i:02d}")

    def routine_vitals(self, first: str, weeks: int, seed: int) -> None:
        rng = random.Random(seed)
        for week, when in enumerate(cycle_dates(first, 7, weeks), 1):
            for code, display, unit, ucum, mean, sd, digits in VITALS:
                self._measured(
                    f"vs-{code}-w{week:03d}",
                    code,
                    display,
                    when,
                    "vital-signs",
                    round(rng.gauss(mean, sd), digits),
                    unit,
                    ucum,
                )
            if week % 2:
                continue
            for code, display, unit, mean, sd, digits in LABS:
                self._measured(
                    f"lab-{code}-w{week:03d}",
                    code,
                    display,
                    when,
                    "laboratory",
                    round(rng.gauss(mean, sd), digits),
                    unit,
                    unit,
                )

    def _measured(
        self, suffix: str, code: str, display: str, when: str, category: str, value: float, unit: str, ucum: str
    ) -> Resource:
        return self.observation(
            suffix,
            concept(coding(LOINC, code, display)),
            when,
            category,
            valueQuantity={"value": value, "unit": unit, "system": UCUM, "code": ucum},
        )

    # procedures

    def surgery(
        self, when: str, text: str, intent: str = "curative", note: str | None = None, tag: str = ""
    ) -> Resource:
        return self._add(
            "Procedure",
            f"surgery{tag}",
            {
                "extension": [self._intent(intent)],
                "status": "completed",
                "category": concept(coding(SCT, "387713003", "Surgical procedure (procedure)")),
                "code": concept(code_of("excision"), text=text),
                "subject": self.subject,
                "performedDateTime": when,
                "reasonReference": [self.primary_ref],
            }
            | self._note(note, when),
            "mcode-cancer-related-surgical-procedure",
        )

    def biopsy(self, when: str, text: str, note: str | None = None) -> Resource:
        """A diagnostic biopsy: tissue taken, the tumour left in place."""
        return self._add(
            "Procedure",
            "biopsy",
            {
                "status": "completed",
                "category": concept(coding(SCT, "103693007", "Diagnostic procedure (procedure)")),
                "code": concept(code_of("biopsy"), text=text),
                "subject": self.subject,
                "performedDateTime": when,
                "reasonReference": [self.primary_ref],
            }
            | self._note(note, when),
        )

    def radiotherapy(self, start: str, end: str, text: str) -> Resource:
        return self._add(
            "Procedure",
            "radiotherapy",
            {
                "extension": [self._intent("curative")],
                "status": "completed",
                "code": concept(code_of("radiotherapy"), text=text),
                "subject": self.subject,
                "performedPeriod": {"start": start, "end": end},
                "reasonReference": [self.primary_ref],
            },
        )

    # medications: one resource per drug and cycle (administration) or per course. A medication
    # is a ``DRUG`` key (``drug``), or free ``text`` (with ``code``: an RxNorm code shown as that
    # text); ``treats`` names the Condition it is given for (default the primary); ``intent: none``
    # marks a medication that is not cancer-related (no mCODE profile, no intent).

    @staticmethod
    def _intent(intent: str) -> dict[str, Any]:
        return {"url": MCODE + "mcode-procedure-intent", "valueCodeableConcept": concept(coding(SCT, *INTENT[intent]))}

    @staticmethod
    def _drug(name: str) -> dict[str, Any]:
        code, display = DRUG[name]
        return concept(coding(RXNORM, code, display)) if code else concept(text=display)

    @staticmethod
    def _route(drug: str) -> dict[str, Any]:
        return concept(coding(SCT, *ROUTE["oral" if drug in ORAL else "iv"]))

    def _medication(
        self, drug: str | None, text: str | None, code: str | None, tag: str
    ) -> tuple[str, dict[str, Any], dict[str, Any] | None]:
        """The id name, the medicationCodeableConcept and the route (unknown for free text)."""
        if drug:
            short = drug.removesuffix("-scd")
            return tag or short, self._drug(drug), self._route(short)
        if not text:
            raise ValueError("a medication needs 'drug' or 'text'")
        name = tag or re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:24].strip("-")
        medication = concept(coding(RXNORM, code, text)) if code else concept(text=text)
        return name, medication, None

    def _reason(self, treats: Resource | None) -> dict[str, Any]:
        return {"reasonReference": [ref(treats) if treats else self.primary_ref]}

    def administered(
        self,
        first: str,
        cycles: int,
        every: int,
        drug: str | None = None,
        intent: str = "palliative",
        text: str | None = None,
        code: str | None = None,
        treats: Resource | None = None,
        tag: str = "",
    ) -> None:
        name, medication, route = self._medication(drug, text, code, tag)
        for i, when in enumerate(cycle_dates(first, every, cycles), 1):
            self._add(
                "MedicationAdministration",
                f"madm-{name}-c{i}",
                {
                    "extension": [self._intent(intent)],
                    "status": "completed",
                    "medicationCodeableConcept": medication,
                    "subject": self.subject,
                    "effectiveDateTime": when,
                }
                | self._reason(treats)
                | ({"dosage": {"route": route}} if route else {}),
                "mcode-cancer-related-medication-administration",
            )

    def _course(
        self,
        resource_type: str,
        start: str,
        status: str,
        drug: str | None = None,
        end: str | None = None,
        reason: str | None = None,
        intent: str = "palliative",
        text: str | None = None,
        code: str | None = None,
        treats: Resource | None = None,
        tag: str = "",
    ) -> Resource:
        """A course of a drug as a MedicationRequest (``requested``) or a MedicationStatement
        (``stated``, mCODE STU1 profile and extension names): the two steps share their keys."""
        name, medication, route = self._medication(drug, text, code, tag)
        period = {"start": start, **({"end": end} if end else {})}
        stop = concept(coding(SCT, *STOP_REASON[reason])) if reason else None
        cancer = intent != "none"
        if resource_type == "MedicationRequest":
            body = self._request(intent if cancer else None, status, stop, medication, start)
            suffix, profile = f"mreq-{name}", "mcode-cancer-related-medication-request"
        else:
            body = self._statement(intent if cancer else None, status, stop, medication, period, end or start)
            suffix, profile = f"mstmt-{name}", "mcode-cancer-related-medication-statement"
        body |= self._reason(treats)
        if resource_type == "MedicationRequest":
            body["dosageInstruction"] = [
                {"timing": {"repeat": {"boundsPeriod": period}}} | ({"route": route} if route else {})
            ]
        elif route:
            body["dosage"] = [{"route": route}]
        return self._add(resource_type, suffix, body, profile if cancer else None)

    requested = partialmethod(_course, "MedicationRequest")
    stated = partialmethod(_course, "MedicationStatement")

    def _request(
        self, intent: str | None, status: str, stop: Resource | None, medication: Resource, start: str
    ) -> Resource:
        body: Resource = {"extension": [self._intent(intent)]} if intent else {}
        body["status"] = status
        if stop:
            body["statusReason"] = stop
        course = {"intent": "order", "medicationCodeableConcept": medication, "subject": self.subject}
        return body | course | {"authoredOn": start}

    def _statement(
        self,
        intent: str | None,
        status: str,
        stop: Resource | None,
        medication: Resource,
        period: Resource,
        asserted: str,
    ) -> Resource:
        body: Resource = {}
        if intent:
            treatment = concept(coding(SCT, INTENT[intent][0]))
            body["extension"] = [{"url": MCODE + "mcode-treatment-intent", "valueCodeableConcept": treatment}]
        body["status"] = status
        if stop:
            body["statusReason"] = [stop]
        course = {"medicationCodeableConcept": medication, "subject": self.subject, "effectivePeriod": period}
        return body | course | {"dateAsserted": asserted}

    def renewed(
        self,
        first: str,
        every: int,
        count: int,
        drug: str | None = None,
        text: str | None = None,
        code: str | None = None,
        treats: Resource | None = None,
        intent: str = "none",
    ) -> None:
        """A prescription renewed every ``every`` days: one MedicationRequest per renewal, all
        completed but the last, which is active."""
        name = self._medication(drug, text, code, "")[0]
        dates = cycle_dates(first, every, count + 1)
        for i, (start, end) in enumerate(zip(dates, dates[1:], strict=False), 1):
            self.requested(
                start,
                "active" if i == count else "completed",
                drug=drug,
                end=end,
                intent=intent,
                text=text,
                code=code,
                treats=treats,
                tag=f"{name}-r{i:02d}",
            )

    def bundle(self) -> Resource:
        return {
            "resourceType": "Bundle",
            "id": self.slug,
            "type": "transaction",
            "entry": [
                {
                    "fullUrl": f"{r['resourceType']}/{r['id']}",
                    "resource": r,
                    "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
                }
                for r in self.resources
            ],
        }


def _imaging_value(result: tuple[str, str] | str) -> dict[str, Any]:
    return concept(text=result) if isinstance(result, str) else concept(coding(SCT, *result))
