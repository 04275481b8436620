"""Medication records -> uses: one per record and ingredient, with dates, status and what the drug
was given as (R4).

Reads MedicationStatement (effective[x]), MedicationRequest (boundsPeriod, else authoredOn),
MedicationAdministration (effective[x]) (mCODE) and MedicationDispense (whenHandedOver, else
whenPrepared). The drug's class (``drugs.yaml``) and the record's stated reason (``indication``), or
that of the order it carries out, decide its purpose: anticancer treatment of this sarcoma,
of another cancer, a drug for another indication, supportive care or an immunosuppressant. A
medication the tables cannot read that looks like cancer treatment leaves the line count unknown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from fhir.resources.R4B.codeableconcept import CodeableConcept

from cds_service.bundle import referenced_id
from cds_service.summary.codes import codes, match_text
from cds_service.summary.concepts import codes_of, has_code, name_of, text_of
from cds_service.summary.context import Context
from cds_service.summary.dates import first_date, period_end, period_start
from cds_service.summary.drugs import (
    DrugClass,
    Ingredient,
    drugs,
    ingredients,
    looks_oncological,
    says_high_dose,
    says_perioperative,
)
from cds_service.summary.indication import PRECEDENCE, Indications, Purpose
from cds_service.summary.model import Finding, FindingKind
from cds_service.summary.notes import Note, quote, read_notes
from cds_service.summary.parse import Entry, element
from cds_service.summary.procedures import palliative_intent

ANTICANCER = "anticancer"  # TherapyExposure.purpose of this sarcoma's anticancer drugs
OTHER_CANCER, OTHER_INDICATION = "other-cancer", "other-indication"


@dataclass(frozen=True)
class Use:
    """One record of one ingredient; ``purpose`` is ``anticancer`` (this sarcoma), ``other-cancer``,
    ``other-indication``, ``supportive`` or ``immunosuppressant``."""

    ingredient: str
    rxnorm: str | None
    start: date | None
    end: date | None
    status: str
    stop_reason: str | None
    ref: str
    purpose: str = ANTICANCER
    palliative: bool = False  # the record states a palliative intent: treatment of advanced disease
    given: bool = True  # False: an order stopped or on hold before any dose (named on the card, never counted)
    perioperative: bool = False  # the record names the course as given around surgery ("neoadjuvant")
    high_dose: bool = False  # the record names the drug as given at high dose ("HD-IFO")


def _words(resource: Any, concepts: Sequence[Any]) -> list[str]:
    """The record's own words on the drug: its name as written, dosage instructions and notes."""
    dosage = element(resource, "dosageInstruction") or element(resource, "dosage") or ()
    if not isinstance(dosage, (list, tuple)):
        dosage = (dosage,)
    return [
        *(c.text for c in concepts if c.text),
        *(d.text for d in dosage if d is not None and d.text),
        *(n.text for n in element(resource, "note") or () if n.text),
    ]


def _period(kind: str, resource: Any) -> tuple[date | None, date | None]:
    """(start, end) as recorded; no end recorded is None (a course's end then falls back to its start)."""
    if kind == "MedicationRequest":
        bounds = [
            d.timing.repeat.boundsPeriod
            for d in resource.dosageInstruction or ()
            if d.timing and d.timing.repeat and d.timing.repeat.boundsPeriod
        ]
        starts = [s for s in (period_start(b) for b in bounds) if s]
        ends = [e for e in (period_end(b) for b in bounds) if e]
        return min(starts, default=first_date(resource.authoredOn)), max(ends, default=None)
    if kind == "MedicationDispense":  # handed over: the drug is taken from then on
        return first_date(resource.whenHandedOver, resource.whenPrepared), None
    start = first_date(resource.effectiveDateTime, period_start(resource.effectivePeriod))
    return start, period_end(resource.effectivePeriod)


def _reasons(resource: Any) -> list[Any]:
    reasons = element(resource, "statusReason") or element(resource, "statusReasonCodeableConcept")
    return [r for r in (reasons if isinstance(reasons, list) else [reasons]) if r is not None]


def deaths_in_status_reasons(entries: Iterable[Entry[Any]]) -> list[tuple[str, date | None]]:
    """Medication records of any status whose status reason says the patient died, with their dates:
    coded, or in words read as a note is ("patient passed away"; not "death in family")."""
    table = codes()["death_codes"]
    found = []
    for entry in entries:
        when = _period(entry.resource.get_resource_type(), entry.resource)[0]
        reasons = _reasons(entry.resource)
        words = " ".join(c.text for c in reasons if c.text)
        said = read_notes([Note(entry.ref, when, words)]) if words else []
        if any(has_code(c, table) for c in reasons) or any(
            s.judgement == "deceased" and s.value == "true" for s in said
        ):
            found.append((entry.ref, when))
    return found


