"""Card serialisation follows CDS Hooks 2.0 "Use of JSON" and the 3.0 response invariants."""

import pytest

from cds_service.protocol.cards import (
    OVERRIDE_REASONS,
    Action,
    ActionType,
    Card,
    CdsResponse,
    Coding,
    Indicator,
    Link,
    LinkType,
    SelectionBehavior,
    Source,
    Suggestion,
    to_json,
)


def card(**fields):
    base = dict(summary="Stage IIIA", indicator=Indicator.INFO, source=Source(label="Guideline"))
    base.update(fields)
    return Card(**base)


def test_empty_response_keeps_the_required_empty_cards_list():
    assert CdsResponse().to_json() == {"cards": []}


def test_optional_fields_without_value_are_omitted():
    body = to_json(card())
    assert set(body) == {"summary", "indicator", "source", "uuid"}
    assert body["source"] == {"label": "Guideline"}
    assert "suggestions" not in body and "links" not in body and "detail" not in body


def test_every_card_and_suggestion_has_its_own_uuid():
    suggestion = Suggestion(
        label="Refer", actions=(Action(ActionType.CREATE, "Refer", {"resourceType": "ServiceRequest"}),)
    )
    a = card(suggestions=(suggestion,), selectionBehavior=SelectionBehavior.ANY)
    b = card()
    body = to_json(a)
    assert a.uuid != b.uuid
    assert body["suggestions"][0]["uuid"] == suggestion.uuid
    assert body["selectionBehavior"] == "any"


@pytest.mark.parametrize("length,ok", [(139, True), (140, False), (0, False)])
def test_summary_must_be_under_140_characters(length, ok):
    if ok:
        assert len(card(summary="x" * length).summary) == length
    else:
        with pytest.raises(ValueError):
            card(summary="x" * length)


def test_suggestions_require_selection_behavior():
    with pytest.raises(ValueError, match="selectionBehavior"):
        card(suggestions=(Suggestion(label="Refer"),))


def test_at_most_one_allows_a_single_recommended_suggestion():
    two = (Suggestion(label="a", isRecommended=True), Suggestion(label="b", isRecommended=True))
    with pytest.raises(ValueError, match="cds-resp-1"):
        card(suggestions=two, selectionBehavior=SelectionBehavior.AT_MOST_ONE)
    assert card(suggestions=two, selectionBehavior=SelectionBehavior.ANY)


def test_app_context_only_on_smart_links():
    with pytest.raises(ValueError, match="cds-resp-3"):
        Link(label="x", url="https://a", type=LinkType.ABSOLUTE, appContext="ctx")
    assert to_json(Link(label="x", url="https://a", type=LinkType.SMART, appContext="ctx"))["appContext"] == "ctx"


def test_override_reasons_need_display():
    with pytest.raises(ValueError, match="cds-resp-4"):
        card(overrideReasons=(Coding("x", "http://s"),))
    body = to_json(card(overrideReasons=OVERRIDE_REASONS))
    assert all(reason["display"] and reason["system"] and reason["code"] for reason in body["overrideReasons"])


def test_create_action_needs_a_resource_and_delete_a_resource_id():
    with pytest.raises(ValueError):
        Action(ActionType.CREATE, "create")
    with pytest.raises(ValueError, match="cds-resp-2"):
        Action(ActionType.DELETE, "delete", resource={"resourceType": "X"}, resourceId="X/1")
    assert to_json(Action(ActionType.DELETE, "delete", resourceId="X/1")) == {
        "type": "delete",
        "description": "delete",
        "resourceId": "X/1",
    }


def test_enums_serialise_as_their_spec_values():
    body = to_json(card(indicator=Indicator.CRITICAL))
    assert body["indicator"] == "critical"
