"""What a treatment record was given for (R4): this sarcoma, another cancer, another indication, or
not stated, from its ``reasonReference`` (the Conditions of the chart) and ``reasonCode``.

A drug given for another cancer is not a line for the sarcoma (but still counts as anthracycline
exposure); a drug given for another indication (transplant, autoimmune disease) is not anticancer
treatment at all. A reason that cannot be placed is "not stated", which reads as this sarcoma: an
uncounted line is the more dangerous error (G6).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from functools import cached_property
from typing import Any

from cds_service.bundle import referenced_id
from cds_service.summary.codes import codes, match_text
from cds_service.summary.concepts import has_code, lookup, lookup_prefix, text_of
from cds_service.summary.conditions import CancerCondition, Role
from cds_service.summary.drugs import drugs
from cds_service.summary.model import Diagnosis
from cds_service.summary.site import uterine


class Purpose(StrEnum):
    SARCOMA = "this sarcoma"
    OTHER_CANCER = "another cancer"
    OTHER_INDICATION = "another indication"
    UNSTATED = "not stated"


METASTASIS, RECURRENCE = "metastasis", "recurrence"
PRECEDENCE = (Purpose.SARCOMA, Purpose.OTHER_CANCER, Purpose.OTHER_INDICATION, Purpose.UNSTATED)


def condition_ref(reference: str | None) -> str | None:
    """ "Condition/<id>" from a relative, absolute or versioned reference."""
    ident = referenced_id(reference, "Condition")
    return None if ident is None else f"Condition/{ident}"


@dataclass(frozen=True)
class Indications:
    """The chart's Conditions as treatment reasons: the index primary's own (itself, its metastases
    and recurrences; ``metastases`` names those that are metastases), other primaries' (``foreign``),
    and the text of the non-cancer ones."""

    diagnosis: Diagnosis | None = None
    own: frozenset[str] = frozenset()
    foreign: frozenset[str] = frozenset()
    non_cancer: Mapping[str, str] = field(default_factory=dict)
    metastases: frozenset[str] = frozenset()
    # other primaries of the index's kind: their drugs count in the lines, but surgery or radiotherapy
    # aimed at them is not treatment of the index primary
    siblings: frozenset[str] = frozenset()
    onset: date | None = None  # the index primary's, for treatment that names no reason
    uterine: bool = False  # the index primary is of the uterus: a hysterectomy removes it

    def elsewhere(self, focus: frozenset[str]) -> bool:
        """An Observation's ``focus`` names only other Conditions than this sarcoma's own (another
        cancer, its metastases, another disease): what it records is not about the sarcoma."""
        return bool(focus & self._others) and not focus & self.own

    @cached_property
    def _others(self) -> frozenset[str]:
        """Conditions other than this sarcoma's own (``elsewhere``), asked of every reading."""
        return self.foreign | self.non_cancer.keys()

    def purpose(self, resource: Any) -> Purpose:
        """The most telling reason a medication record gives (this sarcoma first)."""
        found = self.purposes(resource)
        return next(p for p in PRECEDENCE if p in found or p is Purpose.UNSTATED)

    def purposes(self, resource: Any) -> set[Purpose]:
        """Every reason a record gives ("fertility preservation" beside a reference to the sarcoma)."""
        found = {self._referenced(condition_ref(r.reference)) for r in _references(resource)}
        return found | {self._coded(concept) for concept in getattr(resource, "reasonCode", None) or ()}

    def _referenced(self, ref: str | None) -> Purpose:
        if ref in self.own:
            return Purpose.SARCOMA
        if ref in self.foreign:
            return Purpose.OTHER_CANCER
        if ref is not None and ref in self.non_cancer and _other_indication(self.non_cancer[ref]):
            return Purpose.OTHER_INDICATION
        return Purpose.UNSTATED

    def _coded(self, concept: Any) -> Purpose:
        cancer = cancer_of(concept)
        if cancer is None:
            return Purpose.OTHER_INDICATION if _other_indication(text_of(concept)) else Purpose.UNSTATED
        if cancer in (METASTASIS, RECURRENCE) and self.foreign and _names_another_cancer(text_of(concept)):
            return Purpose.OTHER_CANCER  # "ER+ metastatic breast cancer", with a breast cancer on record
        return Purpose.SARCOMA if cancer in (METASTASIS, RECURRENCE, self.diagnosis) else Purpose.OTHER_CANCER


