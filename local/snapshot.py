"""`make dev` keeps its data across a restart: the local AWS's tables and buckets saved on the way out and
loaded on the way in (`.local/data`; `make dev-reset` wipes it).

A snapshot is taken when the gateway stops (Ctrl-C or SIGTERM), written beside the old one and swapped in,
so a crash while saving leaves the previous snapshot whole. Items keep DynamoDB's typed JSON; objects keep
their bytes, content type and disposition (the current version of each key).
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

ITEMS_FILE = "items.jsonl"
OBJECTS_FILE = "objects.jsonl"


def save(directory: Path, dynamodb: Any, s3: Any, resources: dict[str, str], kinds: dict[str, str]) -> int:
    """Write every item and object of the stack's tables and buckets; returns how many were saved."""
    staging = directory.with_name(directory.name + ".saving")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    saved = 0
    with (staging / ITEMS_FILE).open("w") as items, (staging / OBJECTS_FILE).open("w") as objects:
        for logical_id, name in resources.items():
            if kinds[logical_id] == "AWS::DynamoDB::Table":
                for page in dynamodb.get_paginator("scan").paginate(TableName=name):
                    for item in page["Items"]:
                        items.write(json.dumps({"resource": logical_id, "item": item}) + "\n")
                        saved += 1
            elif kinds[logical_id] == "AWS::S3::Bucket":
                for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
                    for entry in page.get("Contents", []):
                        stored = s3.get_object(Bucket=name, Key=entry["Key"])
                        record = {
                            "resource": logical_id,
                            "key": entry["Key"],
                            "body": base64.b64encode(stored["Body"].read()).decode(),
                            "content_type": stored.get("ContentType"),
                            "content_disposition": stored.get("ContentDisposition"),
                        }
                        objects.write(json.dumps(record) + "\n")
                        saved += 1
    shutil.rmtree(directory, ignore_errors=True)
    staging.rename(directory)
    return saved


def load(directory: Path, dynamodb: Any, s3: Any, resources: dict[str, str]) -> int:
    """Put back what `save` wrote (into freshly created resources); returns how many were loaded."""
    loaded = 0
    if (directory / ITEMS_FILE).exists():
        with (directory / ITEMS_FILE).open() as items:
            for line in items:
                record = json.loads(line)
                if record["resource"] in resources:
                    dynamodb.put_item(TableName=resources[record["resource"]], Item=record["item"])
                    loaded += 1
    if (directory / OBJECTS_FILE).exists():
        with (directory / OBJECTS_FILE).open() as objects:
            for line in objects:
                record = json.loads(line)
                if record["resource"] not in resources:
                    continue
                extra = {
                    name: record[field]
                    for name, field in (("ContentType", "content_type"), ("ContentDisposition", "content_disposition"))
                    if record.get(field)
                }
                s3.put_object(
                    Bucket=resources[record["resource"]],
                    Key=record["key"],
                    Body=base64.b64decode(record["body"]),
                    **extra,
                )
                loaded += 1
    return loaded
