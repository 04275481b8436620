"""Discovery: shape and prefetch template legality (CDS Hooks 2.0 "Discovery", "Prefetch template")."""

import re

from cds_service.prefetch import TOKEN, USER_TOKENS, Query

# 2.0 "Prefetch query restrictions": reference, token (optionally :in), date, _count, _sort.
ALLOWED_PARAMS = {
    "patient": "reference",
    "subject": "reference",
    "code": "token",
    "category": "token",
    "status": "token",
    "clinical-status": "token",
    "date": "date",
    "_count": "count",
    "_sort": "sort",
}
CONTEXT_FIELDS = {"patientId", "userId", "encounterId"}


def test_discovery_names_the_knowledge_base_version(client, app):
    [service] = client.get("/cds-services").get_json()["services"]
    version = app.extensions["sarcoma_knowledge"].version
    assert service["extension"] == {"org.sarcoma-cds.knowledge-version": version} and version


def test_discovery_lists_the_sarcoma_service(client):
    response = client.get("/cds-services")
    assert response.status_code == 200
    services = response.get_json()["services"]
    assert [s["id"] for s in services] == ["sarcoma-patient-view"]
    service = services[0]
    assert service["hook"] == "patient-view"
    assert service["title"] and service["description"]
    assert set(service["prefetch"]) == {
        "patient",
        "conditions",
        "observations",
        "medicationStatements",
        "medicationRequests",
        "medicationAdministrations",
        "medicationDispenses",
        "procedures",
        "assessments",
        "diagnosticReports",
    }


def test_prefetch_templates_use_only_2_0_query_features(client):
    for key, template in client.get("/cds-services").get_json()["services"][0]["prefetch"].items():
        for token in TOKEN.findall(template):
            assert token in USER_TOKENS or (
                token.startswith("context.") and token.split(".", 1)[1] in CONTEXT_FIELDS
            ), token
            assert token.count(".") <= 1, f"nested token in {key}"
        query = Query.parse(TOKEN.sub("X", template))
        assert re.fullmatch(r"[A-Z][A-Za-z]+", query.resource_type)
        if query.id is not None:
            assert not query.params, "a read has no search parameters"
            continue
        for name, _value in query.params:
            base, _, modifier = name.partition(":")
            assert base in ALLOWED_PARAMS, f"{key}: {name} not allowed in 2.0 prefetch"
            assert modifier in ("", "in") and "." not in base, f"{key}: chaining or modifier {name}"
        assert query.param("patient") == "X", f"{key} must be scoped to the patient"
        assert int(query.param("_count")) > 0


def test_observation_template_filters_by_code(client):
    template = client.get("/cds-services").get_json()["services"][0]["prefetch"]["observations"]
    codes = Query.parse(template).param("code").split(",")
    for needed in ("89247-1", "21908-9", "399537006", "21889-1"):  # ECOG, stage group, size
        assert needed in codes


def test_health(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_observation_filter_fetches_exactly_the_codes_the_summary_reads():
    from cds_service.protocol.services import prefetch_templates
    from cds_service.summary.codes import codes

    kinds = codes()["observation_kinds"]
    read = {str(code) for by_system in kinds.values() for group in by_system.values() for code in group}
    fetched = set(Query.parse(prefetch_templates()["observations"]).param("code").split(","))
    assert fetched == read


def test_the_profile_supplement_asks_for_exactly_the_profiles_the_summary_reads_and_discovery_omits_it(client):
    from cds_service.protocol.services import supplement_templates
    from cds_service.summary.codes import codes

    read = {url for urls in codes()["observation_profiles"].values() for url in urls}
    supplement = Query.parse(supplement_templates()["observations"])
    assert supplement.resource_type == "Observation"
    assert set((supplement.param("_profile") or "").split(",")) == read
    declared = client.get("/cds-services").get_json()["services"][0]["prefetch"]
    assert not any("_profile" in template for template in declared.values())
