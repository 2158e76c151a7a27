"""Your data endpoint group: export everything (a job), erase everything (a job), their progress and receipts.

Both requests only record a job in the caller's partition; the table's stream hands it to its worker
(`TakeoutWorkerFunction`, `ErasureWorkerFunction`), so neither depends on how much the caller has.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path

from sessions_api import http
from sessions_api.logic.erasure import Erasures
from sessions_api.logic.takeout import Takeout
from sessions_api.models.erasure import ErasureOut
from sessions_api.models.takeout import TakeoutJobOut
from sessions_api.observability import instrument
from sessions_api.settings import get_settings

app = http.create_app()
BASE = "/api/v1/me"
JobIdPath = Annotated[str, Path(description="`takeout_` + a ULID")]
ErasureIdPath = Annotated[str, Path(description="`erasure_` + a ULID")]


@cache
def takeout() -> Takeout:
    return Takeout(get_settings())


@cache
def erasures() -> Erasures:
    return Erasures(get_settings())


@app.post(
    f"{BASE}/export",
    responses={
        202: {"description": "The job, queued", "content": {"application/json": {"model": TakeoutJobOut}}},
        **http.problems(409),
    },
)
def export_everything():
    job = takeout().start(http.caller(app))
    return http.json_response(202, job, {"Location": f"{BASE}/export/{job['job_id']}"})


@app.get(
    f"{BASE}/export/<job_id>",
    responses={
        200: {
            "description": "The job's progress, and its download once done",
            "content": {"application/json": {"model": TakeoutJobOut}},
        },
        **http.problems(404),
    },
)
def export_everything_job(job_id: JobIdPath):
    return http.json_response(200, takeout().job(http.caller(app), job_id))


@app.delete(
    BASE,
    responses={202: {"description": "The erasure, started", "content": {"application/json": {"model": ErasureOut}}}},
)
def erase_everything():
    erasure = erasures().request(http.caller(app))
    return http.json_response(202, erasure, {"Location": f"{BASE}/erasures/{erasure['erasure_id']}"})


@app.get(
    f"{BASE}/erasures/<erasure_id>",
    responses={
        200: {
            "description": "The erasure's progress, then its receipt",
            "content": {"application/json": {"model": ErasureOut}},
        },
        **http.problems(404),
    },
)
def erasure_receipt(erasure_id: ErasureIdPath):
    return http.json_response(200, erasures().receipt(http.caller(app), erasure_id))


@instrument
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return http.handle(app, event, context)
