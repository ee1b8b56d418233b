"""A bounded schemathesis run: every API operation, as every role, with generated valid and
invalid input; no answer may be a server error or differ from the OpenAPI document."""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from service.security import new_token
from tests.service.conftest import Api

#: Examples per operation, role and mode: about 30 operations x 5 roles x 2 modes fit in
#: ~2 minutes on two cores. ARTMATCH_FUZZ_EXAMPLES raises it for a longer run.
EXAMPLES = int(os.environ.get("ARTMATCH_FUZZ_EXAMPLES", "6"))
#: The admin goes last: its writes (accounts, roles) would change the others' answers.
ROLES = ("reg_a", "inv", "analyst", "auditor", "admin")


def _fresh_token(api: Api, who: str) -> dict[str, str]:
    # Generated requests may revoke the caller's own token (DELETE /me/tokens/1): mint one
    # per operation, so every operation is tried signed in.
    runtime: Any = api.client.app.state.runtime  # type: ignore[attr-defined]
    account = runtime.accounts.by_username(who)
    token, digest = new_token()
    runtime.accounts.add_token(account_id=account.id, name="fuzz", token_sha256=digest)
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.integration
def test_no_server_errors_and_answers_as_documented(api: Api) -> None:
    # The fixture's client has run the lifespan on this app: its runtime is in app.state.
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", api.client.app)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20
    for who in ROLES:
        for operation in operations:
            headers = _fresh_token(api, who)
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

                @given(case=operation.as_strategy(generation_mode=mode))
                @settings(
                    max_examples=EXAMPLES,
                    deadline=None,
                    database=None,
                    suppress_health_check=list(HealthCheck),
                )
                def check(case: Any) -> None:
                    # Called at once, inside this iteration: the loop variables are current.
                    # schemathesis's ASGI transport encodes the body (multipart, raw) itself.
                    response = case.call(headers=headers)  # noqa: B023
                    try:
                        case.validate_response(
                            response, checks=[not_a_server_error, response_schema_conformance]
                        )
                    except AssertionError as exc:
                        failures.append(
                            f"{who} {case.method} {case.formatted_path}: "  # noqa: B023
                            f"{response.status_code} {str(exc).splitlines()[0]}"
                        )

                try:
                    check()
                except Unsatisfiable:
                    # No invalid request exists for an operation without parameters.
                    assert mode is GenerationMode.NEGATIVE
    assert not failures, "\n".join(sorted(set(failures))[:40])
