"""The pure parts of the partition-heat benchmark: DynamoDB's item sizes, capacity units and index writes, and
the heavy-tailed activity the model scales them by (benchmarks/partition_heat.py runs the routes)."""

from __future__ import annotations

import math

import pytest

from benchmarks import partition_heat as heat

TABLE = heat.Index("table", "PK", "SK", "ALL")
DUE = heat.Index("GSI3", "GSI3PK", "GSI3SK", "INCLUDE", frozenset({"status"}))
OWNER = heat.Index("GSI1", "GSI1PK", "GSI1SK", "ALL")
SCHEMA = heat.Schema(TABLE, (OWNER, DUE))


def session(**changes: dict[str, str]) -> heat.Item:
    item: heat.Item = {
        "PK": {"S": "SESSION#s1"},
        "SK": {"S": "#SESSION"},
        "GSI1PK": {"S": "OWNER#alice"},
        "GSI1SK": {"S": "2024-01-01T00:00:00.000Z#s1"},
        "GSI3PK": {"S": "DUE#2"},
        "GSI3SK": {"N": "1700000000"},
        "status": {"S": "active"},
        "title": {"S": "t"},
    }
    item.update(changes)
    return item


def test_an_item_is_its_attribute_names_and_values_as_dynamodb_counts_them() -> None:
    item = {
        "PK": {"S": "SESSION#abc"},  # 2 + 11
        "n": {"N": "12345"},  # 1 + 3 digit pairs + 1
        "ok": {"BOOL": True},  # 2 + 1
        "tags": {"L": [{"S": "a"}, {"S": "bc"}]},  # 4 + 3 + (1 + 1) + (1 + 2)
        "m": {"M": {"k": {"S": "v"}}},  # 1 + 3 + (1 + 1 + 1)
        "b": {"B": b"\x00\x01\x02"},  # 1 + 3 raw bytes
        "é": {"S": "é"},  # 2 + 2 (UTF-8)
    }
    assert heat.item_size(item) == 13 + 5 + 3 + 12 + 7 + 4 + 4


@pytest.mark.parametrize(
    ("number", "size"), [("1000", 2), ("0.0012", 2), ("-123.45", 4), ("1700000000", 2), ("123456789", 6)]
)
def test_a_number_is_a_byte_per_two_significant_digits_plus_one(number: str, size: int) -> None:
    assert heat.item_size({"n": {"N": number}}) == 1 + size


@pytest.mark.parametrize(("size", "units"), [(0, 1), (1, 1), (1024, 1), (1025, 2), (2048, 2), (2049, 3)])
def test_a_write_unit_is_1_kb_rounded_up(size: int, units: int) -> None:
    assert heat.write_units(size) == units


@pytest.mark.parametrize(("size", "units"), [(0, 1), (4096, 1), (4097, 2), (8192, 2), (8193, 3)])
def test_a_read_unit_is_4_kb_rounded_up(size: int, units: int) -> None:
    assert heat.read_units(size) == units


def test_an_index_key_change_is_a_delete_and_a_put() -> None:
    moved = heat.index_writes(session(), session(GSI3SK={"N": "1700086400"}), DUE, TABLE.keys)
    assert [(write.partition, write.units) for write in moved] == [("DUE#2", 1), ("DUE#2", 1)]


def test_a_projected_attribute_change_is_one_index_write_an_unprojected_one_none() -> None:
    assert len(heat.index_writes(session(), session(status={"S": "expired"}), DUE, TABLE.keys)) == 1
    assert heat.index_writes(session(), session(title={"S": "renamed"}), DUE, TABLE.keys) == []
    # an index projecting ALL takes every change
    assert len(heat.index_writes(session(), session(title={"S": "renamed"}), OWNER, TABLE.keys)) == 1


def test_entering_or_leaving_a_sparse_index_is_one_write() -> None:
    not_due = {name: value for name, value in session().items() if not name.startswith("GSI3")}
    assert len(heat.index_writes(not_due, session(), DUE, TABLE.keys)) == 1
    assert len(heat.index_writes(session(), not_due, DUE, TABLE.keys)) == 1
    assert heat.index_writes(not_due, not_due, DUE, TABLE.keys) == []


def test_an_index_write_is_billed_on_the_projected_item_not_the_whole_one() -> None:
    big = session(title={"S": "x" * 5000}, status={"S": "expired"})
    (write,) = heat.index_writes(session(), big, DUE, TABLE.keys)
    assert write.units == 1
    (write,) = heat.index_writes(session(), big, OWNER, TABLE.keys)
    assert write.units == 5


