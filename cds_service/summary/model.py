"""The patient summary: what an oncologist would know about the patient, with provenance.

Every fact carries the FHIR references it came from (``Observation/tnm-m``) so a card can say
why it fired; every gap or contradiction is a typed ``Finding``. The knowledge base (``cards/``)
matches conditions against ``PatientSummary.facts()``, whose keys are the only condition keys it
may use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Diagnosis(StrEnum):
    """Which guideline, if any, governs this patient's cancer (G1-G3)."""

    STS = "sts"  # adult-type soft tissue sarcoma: the STS guideline applies
    GIST = "gist"  # G1: separate guideline
    DESMOID = "desmoid"  # G3: not a sarcoma
    OUT_OF_SCOPE_SARCOMA = "out-of-scope-sarcoma"  # G2: Kaposi, Ewing, embryonal/alveolar RMS
    OTHER_CANCER = "other-cancer"  # a primary cancer that is not a sarcoma (lung, breast ...)
    NONE = "none"  # no active primary cancer recorded
    UNREADABLE = "unreadable"  # no readable primary, and a Condition on record failed validation (G7)


class Histology(StrEnum):
    LEIOMYOSARCOMA = "leiomyosarcoma"
    LIPOSARCOMA = "liposarcoma"
    UPS = "undifferentiated-pleomorphic-sarcoma"
    SYNOVIAL = "synovial-sarcoma"
    ANGIOSARCOMA = "angiosarcoma"
    DFSP = "dermatofibrosarcoma-protuberans"
    ASPS = "alveolar-soft-part-sarcoma"
    MPNST = "malignant-peripheral-nerve-sheath-tumour"
    MYXOFIBROSARCOMA = "myxofibrosarcoma"
    EPITHELIOID = "epithelioid-sarcoma"
    PLEOMORPHIC_RMS = "pleomorphic-rhabdomyosarcoma"
    FIBROSARCOMA = "fibrosarcoma"
    CLEAR_CELL = "clear-cell-sarcoma"
    SOLITARY_FIBROUS_TUMOUR = "solitary-fibrous-tumour"
    SPINDLE_CELL = "spindle-cell-sarcoma"
    SARCOMA_NOS = "sarcoma-nos"
    # Out of scope (G1-G3): recognised so that no STS card fires.
    GIST = "gist"
    DESMOID = "desmoid-fibromatosis"
    KAPOSI = "kaposi-sarcoma"
    EMBRYONAL_RMS = "embryonal-rhabdomyosarcoma"
    ALVEOLAR_RMS = "alveolar-rhabdomyosarcoma"
    EWING = "extraskeletal-ewing-sarcoma"


class SiteClass(StrEnum):
    """Primary-site class for AJCC 8 staging (clinical.md 2.6)."""

    EXTREMITY = "extremity"
    TRUNK = "trunk"
    RETROPERITONEUM = "retroperitoneum"
    HEAD_AND_NECK = "head-and-neck"
    VISCERAL = "visceral"


class StageGroup(StrEnum):
    """AJCC 8th-edition STS stage groups (trunk/extremity and retroperitoneum)."""

    IA = "IA"
    IB = "IB"
    II = "II"
    IIIA = "IIIA"
    IIIB = "IIIB"
    IV = "IV"


class Extent(StrEnum):
    """Disease extent (S17): limited = one distant organ; nodal = regional N1 only."""

    NONE = "none"
    NODAL = "nodal"
    LIMITED = "limited"
    LUNG_ONLY = "lung-only"
    DISSEMINATED = "disseminated"


class MetastasisTiming(StrEnum):
    SYNCHRONOUS = "synchronous"
    METACHRONOUS = "metachronous"


class DiseaseStatus(StrEnum):
    """mCODE CancerDiseaseStatus (LOINC 97509-4) values."""

    IMPROVED = "improved"
    STABLE = "stable"
    WORSENED = "worsened"
    UNDETERMINED = "undetermined"


