"""Primary-site class."""

from __future__ import annotations

from datetime import date

import pytest
from fhir_builders import ICD10, concept, condition, primary

from cds_service.summary import summarise
from cds_service.summary.model import FindingKind, SiteClass

TODAY = date(2025, 1, 1)


def site_findings(summary) -> set[FindingKind]:
    return {f.kind for f in summary.findings if f.about == "site"}


@pytest.mark.parametrize(
    "icd10,expected",
    [
        ("C49.12", SiteClass.EXTREMITY),
        ("C49.21", SiteClass.EXTREMITY),
        ("C49.3", SiteClass.TRUNK),
        ("C49.6", SiteClass.TRUNK),
        ("C48.0", SiteClass.RETROPERITONEUM),
        ("C49.0", SiteClass.HEAD_AND_NECK),
    ],
)
def test_site_from_icd10_topography(icd10: str, expected: SiteClass) -> None:
    summary = summarise([primary(icd10=icd10, morphology="8890/3")], today=TODAY)
    assert summary.site.value is expected
    assert summary.site.sources == ("Condition/primary",)


def test_visceral_organ_code_with_sarcoma_morphology() -> None:
    summary = summarise(
        [
            condition(
                "c",
                concept(ICD10, "C16.9"),
                morphology=concept("http://terminology.hl7.org/CodeSystem/icd-o-3", "8890/3"),
            )
        ],
        today=TODAY,
    )
    assert summary.site.value is SiteClass.VISCERAL


@pytest.mark.parametrize(
    "body_site,expected",
    [
        ("61685007", SiteClass.EXTREMITY),
        ("53120007", SiteClass.EXTREMITY),
        ("22943007", SiteClass.TRUNK),
        ("82849001", SiteClass.RETROPERITONEUM),
        ("64131007", SiteClass.RETROPERITONEUM),  # inferior vena cava: staged as retroperitoneal
        ("80891009", SiteClass.VISCERAL),  # heart
    ],
)
def test_site_from_body_site(body_site: str, expected: SiteClass) -> None:
    summary = summarise([primary(snomed="443719001", body_site=body_site)], today=TODAY)
    assert summary.site.value is expected


@pytest.mark.parametrize("icd10", ["C49.4", "C49.5"])
def test_abdomen_or_pelvis_without_body_site_is_ambiguous(icd10: str) -> None:
    summary = summarise([primary(icd10=icd10, morphology="8890/3")], today=TODAY)
    assert summary.site is None
    assert FindingKind.AMBIGUOUS in site_findings(summary)


def test_body_site_clarifies_abdomen() -> None:
    summary = summarise([primary(icd10="C49.4", morphology="8890/3", body_site="82849001")], today=TODAY)
    assert summary.site.value is SiteClass.RETROPERITONEUM
    assert not site_findings(summary)


def test_body_site_text_clarifies_abdominal_wall() -> None:
    resource = primary(icd10="C49.4", morphology="8890/3")
    resource["bodySite"] = [{"text": "Anterior abdominal wall"}]
    assert summarise([resource], today=TODAY).site.value is SiteClass.TRUNK


def test_body_site_disagreeing_with_topography_is_a_contradiction() -> None:
    summary = summarise([primary(icd10="C49.22", morphology="8890/3", body_site="82849001")], today=TODAY)
    assert summary.site.value is SiteClass.RETROPERITONEUM
    assert FindingKind.CONTRADICTION in site_findings(summary)


def test_unspecified_soft_tissue_site_is_missing() -> None:
    summary = summarise([primary(icd10="C49.9", morphology="8890/3")], today=TODAY)
    assert summary.site is None and FindingKind.MISSING in site_findings(summary)


def with_body_site_text(icd10: str, text: str) -> dict:
    resource = primary(icd10=icd10, morphology="8890/3")
    resource["bodySite"] = [{"text": text}]
    return resource


@pytest.mark.parametrize(
    "icd10,text,expected",
    [
        ("C49.22", "Neck of femur", SiteClass.EXTREMITY),
        ("C49.22", "Structure of neck of the femur", SiteClass.EXTREMITY),
        ("C49.22", "Left femoral neck", SiteClass.EXTREMITY),
        ("C49.12", "Head of humerus", SiteClass.EXTREMITY),
        ("C25.0", "Head of pancreas", SiteClass.VISCERAL),
        ("C25.0", "Pancreatic head", SiteClass.VISCERAL),
        ("C67.5", "Neck of bladder", SiteClass.VISCERAL),
    ],
)
def test_a_part_of_another_structure_is_not_head_and_neck(icd10: str, text: str, expected: SiteClass) -> None:
    summary = summarise([with_body_site_text(icd10, text)], today=TODAY)
    assert summary.site.value is expected
    assert not site_findings(summary)


