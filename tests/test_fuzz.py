"""Schema-driven fuzzing of the OpenAPI spec: no input may produce a 5xx.

Runs with `make fuzz` (which installs schemathesis); skipped in the normal suite without it. The app runs in
this process over a seed index built in this process (no server, no subprocess).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is installed by `make fuzz`")
if not os.environ.get("TRACUU_FUZZ"):
    pytest.skip("set TRACUU_FUZZ=1 (make fuzz) to fuzz the API", allow_module_level=True)

from conftest import CORPUS, build_in_process  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from app.main import create_app  # noqa: E402
from app.settings import Settings  # noqa: E402

_TMP = tempfile.TemporaryDirectory(prefix="tracuu-fuzz-")  # removed when the test process ends


def _app():
    """The app over a seed index, rate limit off so the fuzzer is not throttled."""
    index = build_in_process(Path(_TMP.name) / "ix", CORPUS)
    return create_app(Settings(index_dir=index, rate_limit_per_minute=0))


schema = schemathesis.openapi.from_asgi("/openapi.json", _app())


@schema.parametrize()
@settings(max_examples=int(os.environ.get("TRACUU_FUZZ_EXAMPLES", "150")), deadline=None,
          suppress_health_check=list(HealthCheck))
def test_no_server_errors(case):
    response = case.call()
    case.validate_response(response, checks=(not_a_server_error,))