def _stop_reason(resource: Any) -> str | None:
    """The status reason's code; "no response to treatment" also where only its words say the disease
    progressed ("Disease progression on CT"), read as a note is."""
    reasons = _reasons(resource)
    coded = next((code for concept in reasons for _, code in codes_of(concept)), None)
    no_response: str = codes()["no_response_reason"]["snomed"][0]
    if coded == no_response:
        return coded
    words = " ".join(c.text for c in reasons if c.text)
    if " ".join(re.findall(r"[a-z0-9]+", words.lower())) in codes()["no_response_reason"]["words"]:
        return no_response  # "Progression", "PD": the whole reason
    said = read_notes([Note("", None, words)]) if words else []
    if any(s.judgement == "disease_status" and s.value == "worsened" for s in said):
        return no_response
    return coded


def _not_given(resource: Any) -> bool:
    """A stopped order, or one on hold, whose reason or note says no dose was given ("cancelled before
    C1D1", "C1 deferred"), or that the patient refused."""
    conf = drugs().not_given
    if resource.status not in conf.status:
        return False
    if any(has_code(concept, codes()["refusal_reason"]) for concept in _reasons(resource)):
        return True
    said = [text_of(concept) for concept in _reasons(resource)]
    said += [n.text for n in getattr(resource, "note", None) or () if n.text]
    return any(match_text(text.lower(), conf.reasons) for text in said)


def _medication(entry: Entry[Any], medications: Mapping[str, Any], ctx: Context) -> tuple[Any, ...]:
    """The concepts naming the drug: medicationCodeableConcept; or the contained/included Medication
    it references, by its code, else its ingredients (a regimen written as one Medication); or the
    reference's display name. With none of these the drug is unknown, and an unknown drug must not
    read as "no prior therapy" (G6): the therapy facts become incomplete."""
    resource = entry.resource
    if resource.medicationCodeableConcept is not None:
        return (resource.medicationCodeableConcept,)
    reference = resource.medicationReference.reference if resource.medicationReference else None
    medication = None
    if reference and reference.startswith("#"):
        contained = {c.id: c for c in resource.contained or () if c.get_resource_type() == "Medication"}
        medication = contained.get(reference[1:])
    elif (ident := referenced_id(reference, "Medication")) is not None:
        medication = medications.get(f"Medication/{ident}")
    if medication is not None:
        if medication.code is not None:
            return (medication.code,)
        items = tuple(i.itemCodeableConcept for i in medication.ingredient or () if i.itemCodeableConcept)
        if items:
            return items
    display = resource.medicationReference.display if resource.medicationReference else None
    if display:
        return (CodeableConcept(text=display),)
    ctx.incomplete(
        entry.resource.get_resource_type(),
        "a medication is referenced but neither its code nor its name is in the record; this may rest on partial data.",
        (entry.ref,),
    )
    return ()


def _is_cancer_related(resource: Any) -> bool:
    profiles = {str(p).split("|")[0] for p in (resource.meta.profile or ())} if resource.meta else set()
    return bool(profiles & drugs().cancer_related_profiles)


def _purpose(ingredient: Ingredient, reason: Purpose) -> str:
    """What the drug is in this record: the class decides, a stated reason refines it (R4)."""
    if ingredient.drug_class is DrugClass.SUPPORTIVE:
        return DrugClass.SUPPORTIVE.value
    anticancer = ingredient.drug_class.antineoplastic or (ingredient.dual_use and reason is Purpose.SARCOMA)
    if not anticancer:
        return ingredient.drug_class.value
    return {Purpose.OTHER_CANCER: OTHER_CANCER, Purpose.OTHER_INDICATION: OTHER_INDICATION}.get(reason, ANTICANCER)


def _unreadable(entry: Entry[Any], concept: Any, reasons: set[Purpose], ctx: Context) -> None:
    """A medication the tables cannot read but that looks like cancer treatment leaves the line
    count unknown (R4): the data-quality card speaks and no line-dependent statement shows. One the
    record gives (also) for another cancer or indication is no line of this sarcoma, whatever it is
    (goserelin to protect the ovaries during its chemotherapy)."""
    resource = entry.resource
    if reasons & {Purpose.OTHER_CANCER, Purpose.OTHER_INDICATION}:
        return
    reason = Purpose.SARCOMA if Purpose.SARCOMA in reasons else Purpose.UNSTATED
    if reason is Purpose.SARCOMA or _is_cancer_related(resource) or looks_oncological(concept):
        named = name_of(concept)
        what = f"a cancer medication ('{quote(named)}')" if named else "a cancer medication"
        ctx.incomplete(
            entry.resource.get_resource_type(),
            f"{what} could not be identified from its code or name: the lines of therapy are unknown.",
            (entry.ref,),
        )


