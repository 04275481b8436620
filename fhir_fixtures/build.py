"""Build the synthetic mCODE-shaped FHIR R4 test patients and their index.

Run ``.venv/bin/python fhir_fixtures/build.py`` to read every ``patients/<slug>.yaml`` (in the
order of ``patients/ORDER``) and rewrite ``fhir_fixtures/<slug>.json`` (one transaction Bundle per
patient, every entry a PUT to ``Type/id``) and ``index.yaml`` (what each patient must, must not
and does show, by statement id of cards/). With ``--record-shows`` it
then sends each patient's hook request (full prefetch) to the service, as of the patient's
``today``, and writes the exact statement ids its chart shows into the patient file's ``shows``
and the index: review that diff in git.

A patient file holds ``description``, ``today``, ``situation``, ``must``, ``must_not``, ``shows``
and ``resources``: a list of steps, each ``- step: {key: value, ...}``. ``must``/``must_not`` say
what the clinical rules require; ``shows`` is the whole set the chart shows. Any step may add
``as: name`` so that a later step can refer to what it made. Dates may be written bare. Every
resource id starts with the slug, so all fixtures can share one FHIR server. Codes and their
sources: cds_service/summary/codes.yaml and drugs.yaml; a code marked "R" there is used only where nothing verified
exists. Each step is a method of ``resources.Chart``, and the tables named below (``STS``,
``ICDO``, ``BODY_SITE``, ``DRUG``, ...) are in ``resources.py``, the one test-data builder.
``note`` keys make a one-Annotation ``note`` dated ``noted`` (default: the step's date).

Steps and their keys ([optional=default]):

``patient``: given, family, gender, birth, [deceased: true/false or a date].
``primary``: codes, [onset, recorded=onset, histology, site, laterality, site_text,
    clinical=active, verification=confirmed, text, note, noted, suffix=primary].
    The primary cancer Condition. ``codes`` are names from the code tables: ``sts:<STS key>``,
    ``sct:<SCT_DISORDER key>``, ``icd:<ICD-10-CM code>`` (``[]`` with ``text`` for a free-text
    diagnosis); histology an ``ICDO`` key, site a ``BODY_SITE`` key (text only with just
    ``site_text``), laterality left or right, verification a ``VERIFICATION`` key. A second
    primary takes its own ``suffix`` (id ``<slug>-<suffix>``); the other steps relate to the one
    with suffix ``primary``.
``condition``: tag, onset, text, [codes, clinical=active, note]. Any other Condition (a
    transplant, say), id ``condition-<tag>``.
``metastasis``: site, onset, [icd10=false, verification=confirmed, note, noted]. Secondary
    Condition related to the primary (condition-related, mCODE STU2+); ``site`` a ``METASTASIS``
    key; ``icd10`` adds its ICD-10-CM code.
``nodes``: icd10, onset. Regional nodal disease as a secondary condition (N1, not an organ: §3.10).
``recurrence``: onset, text, [note, noted]. A local recurrence Condition (SNOMED 25173007) at the
    primary's site, related to the primary.
``tnm``: kind (c or p), when, [t, n, m, style=snomed, tag=dx]. T, N and M category Observations
    with ids ``tnm-<tag>-t`` etc. ``style``: snomed (mCODE STU3+ codes and values), ajcc (LOINC
    codes, cancerstaging.org values as in STU1/2) or loinc-sct (LOINC codes, SNOMED values). A
    pathological stage takes cM0 (pM0 does not exist).
``stage_group``: kind, stage, when, [members, style=snomed, tag=dx, method=ajcc8 or ajcc7].
    ``members`` names a ``tnm`` step (hasMember).
``record_stage``: [group, stage, text]. Condition.stage on the primary: the summary is the SNOMED
    code of ``stage`` or else ``text``; the assessment is the named ``stage_group``.
``grade``: value (G1-G3), when, [style=mcode]. FNCLCC grade; mcode: NCIt C18000 with
    HistologicGradeVS, loinc: 21858-6 with SNOMED "Gn grade (finding)".
``size``: value, when, [unit=cm, focus, tag, note]. Tumour size, focus on the primary's tumour
    BodyStructure (as mCODE asks; one per chart, shared by serial sizes) or on the Condition
    named by ``focus`` (a metastasis, a recurrence); ``tag`` suffixes the id of a second size.
``ecog``: score (0-5), when, [tag]. ``karnofsky``: score, when, [meaning from ``KARNOFSKY``, tag].
``status``: value (``DISEASE_STATUS`` key), when, note, [number]. Disease status (LOINC 97509-4).
``imaging``: when, result (``IMAGING_RESULT`` key), [note]. CT of the chest (LOINC 24627-2) with a
    result: ``negative`` (coded: a staging scan without metastasis) or ``indeterminate`` (in words).
``surgery``: when, text, [intent=curative, note, tag]. ``biopsy``: when, text, [note].
    ``radiotherapy``: start, end, text.
``administered``: first, cycles, every (days), [drug, text, code, intent=palliative, treats, tag].
    One MedicationAdministration per cycle (mCODE STU2+ shape, as the jenny-m example).
``requested``: start, status, [drug, text, code, end, reason, intent=palliative, treats, tag].
    MedicationRequest for a course; ``reason`` (``STOP_REASON`` key) goes to statusReason.
``renewed``: first, every (days), count, [drug, text, code, treats, intent=none]. A prescription
    renewed ``count`` times: one MedicationRequest each, completed but the last (active).
``stated``: start, status, [drug, text, code, end, reason, intent=palliative, treats, tag].
    MedicationStatement for a course (mCODE STU1 profile and extension names).
    In the four medication steps the drug is a ``DRUG`` key (``drug``) or free ``text`` (with
    ``code``: an RxNorm code displayed as that text); ``treats`` names the Condition it is given
    for (reasonReference; default the primary); ``intent: none`` makes a medication that is not
    cancer-related (no mCODE profile, no intent); ``tag`` replaces the drug in the ids.
``performance_visits``: first, every (days), phases (a list of {visits, ecog, karnofsky}).
    ECOG and Karnofsky at each visit.
``routine_vitals``: first, weeks, seed. Weekly vital signs and fortnightly labs (``VITALS``,
    ``LABS``) with seeded random values.
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from fhir_fixtures.resources import Chart, Resource

HERE = Path(__file__).resolve().parent
PATIENTS = HERE / "patients"

# --- patient files ----------------------------------------------------------------------------

STEPS = (
    "patient",
    "primary",
    "condition",
    "metastasis",
    "nodes",
    "recurrence",
    "tnm",
    "stage_group",
    "record_stage",
    "grade",
    "size",
    "ecog",
    "karnofsky",
    "status",
    "progress_note",
    "imaging",
    "surgery",
    "biopsy",
    "radiotherapy",
    "administered",
    "requested",
    "renewed",
    "stated",
    "performance_visits",
    "routine_vitals",
)
REFERENCES = ("members", "group", "focus", "treats")
FIELDS = ("description", "today", "situation", "must", "must_not", "shows", "resources")
Step = tuple[str, dict[str, Any]]


class PatientFileError(ValueError):
    """A patient file that cannot be built; the message names the file and the step."""


@dataclass(frozen=True)
class Patient:
    slug: str
    path: Path
    description: str
    today: str
    situation: list[str]
    must: list[str]
    must_not: list[str]
    shows: list[str]
    steps: list[Step]


def plain(value: Any) -> Any:
    """YAML data with dates turned back into ISO strings."""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def load_patient(path: Path) -> Patient:
    try:
        data = plain(yaml.safe_load(path.read_text(encoding="utf-8")))
    except yaml.YAMLError as error:
        raise PatientFileError(f"{path}: not valid YAML ({error})") from None
    if not isinstance(data, dict):
        raise PatientFileError(f"{path}: expected a mapping with {', '.join(FIELDS)}")
    check_keys(str(path), list(data), FIELDS, FIELDS)
    if not isinstance(data["resources"], list):
        raise PatientFileError(f"{path}: 'resources' must be a list of steps")
    names: set[str] = set()
    steps = [check_step(path, number, step, names) for number, step in enumerate(data["resources"], 1)]
    return Patient(
        path.stem,
        path,
        data["description"],
        data["today"],
        data["situation"],
        data["must"],
        data["must_not"],
        data["shows"],
        steps,
    )


def check_keys(where: str, given: list[str], known: Sequence[str], required: Sequence[str]) -> None:
    unknown = [key for key in given if key not in known]
    if unknown:
        raise PatientFileError(f"{where}: unknown key '{unknown[0]}' (known: {', '.join(known)})")
    missing = [key for key in required if key not in given]
    if missing:
        raise PatientFileError(f"{where}: missing key '{missing[0]}'")


def check_step(path: Path, number: int, step: Any, names: set[str]) -> Step:
    """One ``step: {key: value}`` with a known step, known keys, every required key and
    references to names defined by earlier steps; ``names`` gains this step's ``as``."""
    if not isinstance(step, dict) or len(step) != 1:
        raise PatientFileError(f"{path}: step {number}: expected one 'step: {{key: value}}'")
    ((verb, args),) = step.items()
    where = f"{path}: step {number} ({verb})"
    if verb not in STEPS:
        raise PatientFileError(f"{path}: step {number}: unknown step '{verb}' (known: {', '.join(STEPS)})")
    if not isinstance(args, dict):
        raise PatientFileError(f"{where}: expected a mapping of keys")
    params = list(inspect.signature(getattr(Chart, verb)).parameters.values())[1:]
    check_keys(where, list(args), [p.name for p in params] + ["as"], [p.name for p in params if p.default is p.empty])
    for key in REFERENCES:
        if key in args and args[key] not in names:
            raise PatientFileError(f"{where}: '{key}: {args[key]}' names no earlier step")
    if "as" in args:
        names.add(args["as"])
    return verb, args