@pytest.mark.parametrize("text", ["Left neck", "Soft tissue of the neck", "Head and neck", "Scalp of head"])
def test_the_head_or_neck_itself_is_head_and_neck(text: str) -> None:
    assert summarise([with_body_site_text("C49.0", text)], today=TODAY).site.value is SiteClass.HEAD_AND_NECK


def test_an_unknown_structure_part_leaves_the_coded_site() -> None:
    summary = summarise([with_body_site_text("C49.12", "Long head of biceps")], today=TODAY)
    assert summary.site.value is SiteClass.EXTREMITY
    assert not site_findings(summary)


def abdominal_wall_in_words() -> dict:
    resource = primary(icd10="C49.4", morphology="8890/3", onset="2020-01-01")
    resource["bodySite"] = [{"text": "Anterior abdominal wall"}]
    return resource


IN_FULL = "Condition/primary"


@pytest.mark.parametrize(
    "resource,site,basis,finding",
    [
        (primary(icd10="C49.22", morphology="8890/3", onset="2020-01-01"), "extremity", "ICD-10-CM C49.22", None),
        (
            primary(snomed="443719001", body_site="61685007", onset="2020-01-01"),
            "extremity",
            "bodySite SNOMED 61685007",
            None,
        ),
        (abdominal_wall_in_words(), "trunk", "bodySite text clarifying ICD-10-CM C49.4", None),
        (
            primary(icd10="C49.4", morphology="8890/3", body_site="82849001", onset="2020-01-01"),
            "retroperitoneum",
            "bodySite SNOMED 82849001 clarifying ICD-10-CM C49.4",
            None,
        ),
        (
            primary(icd10="C49.22", morphology="8890/3", body_site="82849001", onset="2020-01-01"),
            "retroperitoneum",
            "bodySite SNOMED 82849001",
            (
                FindingKind.CONTRADICTION,
                "ICD-10-CM C49.22 says extremity but bodySite SNOMED 82849001 says retroperitoneum; bodySite used",
            ),
        ),
        (
            primary(icd10="C49.9", morphology="8890/3", onset="2020-01-01"),
            None,
            None,
            (FindingKind.MISSING, "primary site not coded as a staging site class"),
        ),
        (
            primary(icd10="C49.4", morphology="8890/3", onset="2020-01-01"),
            None,
            None,
            (
                FindingKind.AMBIGUOUS,
                "ICD-10-CM C49.4: abdominal/pelvic wall (trunk) or intra-abdominal/pelvic (visceral)? "
                "bodySite does not say",
            ),
        ),
    ],
)
def test_the_site_in_full_with_what_it_rests_on(
    resource: dict, site: str | None, basis: str | None, finding: tuple[FindingKind, str] | None
) -> None:
    summary = summarise([resource], today=TODAY)
    if site is None:
        assert summary.site is None
    else:
        assert (summary.site.value, summary.site.basis) == (SiteClass(site), basis)
        assert (summary.site.sources, summary.site.when) == ((IN_FULL,), date(2020, 1, 1))
    findings = [(f.kind, f.message, f.sources) for f in summary.findings if f.about == "site"]
    assert findings == ([(*finding, (IN_FULL,))] if finding else [])