def test_a_transaction_doubles_the_table_write_but_not_the_index_writes() -> None:
    # Given a session item of just over 1 KB, renamed
    before = session(title={"S": "x" * 950})
    after = session(title={"S": "y" * 950})
    assert 1024 < heat.item_size(after) <= 2048
    key = {"PK": after["PK"], "SK": after["SK"]}
    snapshot: heat.Snapshot = {("SESSION#s1", "#SESSION"): before}
    changed: heat.Snapshot = {("SESSION#s1", "#SESSION"): after}
    # When the write is a single UpdateItem, a transaction's Update, or a transaction's ConditionCheck
    single = heat.write_capacity("UpdateItem", {"Key": key}, snapshot, changed, SCHEMA)
    transact = heat.write_capacity(
        "TransactWriteItems", {"TransactItems": [{"Update": {"Key": key}}]}, snapshot, changed, SCHEMA
    )
    check = heat.write_capacity(
        "TransactWriteItems", {"TransactItems": [{"ConditionCheck": {"Key": key}}]}, snapshot, snapshot, SCHEMA
    )
    # Then the table pays 2 WCU, 4 in a transaction (a check too), and GSI1 (ALL) 2 either way
    assert [(w.target, w.units) for w in single] == [("table", 2), ("GSI1", 2)]
    assert [(w.target, w.units) for w in transact] == [("table", 4), ("GSI1", 2)]
    assert [(w.target, w.units) for w in check] == [("table", 4)]


@pytest.mark.parametrize(("request_fields", "units"), [({}, 1.0), ({"ConsistentRead": True}, 2.0)])
def test_a_read_of_just_over_4_kb_is_two_units_half_of_that_eventually_consistent(
    request_fields: dict[str, bool], units: float
) -> None:
    item = session(title={"S": "x" * 4000})
    assert 4096 < heat.item_size(item) <= 8192
    body = {"Key": {"PK": item["PK"], "SK": item["SK"]}, **request_fields}
    reads = heat.read_capacity(
        "GetItem", body, {}, {("SESSION#s1", "#SESSION"): item}, SCHEMA, paged=False, partition_items=lambda *_: []
    )
    assert [(read.partition, read.units) for read in reads] == [("SESSION#s1", units)]


def test_a_query_reads_its_items_as_the_index_holds_them_from_the_partition_its_key_condition_names() -> None:
    item = session(title={"S": "x" * 5000})
    body = {
        "IndexName": "GSI3",
        "KeyConditionExpression": "#pk = :pk AND GSI3SK <= :now",
        "ExpressionAttributeNames": {"#pk": "GSI3PK"},
        "ExpressionAttributeValues": {":pk": {"S": "DUE#2"}, ":now": {"N": "1800000000"}},
    }
    response = {"Items": [heat.projected(item, DUE, TABLE.keys)], "ScannedCount": 1}
    (read,) = heat.read_capacity(
        "Query", body, response, {("SESSION#s1", "#SESSION"): item}, SCHEMA, paged=False, partition_items=lambda *_: []
    )
    assert (read.target, read.partition, read.units) == ("GSI3", "DUE#2", 0.5)


def test_the_most_active_user_is_the_top_quantile_of_the_heavy_tail_capped() -> None:
    x_min = heat.pareto_scale()
    # a small population's most active user is the 1 − 1/N quantile: x_min · N^(1/α), under the cap
    assert heat.top_activity(10) == pytest.approx(x_min * 10 ** (1 / heat.PARETO_ALPHA))
    assert heat.top_activity(10) < heat.top_activity(100) < heat.ACTIVITY_CAP
    # a large one reaches the cap
    assert heat.top_activity(10_000_000) == heat.ACTIVITY_CAP


def test_the_capped_activity_averages_one_mean_user() -> None:
    # E[min(X, cap)] by the inverse CDF, X = x_min · (1 − u)^(−1/α), midpoints of 200,000 slices of u
    x_min, alpha, cap, slices = heat.pareto_scale(), heat.PARETO_ALPHA, heat.ACTIVITY_CAP, 200_000
    mean = sum(min(cap, x_min * (1 - (n + 0.5) / slices) ** (-1 / alpha)) for n in range(slices)) / slices
    assert mean == pytest.approx(1, abs=2e-3)
    assert not math.isclose(x_min, 1)