FACT_KEYS: tuple[str, ...] = tuple(
    (
        "diagnosis histology histology_detail site t n m grade tumour_size_cm stage "
        "stage_recorded stage_computed extent metastatic_organs metastasis_timing "
        "disease_free_interval_months local_recurrence in_remission disease_status ecog "
        "lines_of_therapy prior_drugs prior_anthracycline progression"
    ).split()
)
"""Summary fields that ``cards/`` conditions may name."""


@dataclass(frozen=True)
class Fact(Generic[T]):
    """One inferred fact with the FHIR references it rests on.

    ``basis`` says in words how it was obtained, e.g. "computed from T2 N0 M1 G3 (trunk/extremity
    table)" or "recorded (pathological, AJCC 8th)".
    """

    value: T
    sources: tuple[str, ...] = ()
    basis: str = ""
    when: date | None = None


class FindingKind(StrEnum):
    MISSING = "missing"  # data needed for a decision are absent
    CONTRADICTION = "contradiction"  # two records disagree
    INVALID = "invalid"  # a resource failed FHIR validation or carries an unusable value
    AMBIGUOUS = "ambiguous"  # data allow more than one reading (e.g. C49.4 trunk vs visceral)
    INCOMPLETE = "incomplete"  # the EHR could not provide data the fact rests on (prefetch error)
    INFO = "info"  # notable, not a defect (e.g. a 7th-edition stage kept aside)


@dataclass(frozen=True)
class Finding:
    """A gap or contradiction in the data; about names the fact key concerned (e.g. "stage")."""

    kind: FindingKind
    about: str
    message: str
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class TherapyExposure:
    """One systemic drug the patient received (one per ingredient and course)."""

    ingredient: str  # lower-case ingredient name, e.g. "doxorubicin"
    rxnorm: str | None
    start: date | None
    end: date | None
    status: str  # FHIR status as recorded (active, completed, stopped ...)
    stop_reason: str | None
    setting: str  # "advanced" or "perioperative" (adjuvant/neoadjuvant, before any metastasis)
    line: int | None  # line of therapy for advanced disease (1-based); None if perioperative
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class PatientSummary:
    """Everything the knowledge base may match on. ``None`` means not known."""

    patient: str | None = None  # "Patient/<id>"
    diagnosis: Fact[Diagnosis] = field(default_factory=lambda: Fact(Diagnosis.NONE))
    histology: Fact[Histology] | None = None
    histology_detail: Fact[str] | None = None  # e.g. "dedifferentiated" for liposarcoma
    site: Fact[SiteClass] | None = None
    t: Fact[str] | None = None  # "T1".."T4", "TX"
    n: Fact[str] | None = None  # "N0", "N1"
    m: Fact[str] | None = None  # "M0", "M1"
    grade: Fact[str] | None = None  # "GX", "G1", "G2", "G3"
    tumour_size_cm: Fact[float] | None = None
    stage: Fact[StageGroup] | None = None  # the AJCC 8 group used for decisions
    stage_recorded: Fact[str] | None = None
    stage_computed: Fact[StageGroup] | None = None
    extent: Fact[Extent] | None = None
    metastatic_organs: Fact[tuple[str, ...]] | None = None  # ("lung",), ("lung", "liver") ...
    metastasis_timing: Fact[MetastasisTiming] | None = None
    disease_free_interval_months: Fact[float] | None = None
    local_recurrence: Fact[bool] | None = None
    in_remission: Fact[bool] | None = None  # primary recorded in remission/inactive: no evidence of disease
    disease_status: Fact[DiseaseStatus] | None = None
    ecog: Fact[int] | None = None
    therapies: tuple[TherapyExposure, ...] = ()
    lines_of_therapy: Fact[int] | None = None  # completed or ongoing lines for advanced disease
    prior_drugs: Fact[frozenset[str]] | None = None  # ingredients ever given (any setting)
    prior_anthracycline: Fact[bool] | None = None
    progression: Fact[bool] | None = None  # progression recorded on or after the latest line
    findings: tuple[Finding, ...] = ()

    def facts(self) -> dict[str, Fact[Any]]:
        """The matchable facts by condition key (``cards/`` may only name these keys)."""
        return {name: fact for name in FACT_KEYS if (fact := getattr(self, name)) is not None}
