"""A DynamoDB stream's event-source mapping, played locally: poll the stream, filter, invoke, retry.

Lambda's poller reads each shard, keeps the records that match the mapping's `FilterCriteria`, and invokes
the function with batches of `BatchSize` records in the shape Lambda sends (`Records[].dynamodb.NewImage` in
DynamoDB's wire format). A failed invocation is retried `MaximumRetryAttempts` times, then the batch goes
to the on-failure destination; here it is logged. The embedded AWS (moto) keeps the stream, so what the
worker receives locally is what it receives in AWS.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

Invoke = Callable[[dict[str, Any]], None]
POLL_SECONDS = 0.05


def matches(pattern: Mapping[str, Any], value: Any) -> bool:
    """EventBridge's pattern rules as Lambda filters use them: a map matches field by field, a list of
    literals matches any one of them, `{"exists": bool}` tests presence."""
    if not isinstance(value, Mapping):
        return False
    for key, expected in pattern.items():
        if isinstance(expected, Mapping):
            if not matches(expected, value.get(key)):
                return False
        elif isinstance(expected, list):
            wanted = [item for item in expected if not isinstance(item, Mapping)]
            present = key in value
            exists = [item["exists"] for item in expected if isinstance(item, Mapping) and "exists" in item]
            if exists and exists[0] != present:
                return False
            if wanted and value.get(key) not in wanted:
                return False
        elif value.get(key) != expected:
            return False
    return True


@dataclass(frozen=True)
class SourceMapping:
    """What the poller needs of an event-source mapping."""

    stream_arn: str
    patterns: tuple[Mapping[str, Any], ...]
    batch_size: int
    retries: int
    parallelization: int  # batches handled at once per shard; records of one partition key stay in order


def as_lambda_sends(record: dict[str, Any]) -> dict[str, Any]:
    """A GetRecords record as Lambda hands it over: the creation time in epoch seconds (botocore parsed it
    into a datetime), and the stream's ARN."""
    change = dict(record.get("dynamodb") or {})
    created = change.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        change["ApproximateCreationDateTime"] = int(created.timestamp())
    return {**record, "dynamodb": change}


class StreamPoller:
    """Polls every shard of a stream from where it is now (StartingPosition LATEST) and hands matching
    records to `invoke` on its own threads: up to `parallelization` batches at once, the batches of one
    partition key one after the other, in order (as Lambda's ParallelizationFactor does)."""

    def __init__(
        self, streams: Any, mapping: SourceMapping, invoke: Invoke, *, log: Callable[[str], None] = print
    ) -> None:
        self.streams = streams
        self.mapping = mapping
        self.invoke = invoke
        self.log = log
        self._stop = threading.Event()
        self._iterators: dict[str, str] = {}
        self._thread = threading.Thread(target=self._loop, name="stream-poller", daemon=True)
        self._pool = ThreadPoolExecutor(max_workers=mapping.parallelization, thread_name_prefix="stream-batch")
        self._latest: dict[str, Future[None]] = {}  # partition key → its last batch handed over

    def start(self) -> StreamPoller:
        self._refresh_shards()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _refresh_shards(self) -> None:
        description = self.streams.describe_stream(StreamArn=self.mapping.stream_arn)["StreamDescription"]
        for shard in description.get("Shards", []):
            shard_id = shard["ShardId"]
            if shard_id not in self._iterators:
                self._iterators[shard_id] = self.streams.get_shard_iterator(
                    StreamArn=self.mapping.stream_arn, ShardId=shard_id, ShardIteratorType="LATEST"
                )["ShardIterator"]

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if not self._poll_once():
                    self._stop.wait(POLL_SECONDS)
            except Exception as exc:  # a poller never dies of one bad read; the next poll tries again
                self.log(f"stream poller: {type(exc).__name__}: {exc}")
                self._stop.wait(1)

    def _poll_once(self) -> int:
        handled = 0
        for shard_id, iterator in list(self._iterators.items()):
            response = self.streams.get_records(ShardIterator=iterator)
            self._iterators[shard_id] = response.get("NextShardIterator") or iterator
            records = [as_lambda_sends(record) for record in response.get("Records", []) if self._wanted(record)]
            for start in range(0, len(records), self.mapping.batch_size):
                batch = records[start : start + self.mapping.batch_size]
                key = json.dumps(batch[0].get("dynamodb", {}).get("Keys", {}).get("PK"), sort_keys=True)
                previous = self._latest.get(key)
                self._latest[key] = self._pool.submit(self._deliver_after, previous, {"Records": batch})
                handled += 1
        self._latest = {key: future for key, future in self._latest.items() if not future.done()}
        return handled

    def _deliver_after(self, previous: Future[None] | None, event: dict[str, Any]) -> None:
        if previous is not None:
            previous.exception()  # waits; its failure was logged by its own delivery
        self._deliver(event)

    def _wanted(self, record: dict[str, Any]) -> bool:
        record = {**record, "eventSourceARN": self.mapping.stream_arn}
        return not self.mapping.patterns or any(matches(pattern, record) for pattern in self.mapping.patterns)

    def _deliver(self, event: dict[str, Any]) -> None:
        for attempt in range(self.mapping.retries + 1):
            try:
                self.invoke(event)
                return
            except Exception as exc:
                self.log(f"stream batch failed (attempt {attempt + 1}): {type(exc).__name__}: {exc}")
        self.log("stream batch dropped after its retries (in AWS: sent to the on-failure destination)")


def stream_events(resource: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(table logical id, the event's properties) of each DynamoDB stream event of a function resource."""
    found = []
    for event in ((resource.get("Properties") or {}).get("Events") or {}).values():
        if event.get("Type") != "DynamoDB":
            continue
        properties = event.get("Properties") or {}
        stream = properties.get("Stream")
        table = stream.get("Fn::GetAtt", [None])[0] if isinstance(stream, Mapping) else None
        if isinstance(table, str):
            table = table.split(".")[0]
        if not table:
            raise ValueError(f"a DynamoDB event's Stream must be !GetAtt <Table>.StreamArn, not {stream!r}")
        found.append((table, properties))
    return found


def source_mapping(stream_arn: str, properties: Mapping[str, Any]) -> SourceMapping:
    """The mapping of a DynamoDB event's properties, for the stream the embedded AWS gave the table."""
    patterns = tuple(
        json.loads(entry["Pattern"]) if isinstance(entry.get("Pattern"), str) else entry["Pattern"]
        for entry in (properties.get("FilterCriteria") or {}).get("Filters") or ()
    )
    return SourceMapping(
        stream_arn=stream_arn,
        patterns=patterns,
        batch_size=int(properties.get("BatchSize", 100)),
        retries=int(properties.get("MaximumRetryAttempts", 2)),  # Lambda retries until the record expires; 2 here
        parallelization=int(properties.get("ParallelizationFactor", 1)),
    )
