"""The patient summary: what an oncologist would know about the patient, with provenance.

Every fact carries the FHIR references it came from (``Observation/tnm-m``) so a card can say
why it fired; every gap or contradiction is a typed ``Finding``. The knowledge base (``cards/``)
matches conditions against ``PatientSummary.facts()``, whose keys are the only condition keys it
may use.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
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
    PECOMA = "perivascular-epithelioid-cell-tumour"  # malignant PEComa
    EMC = "extraskeletal-myxoid-chondrosarcoma"
    SARCOMA_NOS = "sarcoma-nos"
    # Out of scope (G1-G3): recognised so that no STS card fires.
    GIST = "gist"
    DESMOID = "desmoid-fibromatosis"
    KAPOSI = "kaposi-sarcoma"
    EMBRYONAL_RMS = "embryonal-rhabdomyosarcoma"
    ALVEOLAR_RMS = "alveolar-rhabdomyosarcoma"
    EWING = "extraskeletal-ewing-sarcoma"


class SiteClass(StrEnum):
    """Primary-site class for AJCC 8 staging (AJCC 8th edition)."""

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
    DISTANT = "distant"  # distant metastasis (M1) whose organs are not all coded: limited or disseminated unknown


class MetastasisTiming(StrEnum):
    SYNCHRONOUS = "synchronous"
    METACHRONOUS = "metachronous"


class DiseaseStatus(StrEnum):
    """mCODE CancerDiseaseStatus (LOINC 97509-4) values."""

    IMPROVED = "improved"
    STABLE = "stable"
    WORSENED = "worsened"
    UNDETERMINED = "undetermined"


class Resectability(StrEnum):
    """A judgement (R2): recorded, or "in question" from a structured proxy (T3-T4, local recurrence)."""

    RESECTABLE = "resectable"
    UNRESECTABLE = "unresectable"
    AMPUTATION_ONLY = "amputation-only"  # a limb tumour resectable only by amputation
    TO_CONFIRM = "locally-advanced-to-confirm"


class Growth(StrEnum):
    """Growth rate (R2): measured or coded (growing, not growing) or in a clinician's words (rapid, slow)."""

    GROWING = "growing"
    NOT_GROWING = "not-growing"
    RAPID = "rapid"
    SLOW = "slow"


class LesionCount(StrEnum):
    """How many distant metastases the record gives (R5: "limited" counts lesions, not only organs)."""

    FEW = "few"
    MANY = "many"


class TreatmentWish(StrEnum):
    """What the patient wants, in a clinician's note (S44: patients who "do not want" anticancer treatment)."""

    SUPPORTIVE_ONLY = "supportive-care-only"  # no anticancer treatment: no chemotherapy, no curative surgery
    NO_CHEMOTHERAPY = "no-chemotherapy"
    NO_ADJUVANT = "no-adjuvant-chemotherapy"  # declines the adjuvant option only: says nothing of later lines
    ACCEPTS = "accepts-treatment"  # a later "agrees to chemotherapy" undoes an earlier refusal


class Margin(StrEnum):
    """Resection margin as a clinician wrote it (R0, R1, R2, close)."""

    R0 = "R0"
    R1 = "R1"
    R2 = "R2"
    CLOSE = "close"


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
    # what the drug was given as (R4): anticancer (this sarcoma), other-cancer, other-indication,
    # supportive or immunosuppressant; only anticancer courses make lines
    purpose: str = "anticancer"
    held: bool = False  # its latest order is on hold (a cycle deferred): still the line in progress
    stopped: bool = False  # its latest order or statement is stopped (for toxicity, say): no longer given


class ValueKind(StrEnum):
    """How a card condition may test a fact (``knowledge/conditions.py``)."""

    CODE = "code"
    NUMBER = "number"
    BOOL = "bool"
    SET = "set"


THERAPY_RECORDS = (
    "MedicationStatement",
    "MedicationRequest",
    "MedicationAdministration",
    "MedicationDispense",
    "Medication",
)


def observed(*kinds: str) -> tuple[str, ...]:
    """Record names for Observations of these kinds (``codes.yaml`` ``observation_kinds``)."""
    return tuple(f"Observation:{kind}" for kind in kinds)


@dataclass(frozen=True)
class FactSpec:
    """The one declaration of a fact: how cards name it, what values it takes, what feeds it.

    ``codes`` lists the values a card may compare it with (``None``: any lower-case words);
    ``fed_by`` names the records whose loss (unreadable, or not provided by the EHR) leaves the
    fact resting on partial data: resource types, or ``Observation:<kind>``.
    """

    label: str
    kind: ValueKind
    codes: frozenset[str] | None = None
    low: float | None = None
    high: float | None = None
    fed_by: tuple[str, ...] = ()
    quote: bool = False  # cards quote how it was obtained (a judgement from a note or a proxy, R2)


