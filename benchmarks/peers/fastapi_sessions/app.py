"""The sessions endpoints as most FastAPI-on-Lambda projects write them: FastAPI + Mangum + boto3 resource.

A self-contained Lambda code directory (`app.lambda_handler`), so its cold start is measured exactly like
one of our functions. Same table, same keys, same response shape as ours; no access policy, cursors,
idempotency or problem+json, which only makes it lighter.
"""

from __future__ import annotations

import os
import secrets
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import boto3
from boto3.dynamodb.conditions import Key
from fastapi import FastAPI, HTTPException, Path, Query, Request
from mangum import Mangum
from pydantic import BaseModel, Field

table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])
app = FastAPI(title="Sessions API")


class Status(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    EXPIRED = "expired"


class CreateSession(BaseModel):
    title: str = Field(default="New Chat", min_length=1, max_length=200)
    session_type: str = "chat"
    agent_name: str = Field(default="chat", max_length=64)
    model_id: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict, max_length=16)


class TokenUsage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0


class SessionOut(BaseModel):
    session_id: str
    title: str
    session_type: str
    status: str
    agent_name: str
    model_id: str | None = None
    metadata: dict[str, str] = {}
    created_by: str
    created_at: str
    updated_at: str
    last_activity_at: str
    is_active: bool
    message_count: int = 0
    turn_count: int = 0
    token_usage: TokenUsage = TokenUsage()
    last_message_preview: str | None = None
    version: int


class SessionList(BaseModel):
    sessions: list[SessionOut]
    count: int
    next_cursor: str | None = None


def caller(request: Request) -> str:
    claims = request.scope["aws.event"]["requestContext"].get("authorizer", {}).get("jwt", {}).get("claims", {})
    if "sub" not in claims:
        raise HTTPException(status_code=401, detail="unauthorized")
    return claims["sub"]


def to_out(item: dict[str, Any]) -> SessionOut:
    return SessionOut(
        **{k: v for k, v in item.items() if k in SessionOut.model_fields and k != "token_usage"},
        is_active=item["status"] == "active",
        token_usage=TokenUsage(
            input_tokens=int(item.get("input_tokens", 0)), output_tokens=int(item.get("output_tokens", 0))
        ),
    )


@app.get("/api/v1/sessions/{session_id}", response_model=SessionOut)
def get_session(request: Request, session_id: Annotated[str, Path(pattern=r"^session_[0-9a-f]{16}$")]):
    item = table.get_item(Key={"PK": f"SESSION#{session_id}", "SK": "#SESSION"}, ConsistentRead=True).get("Item")
    if not item or item["created_by"] != caller(request) or item.get("deleted_at"):
        raise HTTPException(status_code=404, detail="session_not_found")
    return to_out(item)


@app.get("/api/v1/sessions", response_model=SessionList)
def list_sessions(request: Request, limit: Annotated[int, Query(ge=1, le=100)] = 50):
    response = table.query(
        IndexName="GSI1",
        KeyConditionExpression=Key("GSI1PK").eq(f"OWNER#{caller(request)}"),
        ScanIndexForward=False,
        Limit=limit + 1,
    )
    items = [item for item in response["Items"] if item["SK"] == "#SESSION"][:limit]
    return SessionList(sessions=[to_out(item) for item in items], count=len(items))


@app.post("/api/v1/sessions", response_model=SessionOut, status_code=201)
def create_session(request: Request, body: CreateSession | None = None):
    body = body or CreateSession()
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    session_id = "session_" + secrets.token_hex(8)
    owner = caller(request)
    item = {
        "PK": f"SESSION#{session_id}",
        "SK": "#SESSION",
        "type": "session",
        "session_id": session_id,
        **body.model_dump(exclude_none=True),
        "status": "active",
        "created_by": owner,
        "created_at": now,
        "updated_at": now,
        "last_activity_at": now,
        "version": 1,
        "GSI1PK": f"OWNER#{owner}",
        "GSI1SK": f"{now}#{session_id}",
    }
    table.put_item(Item=item, ConditionExpression="attribute_not_exists(PK)")
    return to_out(item)


lambda_handler = Mangum(app, lifespan="off")