@pytest.mark.parametrize(
    "body_site,expected",
    [
        ("68367000", SiteClass.EXTREMITY),  # thigh, as before
        ("40983000", SiteClass.EXTREMITY),  # upper arm
        ("14975008", SiteClass.EXTREMITY),  # forearm
        ("85562004", SiteClass.EXTREMITY),  # hand
        ("16982005", SiteClass.EXTREMITY),  # shoulder region
        ("29836001", SiteClass.EXTREMITY),  # hip region
        ("72696002", SiteClass.EXTREMITY),  # knee region
        ("30021000", SiteClass.EXTREMITY),  # lower leg
        ("56459004", SiteClass.EXTREMITY),  # foot
        ("78904004", SiteClass.TRUNK),  # chest wall, as before
        ("77568009", SiteClass.TRUNK),  # back
        ("46862004", SiteClass.TRUNK),  # buttock (gluteal region)
        ("76752008", SiteClass.TRUNK),  # breast
        ("80248007", SiteClass.TRUNK),  # left breast
        ("73056007", SiteClass.TRUNK),  # right breast
        ("69536005", SiteClass.HEAD_AND_NECK),  # head
        ("45048000", SiteClass.HEAD_AND_NECK),  # neck
        ("89545001", SiteClass.HEAD_AND_NECK),  # face
        ("41695006", SiteClass.HEAD_AND_NECK),  # scalp
    ],
)
def test_common_body_site_codes_have_a_site_class(body_site: str, expected: SiteClass) -> None:
    """A histology code beside a SNOMED body structure alone: the bodySite gives the class."""
    summary = summarise([primary(snomed="443719001", body_site=body_site)], today=TODAY)
    assert summary.site.value is expected
    assert not site_findings(summary)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Right forearm", SiteClass.EXTREMITY),
        ("Dorsum of left hand", SiteClass.EXTREMITY),
        ("Plantar aspect of the right foot", SiteClass.EXTREMITY),
        ("Both feet", SiteClass.EXTREMITY),
        ("Popliteal fossa, left knee", SiteClass.EXTREMITY),
        ("Left hip", SiteClass.EXTREMITY),
        ("Right shoulder", SiteClass.EXTREMITY),
        ("Back of the left knee", SiteClass.EXTREMITY),
        ("Upper back", SiteClass.TRUNK),
        ("Left-hand side of the back", SiteClass.TRUNK),
        ("Left breast", SiteClass.TRUNK),
        ("Scalp, vertex", SiteClass.HEAD_AND_NECK),
        ("Back of the neck", SiteClass.HEAD_AND_NECK),
        ("Neck of femur", SiteClass.EXTREMITY),
        ("Left thigh", SiteClass.EXTREMITY),
        ("Right calf, medial gastrocnemius", SiteClass.EXTREMITY),
        ("Left heel", SiteClass.EXTREMITY),
        ("Right groin", SiteClass.TRUNK),
        ("Left axilla", SiteClass.TRUNK),
        ("Right flank", SiteClass.TRUNK),
        ("Left pleura", SiteClass.VISCERAL),
    ],
)
def test_body_site_text_names_the_region_in_whole_words(text: str, expected: SiteClass) -> None:
    summary = summarise([with_body_site_text("C49.9", text)], today=TODAY)
    assert summary.site.value is expected


@pytest.mark.parametrize("text", ["Handle of the sternum", "Backbone", "Hippocampus", "Footplate"])
def test_body_site_words_inside_other_words_are_not_read(text: str) -> None:
    assert summarise([with_body_site_text("C49.9", text)], today=TODAY).site is None


def test_a_breast_topography_is_trunk_not_visceral() -> None:
    summary = summarise([primary(icd10="C50.912", morphology="9120/3")], today=TODAY)
    assert summary.site.value is SiteClass.TRUNK


def test_the_icd10_topography_is_found_among_other_codings() -> None:
    code = {"coding": [{"system": "http://snomed.info/sct", "code": "372062007"}, {"system": ICD10, "code": "C49.22"}]}
    morphology = concept("http://terminology.hl7.org/CodeSystem/icd-o-3", "8890/3")
    assert summarise([condition("c", code, morphology=morphology)], today=TODAY).site.value is SiteClass.EXTREMITY


@pytest.mark.parametrize(
    ("fields", "figo"),
    [
        ({"snomed": "443719001", "body_site": "35039007"}, True),  # uterine structure
        ({"icd10": "C54.1", "morphology": "8890/3"}, True),  # corpus uteri
        ({"icd10": "C55", "morphology": "8890/3"}, True),
        ({"snomed": "443719001", "body_site": "69695003"}, False),  # stomach: visceral, not uterine
        ({"icd10": "C49.22", "morphology": "8890/3"}, False),  # thigh
    ],
)
def test_a_uterine_primary_is_staged_by_figo(fields: dict[str, str], figo: bool) -> None:
    summary = summarise([primary(**fields)], today=TODAY)
    assert (summary.site_figo is not None and summary.site_figo.value) is figo


@pytest.mark.parametrize(("text", "figo"), [("LMS of uterus", True), ("LMS of retroperitoneum", False)])
def test_a_uterine_primary_named_only_in_words_is_staged_by_figo(text: str, figo: bool) -> None:
    summary = summarise([condition("primary", {"text": text}, profile="mcode-primary-cancer-condition")], today=TODAY)
    assert (summary.site_figo is not None) is figo
