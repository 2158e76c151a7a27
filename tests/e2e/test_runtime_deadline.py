"""A caller's deadline counts the cold start, as API Gateway's 30 s do; the function's timeout does not."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from local.runtime import FunctionPool, lambda_environment
from local.template import FunctionSpec

HANDLER = """\
import time

time.sleep(1.2)  # a slow cold start


def handler(event, context):
    time.sleep(event["seconds"])
    return {"remaining_ms": context.get_remaining_time_in_millis()}
"""


@pytest.fixture
def pool(tmp_path: Path) -> FunctionPool:
    (tmp_path / "app.py").write_text(HANDLER)
    spec = FunctionSpec(
        logical_id="Slow", name="slow", arn="arn:aws:lambda:us-east-1:123456789012:function:slow",
        code_dir=tmp_path, handler="app.handler", layer_dirs=(), runtime="python3.13", timeout=5,
        memory_size=128, environment={}, log_format="Text", application_log_level=None, routes=(), schedules=(),
    )  # fmt: skip
    running = FunctionPool(spec, lambda_environment(spec, "http://127.0.0.1:9"), max_workers=1)
    yield running
    running.close()


def test_a_cold_start_spends_the_callers_deadline(pool: FunctionPool) -> None:
    # Given a deadline 1.8 s away and a cold start of 1.2 s: the handler's 1 s no longer fits
    started = time.monotonic()
    cold = pool.invoke({"seconds": 1.0}, deadline=started + 1.8)
    elapsed = time.monotonic() - started
    assert cold.error is not None and cold.error["errorType"] == "Sandbox.Timedout"
    assert 1.7 <= elapsed < 2.6, elapsed  # cut at the caller's deadline, not at the function's 5 s
    # When an environment is warm (the timed-out one was stopped, as Lambda does), the same call fits
    assert pool.invoke({"seconds": 0}).error is None
    started = time.monotonic()
    warm = pool.invoke({"seconds": 1.0}, deadline=started + 1.8)
    assert warm.error is None, warm.error
    # And the function's context counts down from the time left to the caller, not its own 5 s
    assert 0 < warm.result["remaining_ms"] <= 800


def test_without_a_deadline_the_function_has_its_own_timeout_after_its_cold_start(pool: FunctionPool) -> None:
    started = time.monotonic()
    result = pool.invoke({"seconds": 1.5})  # 1.2 s init + 1.5 s: past the 1.8 s above, within the 5 s timeout
    assert result.error is None, result.error
    assert time.monotonic() - started >= 2.6
    assert 3000 <= result.result["remaining_ms"] <= 3600