def read_uses(
    entries: Iterable[Entry[Any]],
    medications: Mapping[str, Any],
    ctx: Context,
    indications: Indications = Indications(),
) -> list[Use]:
    """Exposure records per ingredient; excluded statuses dropped. A use starting after today is kept:
    it is planned, not given (``therapy.planned``), and counts toward nothing else."""
    conf = drugs()
    uses: list[Use] = []
    read = _Ingredients()
    entries = list(entries)
    orders = {e.ref: e.resource for e in entries if e.resource.get_resource_type() == "MedicationRequest"}
    for entry in entries:
        resource, kind = entry.resource, entry.resource.get_resource_type()
        if resource.status in conf.excluded_status[kind] or element(resource, "intent") in conf.excluded_intent:
            continue
        concepts = _medication(entry, medications, ctx)
        found = tuple({i.name: i for concept in concepts for i in read(concept)}.values())
        reason = _reason(resource, orders, indications)
        if not found:
            for concept in concepts:
                _unreadable(entry, concept, _reasons_given(resource, orders, indications), ctx)
            continue
        start, end = _period(kind, resource)
        if start is not None and start > ctx.today:
            ctx.add(Finding(FindingKind.INFO, "prior_drugs", "planned, not yet started; not counted", (entry.ref,)))
        stop_reason, palliative, given = _stop_reason(resource), palliative_intent(resource), not _not_given(resource)
        words = _words(resource, concepts)
        perioperative = says_perioperative(words)
        uses += [
            Use(
                i.name,
                i.rxcui,
                start,
                end,
                resource.status,
                stop_reason,
                entry.ref,
                _purpose(i, reason),
                palliative,
                given,
                perioperative,
                says_high_dose(i.name, words),
            )
            for i in found
        ]
    return _without_orders_given_elsewhere(uses)


class _Ingredients:
    """``ingredients`` of a concept, read once per concept object: records naming their drug by the
    same coding share one model (``validate.shared_elements``)."""

    def __init__(self) -> None:
        self._read: dict[int, tuple[Any, tuple[Ingredient, ...]]] = {}  # the concept is kept: its id stays its own

    def __call__(self, concept: Any) -> tuple[Ingredient, ...]:
        known = self._read.get(id(concept))
        if known is None:
            known = self._read[id(concept)] = (concept, ingredients(concept))
        return known[1]


def _reason(resource: Any, orders: Mapping[str, Any], indications: Indications) -> Purpose:
    """The reason the record states; else that of the order it carries out (a pharmacy's dispense, an
    administration or a statement naming its MedicationRequest), which is where the reason is written."""
    given = _reasons_given(resource, orders, indications)
    return next(p for p in PRECEDENCE if p in given)


def _reasons_given(resource: Any, orders: Mapping[str, Any], indications: Indications) -> set[Purpose]:
    """Every reason the record states, else those of the order it carries out."""
    own = indications.purposes(resource) - {Purpose.UNSTATED}
    if own:
        return own
    for ref in _orders_of(resource):
        if (order := orders.get(ref)) is not None and (theirs := indications.purposes(order) - {Purpose.UNSTATED}):
            return theirs
    return {Purpose.UNSTATED}


def _orders_of(resource: Any) -> list[str]:
    """``MedicationRequest/<id>`` of the orders a record names: authorizingPrescription (MedicationDispense),
    request (MedicationAdministration), basedOn (MedicationStatement)."""
    named = [
        *(element(resource, "authorizingPrescription") or ()),
        *(element(resource, "basedOn") or ()),
        *([request] if (request := element(resource, "request")) is not None else []),
    ]
    ids = (referenced_id(r.reference, "MedicationRequest") for r in named if r.reference)
    return [f"MedicationRequest/{ident}" for ident in ids if ident is not None]


def _without_orders_given_elsewhere(uses: list[Use]) -> list[Use]:
    """An order stopped before a dose, beside other records of the drug, adds nothing ("cycle 4 not
    given"); alone, it is kept to be named as not given."""
    given = {u.ingredient for u in uses if u.given}
    return [u for u in uses if u.given or u.ingredient not in given]