def build(patient: Patient) -> Resource:
    """The transaction Bundle the patient's steps make."""
    chart = Chart(patient.slug)
    made: dict[str, Any] = {}
    for number, (verb, args) in enumerate(patient.steps, 1):
        kwargs = {key: made[value] if key in REFERENCES else value for key, value in args.items() if key != "as"}
        try:
            result = getattr(chart, verb)(**kwargs)
        except KeyError as error:
            raise PatientFileError(f"{patient.path}: step {number} ({verb}): unknown value {error}") from None
        except ValueError as error:
            raise PatientFileError(f"{patient.path}: step {number} ({verb}): {error}") from None
        if "as" in args:
            made[args["as"]] = result
    return chart.bundle()


def load_patients(folder: Path = PATIENTS) -> list[Patient]:
    """Every ``<slug>.yaml`` in ``folder``, in the order of ``folder/ORDER``."""
    listing = folder / "ORDER"
    order = listing.read_text(encoding="utf-8").split()
    files = {path.stem for path in folder.glob("*.yaml")}
    if len(order) != len(set(order)):
        raise PatientFileError(f"{listing}: names a patient twice")
    if set(order) != files:
        raise PatientFileError(
            f"{listing}: names without a file {sorted(set(order) - files)}, "
            f"files not named {sorted(files - set(order))}"
        )
    return [load_patient(folder / f"{slug}.yaml") for slug in order]


