"""AJCC 8th-edition STS stage grouping: every table row, size bands, no-group sites."""

from __future__ import annotations

import itertools

import pytest

from cds_service import staging

T_VALUES, N_VALUES, M_VALUES, G_VALUES = ("T1", "T2", "T3", "T4"), ("N0", "N1"), ("M0", "M1"), ("GX", "G1", "G2", "G3")

TRUNK_EXTREMITY = [
    ("IA", ["T1"], ["N0"], ["M0"], ["GX", "G1"]),
    ("IB", ["T2", "T3", "T4"], ["N0"], ["M0"], ["GX", "G1"]),
    ("II", ["T1"], ["N0"], ["M0"], ["G2", "G3"]),
    ("IIIA", ["T2"], ["N0"], ["M0"], ["G2", "G3"]),
    ("IIIB", ["T3", "T4"], ["N0"], ["M0"], ["G2", "G3"]),
    ("IV", T_VALUES, ["N1"], ["M0"], G_VALUES),
    ("IV", T_VALUES, N_VALUES, ["M1"], G_VALUES),
]
RETROPERITONEUM = TRUNK_EXTREMITY[:5] + [
    ("IIIB", T_VALUES, ["N1"], ["M0"], G_VALUES),
    ("IV", T_VALUES, N_VALUES, ["M1"], G_VALUES),
]


def _cases(site: str, table: list) -> list:
    return [
        pytest.param(site, stage, *combo, id=f"{site}-{stage}-{'-'.join(combo)}")
        for stage, *axes in table
        for combo in itertools.product(*axes)
    ]


@pytest.mark.parametrize(
    "site,stage,t,n,m,g",
    _cases("extremity", TRUNK_EXTREMITY)
    + _cases("trunk", TRUNK_EXTREMITY)
    + _cases("retroperitoneum", RETROPERITONEUM),
)
def test_every_combination_of_every_row_gives_its_stage(site: str, stage: str, t: str, n: str, m: str, g: str) -> None:
    assert staging.group(site, t, n, m, g).group == stage


def test_tables_are_exhaustive_for_known_categories() -> None:
    for site in ("extremity", "retroperitoneum"):
        for combo in itertools.product(T_VALUES, N_VALUES, M_VALUES, G_VALUES):
            assert staging.group(site, *combo).group is not None, combo


def test_retroperitoneal_nodal_disease_is_iiib_but_trunk_nodal_disease_is_iv() -> None:
    assert staging.group("retroperitoneum", "T1", "N1", "M0", "G1").group == "IIIB"
    assert staging.group("trunk", "T1", "N1", "M0", "G1").group == "IV"


@pytest.mark.parametrize("site", ["head-and-neck", "visceral"])
def test_head_and_neck_and_visceral_have_no_stage_group(site: str) -> None:
    result = staging.group(site, "T2", "N0", "M0", "G3")
    assert result.group is None and result.table is None
    assert not staging.has_stage_groups(site)


def test_missing_categories_are_named_when_no_row_matches() -> None:
    assert staging.group("extremity", "T2", "N0", "M0", None).missing == ("G",)
    assert staging.group("extremity", None, "N0", "M0", None).missing == ("T", "G")


@pytest.mark.parametrize(
    "site,table",
    [("extremity", "trunk/extremity"), ("trunk", "trunk/extremity"), ("retroperitoneum", "retroperitoneum")],
)
def test_an_ungroupable_stage_still_names_the_table_it_was_read_against(site: str, table: str) -> None:
    result = staging.group(site, "T2", "N0", "M0", None)
    assert (result.group, result.table, result.missing) == (None, table, ("G",))
    assert staging.group(site, "T2", "N0", "M0", "G3").table == table


def test_m1_groups_without_t_or_grade() -> None:
    assert staging.group("extremity", None, "N0", "M1", None).group == "IV"


@pytest.mark.parametrize(
    "size_cm,t",
    [(0.5, "T1"), (5.0, "T1"), (5.01, "T2"), (10.0, "T2"), (10.1, "T3"), (15.0, "T3"), (15.1, "T4"), (40.0, "T4")],
)
def test_trunk_extremity_retroperitoneum_size_bands_are_inclusive_upper(size_cm: float, t: str) -> None:
    for site in ("extremity", "trunk", "retroperitoneum"):
        assert staging.t_from_size(site, size_cm) == t


@pytest.mark.parametrize("size_cm,t", [(2.0, "T1"), (2.1, "T2"), (4.0, "T2"), (4.1, "T3"), (20.0, "T3")])
def test_head_and_neck_size_bands(size_cm: float, t: str) -> None:
    assert staging.t_from_size("head-and-neck", size_cm) == t


def test_visceral_t_is_not_derived_from_size() -> None:
    assert staging.t_from_size("visceral", 3.0) is None