def _references(resource: Any) -> Iterable[Any]:
    return [r for r in getattr(resource, "reasonReference", None) or () if r.reference]


def _names_another_cancer(text: str) -> bool:
    """Words that name a cancer other than a sarcoma ("metastatic breast cancer"), none a sarcoma."""
    conf = codes()
    sarcoma = match_text(text, conf["histology"]["text"]) or match_text(text, conf["generic_sarcoma"]["text"])
    return sarcoma is None and match_text(text, conf["other_primary"]["text"]) is not None


def _other_indication(text: str) -> bool:
    return match_text(text, drugs().other_indication_text) is not None


def coded_metastasis(concept: Any) -> bool:
    """A code (SNOMED, ICD-10 C77-C79) that names a secondary malignant neoplasm."""
    secondary = codes()["secondary"]
    return bool(lookup(concept, {"snomed": secondary["snomed"]}) or lookup_prefix(concept, "icd10", secondary["icd10"]))


def cancer_of(concept: Any) -> Diagnosis | str | None:
    """Which cancer a reason code names: a diagnosis (STS, GIST ...), ``METASTASIS`` or ``RECURRENCE``
    (of the patient's own cancer), or None when it names no cancer."""
    conf = codes()
    if coded_metastasis(concept):
        return METASTASIS
    if has_code(concept, conf["local_recurrence"]):
        return RECURRENCE
    hit = lookup(concept, conf["histology"]) or lookup_prefix(concept, "icd10", conf["histology"]["icd10"])
    if hit is not None:
        return Diagnosis(conf["histology_diagnosis"].get(hit[0]["histology"], Diagnosis.STS.value))
    generic = conf["generic_sarcoma"]
    if has_code(concept, generic) or lookup_prefix(concept, "icd10", dict.fromkeys(generic["icd10"])):
        return Diagnosis.STS
    other = conf["other_primary"]
    if has_code(concept, other) or lookup_prefix(concept, "icd10", dict.fromkeys(other["icd10"])):
        return Diagnosis.OTHER_CANCER
    return _cancer_by_text(text_of(concept))


def _cancer_by_text(text: str) -> Diagnosis | str | None:
    conf = codes()
    if match_text(text, conf["local_recurrence"]["text"]):
        return RECURRENCE
    if match_text(text, conf["secondary"]["text"]):
        return METASTASIS
    entry = match_text(text, conf["histology"]["text"])
    if entry is not None:
        return Diagnosis(conf["histology_diagnosis"].get(entry["histology"], Diagnosis.STS.value))
    if match_text(text, conf["generic_sarcoma"]["text"]):
        return Diagnosis.STS
    return Diagnosis.OTHER_CANCER if match_text(text, conf["other_primary"]["text"]) else None


def indications_of(
    index: CancerCondition | None,
    diagnosis: Diagnosis | None,
    conditions: Sequence[CancerCondition],
    chart_conditions: Iterable[Any],
) -> Indications:
    """Sort the chart's Conditions into the index primary's own, other cancers', and non-cancer ones.

    Another primary of the same kind (a second sarcoma Condition) counts as the index's own: its
    drugs must not drop out of the line count."""
    if index is None:
        return Indications()
    others = frozenset(
        c.ref
        for c in conditions
        if c.role is Role.PRIMARY and c.ref != index.ref and cancer_of(c.condition.code) not in (None, diagnosis)
    )
    own, foreign = {index.ref}, set(others)
    for c in conditions:
        theirs = c.role is Role.SECONDARY and bool(c.related & others) and index.ref not in c.related
        (foreign if theirs or c.ref in others else own).add(c.ref)
    metastases = frozenset(c.ref for c in conditions if c.role is Role.SECONDARY and c.ref in own)
    cancer = {c.ref for c in conditions}
    non_cancer = {e.ref: text_of(e.resource.code) for e in chart_conditions if e.ref not in cancer}
    siblings = frozenset(c.ref for c in conditions if c.role is Role.PRIMARY and c.ref in own and c.ref != index.ref)
    return Indications(
        diagnosis, frozenset(own), frozenset(foreign), non_cancer, metastases, siblings, index.onset, uterine(index)
    )