def index_entry(patient: Patient) -> dict[str, Any]:
    return {
        "file": f"{patient.slug}.json",
        "patient": patient.slug,
        "description": patient.description,
        "situation": patient.situation,
        "must": patient.must,
        "must_not": sorted(set(patient.must_not)),
        "shows": patient.shows,
        "today": patient.today,
    }


def index_text(patients: list[Patient]) -> str:
    header = (
        "# Generated by fhir_fixtures/build.py from fhir_fixtures/patients/*.yaml; edit those. One entry per\n"
        "# fixture patient: must / must_not are statement ids (cards/) that the sarcoma-patient-view response\n"
        "# must / must not contain, shows the exact set it contains; situation tags show why.\n"
    )
    return header + yaml.safe_dump([index_entry(p) for p in patients], sort_keys=False, width=100, allow_unicode=True)


def bundle_text(patient: Patient) -> str:
    return json.dumps(build(patient), indent=2, ensure_ascii=False) + "\n"


def write_all(folder: Path = HERE) -> list[Patient]:
    patients = load_patients(folder / "patients")
    for patient in patients:
        (folder / f"{patient.slug}.json").write_text(bundle_text(patient), encoding="utf-8")
    (folder / "index.yaml").write_text(index_text(patients), encoding="utf-8")
    return patients


