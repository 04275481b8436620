"""Prefetch templates as a CDS client reads them (CDS Hooks 2.0 "Prefetch template", "Prefetch tokens").

``fill_template`` substitutes the tokens of a template from a hook's context; ``Query`` parses the
filled query. The service fills its own templates for what the client left out (``fhir/gather.py``);
the fixture tooling fills them as an EHR would (``fhir_fixtures/ehr.py``); discovery declares them
(``protocol/services.py``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

TOKEN = re.compile(r"\{\{\s*([A-Za-z.]+)\s*\}\}")
USER_TOKENS = {
    "userPractitionerId": "Practitioner",
    "userPractitionerRoleId": "PractitionerRole",
    "userPatientId": "Patient",
    "userRelatedPersonId": "RelatedPerson",
}


@dataclass(frozen=True)
class Query:
    """A parsed prefetch query: an instance read (``id``) or a type search (``params``)."""

    resource_type: str
    id: str | None = None
    params: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, url: str) -> Query:
        path, _, query = url.partition("?")
        resource_type, _, ident = path.partition("/")
        return cls(resource_type, ident or None, tuple(parse_qsl(query, keep_blank_values=True)))

    def param(self, name: str) -> str | None:
        return next((value for key, value in self.params if key == name), None)


def fill_template(template: str, context: Mapping[str, Any]) -> str:
    """Substitute prefetch tokens as a CDS client would (2.0 "Prefetch tokens")."""
    user_type, _, user_id = str(context.get("userId", "")).partition("/")

    def value(match: re.Match[str]) -> str:
        token = match.group(1)
        if token.startswith("context."):
            return str(context.get(token.removeprefix("context."), ""))
        if USER_TOKENS.get(token) == user_type:
            return user_id
        return ""

    return TOKEN.sub(value, template)
