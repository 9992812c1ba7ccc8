"""The OpenAPI document is a valid OpenAPI 3 document, and every operation in it, fuzzed
for each role, answers without a 5xx and as the document says (errors included)."""

import re
import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from openapi_spec_validator import OpenAPIV30SpecValidator
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from billing import create_app
from billing.db import Database, make_engine
from billing.settings import load_settings
from tests.conftest import auth

ROLES = ("admin", "finance", "operator", "customer")
CHECKS = [
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_the_openapi_document_is_valid_openapi_3(client):
    document = client.get("/api/v1/openapi.json").json
    errors = [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message[:300]}"
        for error in OpenAPIV30SpecValidator(document).iter_errors()
    ]
    assert errors == []


def test_every_route_of_the_api_is_in_the_document(app, client):
    documented = set(client.get("/api/v1/openapi.json").json["paths"])
    routes = {
        re.sub(r"<(?:[^>]*:)?(\w+)>", r"{\1}", rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/") and rule.endpoint != "api-docs.openapi_json"
    }
    assert routes - documented == set()


def the_document() -> dict:
    """The document as the application builds it (it depends on no database row)."""
    with tempfile.TemporaryDirectory() as directory:
        settings = load_settings(data_dir=Path(directory))
        application = create_app(settings, Database(make_engine("sqlite://")))
        return application.test_client().get("/api/v1/openapi.json").json


schema = schemathesis.openapi.from_dict(the_document())


@schema.parametrize()
@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented_for_each_role(case, app, keys):
    for role in (None, *ROLES):
        response = case.call(app=app, headers=auth(keys[role]) if role else None)
        assert response.status_code < 500 or is_documented_unavailability(case, response), (
            f"{case.method} {case.formatted_path} as {role}: {response.status_code} "
            f"{response.text[:500]}"
        )
        case.validate_response(response, checks=CHECKS)


def is_documented_unavailability(case, response) -> bool:
    """A 503 the operation documents: /readyz with a role down, a document being rendered."""
    return response.status_code == 503 and "503" in case.operation.definition.raw["responses"]