# --- recording what each chart shows ----------------------------------------------------------

HOOK_URL = "/cds-services/sarcoma-patient-view"
STATEMENTS = "org.sarcoma-cds.statements"
SHOWS_BLOCK = re.compile(r"^shows:.*?(?=^\S)", re.MULTILINE | re.DOTALL)


def shown_statements(patients: list[Patient], folder: Path = HERE) -> dict[str, list[str]]:
    """The statement ids each patient's chart shows: its hook request (full prefetch) sent to the
    service as the scenario test sends it, read as of the patient's ``today`` (ages, intervals,
    how recent a performance status is), with a throwaway feedback database."""
    from cds_service import Config, create_app
    from fhir_fixtures.ehr import hook_request

    shown: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        clients: dict[str, Any] = {}
        for patient in patients:
            if patient.today not in clients:
                config = Config(
                    feedback_db=Path(scratch) / f"feedback-{patient.today}.db", today=date.fromisoformat(patient.today)
                )
                clients[patient.today] = create_app(config).test_client()
            response = clients[patient.today].post(HOOK_URL, json=hook_request(patient.slug, fixtures_dir=folder))
            if response.status_code != 200:
                raise RuntimeError(
                    f"{patient.slug}: HTTP {response.status_code} {response.get_data(as_text=True)[:300]}"
                )
            cards = response.get_json()["cards"]
            shown[patient.slug] = sorted(
                {sid for card in cards for sid in card.get("extension", {}).get(STATEMENTS, [])}
            )
    return shown


def flow_list(key: str, items: list[str], width: int = 110) -> str:
    """``key: [a, b, ...]`` wrapped as the patient files write it."""
    lines, line = [], f"{key}: ["
    for i, item in enumerate(items):
        word = item + ("," if i < len(items) - 1 else "")
        if len(line) + len(word) + 2 > width and not line.endswith("["):
            lines.append(line.rstrip())
            line = "  "
        line += word + " "
    return "\n".join(lines + [line.rstrip() + "]"]) + "\n"


def record_shows(patients: list[Patient], shown: dict[str, list[str]]) -> None:
    """Write each patient's ``shows:`` in its file; the rest of the file is left as written."""
    for patient in patients:
        text = patient.path.read_text(encoding="utf-8")
        updated = SHOWS_BLOCK.sub(flow_list("shows", shown[patient.slug]).replace("\\", "\\\\"), text, count=1)
        if updated != text:
            patient.path.write_text(updated, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--record-shows",
        action="store_true",
        help="run the service on every patient and write the statements each "
        "chart shows into its patient file and the index (review the diff)",
    )
    args = parser.parse_args(argv)
    patients = write_all()
    if args.record_shows:
        record_shows(patients, shown_statements(patients))
        write_all()


if __name__ == "__main__":
    main()