def fact(
    label: str,
    kind: ValueKind,
    *,
    codes: Iterable[str] | None = None,
    low: float | None = None,
    high: float | None = None,
    fed_by: tuple[str, ...] = (),
    default: Any = None,
    quote: bool = False,
) -> Any:
    """A ``PatientSummary`` field that cards may name, declared once."""
    spec = FactSpec(label, kind, None if codes is None else frozenset(str(c) for c in codes), low, high, fed_by, quote)
    if default is None:
        return field(default=None, metadata={"fact": spec})
    return field(default_factory=lambda: default, metadata={"fact": spec})


_CODE, _NUMBER, _BOOL, _SET = ValueKind.CODE, ValueKind.NUMBER, ValueKind.BOOL, ValueKind.SET
_CONDITION = ("Condition",)
_REPORT = ("DiagnosticReport",)
_NOT_PRIMARY = (Diagnosis.STS, Diagnosis.NONE, Diagnosis.UNREADABLE)  # never another primary beside the governing one
_STAGING = ("Condition", *observed("t", "n", "m", "grade", "size"))
_T_VALUES = "TX T0 T1 T2 T2a T2b T3 T4 T4a T4b T4c".split()


@dataclass(frozen=True)
class PatientSummary:
    """Everything the knowledge base may match on. ``None`` means not known.

    Each field declared with ``fact(...)`` is a fact cards may name; its key, value type, label and
    feeding records all come from that one declaration (``FACTS``).
    """

    patient: str | None = None  # "Patient/<id>"
    diagnosis: Fact[Diagnosis] = fact(
        "Diagnosis", _CODE, codes=Diagnosis, fed_by=_CONDITION, default=Fact(Diagnosis.NONE)
    )
    # Kinds of the other primaries beside the one that governs (e.g. a GIST beside an STS: G1 shows too)
    other_primaries: Fact[tuple[Diagnosis, ...]] | None = fact(
        "Other primary cancers", _SET, codes=[d for d in Diagnosis if d not in _NOT_PRIMARY], fed_by=_CONDITION
    )
    primary_tumours: Fact[int] | None = fact("Number of primary sarcomas", _NUMBER, low=1, fed_by=_CONDITION)
    histology: Fact[Histology] | None = fact(
        "Histology", _CODE, codes=Histology, fed_by=(*_CONDITION, *observed("histology"))
    )
    histology_detail: Fact[str] | None = fact("Histology detail", _CODE, fed_by=(*_CONDITION, *observed("histology")))
    # without a histology these guidelines name: the recorded subtype as the record names it
    histology_unnamed: Fact[str] | None = fact("Subtype these guidelines do not name", _CODE, fed_by=_CONDITION)
    site: Fact[SiteClass] | None = fact("Primary site", _CODE, codes=SiteClass, fed_by=_CONDITION)
    site_figo: Fact[bool] | None = fact("Uterine primary, staged by FIGO", _BOOL, fed_by=_CONDITION)
    t: Fact[str] | None = fact("T category", _CODE, codes=_T_VALUES, fed_by=observed("t", "size"))
    n: Fact[str] | None = fact("N category", _CODE, codes=["N0", "N1"], fed_by=observed("n"))
    m: Fact[str] | None = fact("M category", _CODE, codes=["M0", "M1"], fed_by=observed("m"))
    grade: Fact[str] | None = fact("Grade", _CODE, codes=["GX", "G1", "G2", "G3"], fed_by=observed("grade"))
    tumour_size_cm: Fact[float] | None = fact("Tumour size (cm)", _NUMBER, low=0, fed_by=observed("size"))
    stage: Fact[StageGroup] | None = fact(
        "Stage (AJCC 8)", _CODE, codes=StageGroup, fed_by=(*_STAGING, *observed("stage"))
    )
    stage_recorded: Fact[str] | None = fact("Recorded stage", _CODE, fed_by=(*_CONDITION, *observed("stage")))
    stage_computed: Fact[StageGroup] | None = fact(
        "Computed stage", _CODE, codes=StageGroup, fed_by=observed("t", "n", "m", "grade", "size")
    )
    extent: Fact[Extent] | None = fact("Extent", _CODE, codes=Extent, fed_by=(*_CONDITION, *observed("n", "m")))
    metastatic_organs: Fact[tuple[str, ...]] | None = fact("Metastatic organs", _SET, fed_by=_CONDITION)
    metastases_resolved: Fact[tuple[str, ...]] | None = fact(
        "Earlier distant metastases, resolved", _SET, fed_by=_CONDITION
    )
    metastasis_timing: Fact[MetastasisTiming] | None = fact(
        "Metastasis timing", _CODE, codes=MetastasisTiming, fed_by=_CONDITION
    )
    disease_free_interval_months: Fact[float] | None = fact(
        "Disease-free interval (months)", _NUMBER, low=0, fed_by=_CONDITION
    )
    local_recurrence: Fact[bool] | None = fact("Local recurrence", _BOOL, fed_by=(*_CONDITION, "Procedure"))
    in_remission: Fact[bool] | None = fact("In remission (no evidence of disease)", _BOOL, fed_by=_CONDITION)
    disease_status: Fact[DiseaseStatus] | None = fact(
        "Disease status",
        _CODE,
        codes=DiseaseStatus,
        fed_by=(*_CONDITION, *_REPORT, *observed("disease_status", "clinical_note")),
    )
    ecog: Fact[int] | None = fact("ECOG", _NUMBER, low=0, high=5, fed_by=observed("ecog", "karnofsky", "clinical_note"))
    performance_status_recent: Fact[bool] | None = fact(
        "Performance status recently recorded", _BOOL, fed_by=observed("ecog", "karnofsky", "clinical_note")
    )
    age: Fact[int] | None = fact("Age (years)", _NUMBER, low=0, high=150, fed_by=("Patient",))
    age_oldest: Fact[int] | None = fact("Oldest possible age (years)", _NUMBER, low=0, high=150, fed_by=("Patient",))
    deceased: Fact[bool] | None = fact("Deceased", _BOOL, fed_by=("Patient", *observed("death")))
    progression_noted: Fact[bool] | None = fact(
        "Progression written in a note, not coded",
        _BOOL,
        fed_by=(*_CONDITION, *_REPORT, *observed("disease_status", "clinical_note")),
        quote=True,
    )
    progression_disputed: Fact[bool] | None = fact(
        "A later note says no progression",
        _BOOL,
        fed_by=(*_CONDITION, *_REPORT, *observed("disease_status", "clinical_note")),
        quote=True,
    )
    metastasis_noted: Fact[bool] | None = fact(
        "Metastatic disease found in a report or note", _BOOL, fed_by=(*_CONDITION, *_REPORT), quote=True
    )
    death_noted: Fact[bool] | None = fact(
        "Death written in a note, diagnosis or order",
        _BOOL,
        fed_by=(*_CONDITION, *observed("clinical_note")),
        quote=True,
    )
    pregnant: Fact[bool] | None = fact(
        "Pregnant", _BOOL, fed_by=(*_CONDITION, *observed("pregnancy_status", "pregnancy_dating"))
    )
    therapies: tuple[TherapyExposure, ...] = ()
    lines_of_therapy: Fact[int] | None = fact(
        "Lines of therapy for advanced disease", _NUMBER, low=0, fed_by=THERAPY_RECORDS
    )
    prior_drugs: Fact[frozenset[str]] | None = fact("Prior systemic drugs", _SET, fed_by=THERAPY_RECORDS)
    prior_anthracycline: Fact[bool] | None = fact("Prior anthracycline", _BOOL, fed_by=THERAPY_RECORDS)
    anthracycline_again: Fact[bool] | None = fact(
        "Anthracycline given now after an earlier one", _BOOL, fed_by=THERAPY_RECORDS
    )
    high_dose_drugs: Fact[frozenset[str]] | None = fact("Drugs given at high dose", _SET, fed_by=THERAPY_RECORDS)
    prior_chemotherapy: Fact[bool] | None = fact("Chemotherapy given", _BOOL, fed_by=THERAPY_RECORDS)
    progression: Fact[bool] | None = fact(
        "Progression on latest line", _BOOL, fed_by=(*THERAPY_RECORDS, *observed("disease_status"))
    )
    # Lines of therapy in time (R4): the line in progress, and pretreatment that rules out first line
    current_line: Fact[int] | None = fact(
        "Current line of therapy (in progress)", _NUMBER, low=1, fed_by=(*THERAPY_RECORDS, *observed("disease_status"))
    )
    line_ongoing: Fact[bool] | None = fact(
        "Line of therapy in progress, no progression since it began",
        _BOOL,
        fed_by=(*THERAPY_RECORDS, *observed("disease_status")),
    )
    perioperative_in_progress: Fact[frozenset[str]] | None = fact(
        "Perioperative chemotherapy in progress", _SET, fed_by=THERAPY_RECORDS
    )
    planned_drugs: Fact[frozenset[str]] | None = fact(
        "Anticancer drugs ordered to start later", _SET, fed_by=THERAPY_RECORDS
    )
    drugs_not_given: Fact[frozenset[str]] | None = fact(
        "Anticancer drugs ordered and not given (stopped, or on hold, before the first dose)",
        _SET,
        fed_by=THERAPY_RECORDS,
    )
    anthracycline_pretreated: Fact[bool] | None = fact(
        "Anthracycline given for this sarcoma",
        _BOOL,
        fed_by=(*THERAPY_RECORDS, *_CONDITION),
    )
    # Phase of care from Procedures (R2)
    primary_resected: Fact[bool] | None = fact("Primary tumour resected", _BOOL, fed_by=("Procedure", *_CONDITION))
    nodes_after_resection: Fact[bool] | None = fact(
        "Regional lymph nodes involved after the resection", _BOOL, fed_by=("Procedure", *_CONDITION)
    )
    months_since_resection: Fact[float] | None = fact(
        "Months since resection of the primary", _NUMBER, low=0, fed_by=("Procedure", *_CONDITION)
    )
    resection_margin: Fact[Margin] | None = fact(
        "Resection margin (coded)",
        _CODE,
        codes=[Margin.R0, Margin.R1, Margin.R2],
        fed_by=("Procedure", *observed("margin")),
        quote=True,  # margin status is a judgement (R2), coded here: quoted with its record
    )
    radiotherapy_given: Fact[bool] | None = fact("Radiotherapy to the primary given", _BOOL, fed_by=("Procedure",))
    # Judgements the record rarely codes (R2): present only on evidence, the basis says which.
    resectability: Fact[Resectability] | None = fact(
        "Resectability",
        _CODE,
        codes=Resectability,
        fed_by=(*_CONDITION, "Procedure", *observed("t", "size")),
        quote=True,
    )
    symptomatic: Fact[bool] | None = fact(
        "Symptomatic", _BOOL, fed_by=(*_CONDITION, *observed("disease_status")), quote=True
    )
    growth: Fact[Growth] | None = fact(
        "Growth rate", _CODE, codes=Growth, fed_by=(*_CONDITION, *observed("size", "disease_status")), quote=True
    )
    response_needed: Fact[bool] | None = fact("Tumour response needed", _BOOL, fed_by=_CONDITION, quote=True)
    fit_for_surgery: Fact[bool] | None = fact("Fit for surgery", _BOOL, fed_by=(*_CONDITION, "Procedure"), quote=True)
    # judged unresectable while the disease was still local, and never resected since: true or not known
    primary_unresectable: Fact[bool] | None = fact(
        "Primary judged unresectable before it spread", _BOOL, fed_by=(*_CONDITION, "Procedure"), quote=True
    )
    treatment_wish: Fact[TreatmentWish] | None = fact(
        "Patient's wish", _CODE, codes=TreatmentWish, fed_by=(*_CONDITION, "Procedure"), quote=True
    )
    margin_from_note: Fact[Margin] | None = fact(
        "Resection margin (clinician note)", _CODE, codes=Margin, fed_by=(*_CONDITION, "Procedure"), quote=True
    )
    metastatic_lesions: Fact[LesionCount] | None = fact(
        "Number of metastases", _CODE, codes=LesionCount, fed_by=_CONDITION, quote=True
    )
    open_questions: Fact[frozenset[str]] | None = fact("Open questions for the sarcoma MDT", _SET)
    findings: tuple[Finding, ...] = ()

    def facts(self) -> dict[str, Fact[Any]]:
        """The matchable facts by condition key (``cards/`` may only name these keys)."""
        return {name: fact for name in FACTS if (fact := getattr(self, name)) is not None}


FACTS: Mapping[str, FactSpec] = {f.name: f.metadata["fact"] for f in fields(PatientSummary) if "fact" in f.metadata}
"""Every fact cards may name, in declaration order (the order cards list them in)."""

FACT_KEYS: tuple[str, ...] = tuple(FACTS)

FactValues = dict[str, "Fact[Any] | None"]
"""Facts by key as a summary step produces them; ``PatientSummary(**values)`` refuses unknown keys."""


def facts_fed_by(record: str) -> tuple[str, ...]:
    """The facts a record (a resource type, or ``Observation:<kind>``) feeds; ``Observation`` alone
    stands for Observations of every kind."""
    if record == "Observation":
        return tuple(k for k, spec in FACTS.items() if any(r.startswith("Observation:") for r in spec.fed_by))
    return tuple(k for k, spec in FACTS.items() if record in spec.fed_by)
