"""moto's transactions, made cheap on a large table without changing what they answer.

moto rolls a failed transaction back by restoring a deep copy of every table it touches, taken before
it starts: on a table of thousands of items each transaction then costs hundreds of milliseconds, so
the local stack slows down the longer it runs. Here only the items a transaction names are saved, and
only those are put back when it fails. Safe because the local AWS serves one request at a time.

It replaces moto internals, so `install()` refuses a moto it was not written and tested for.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import moto
from moto.dynamodb import models
from moto.dynamodb.models.table import Table

# The moto versions this shortcut was written and tested for (requirements-dev.txt pins one of them).
TESTED_MOTO_VERSIONS = ("5.2.5",)

_original_transact = models.DynamoDBBackend.transact_write_items


class UntestedMotoVersion(RuntimeError):
    """The installed moto is not one this shortcut was written for: its internals may have changed."""


class _CopyExceptTables:
    """The `copy` module as moto's backend sees it, except that tables are not copied."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _item_key(backend: Any, kind: str, operation: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    table_name = operation["TableName"]
    if kind != "Put":
        return table_name, operation["Key"]
    table = backend.get_table(table_name)
    names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
    return table_name, {name: operation["Item"][name] for name in names}


def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    saved = []
    for entry in transact_items:
        ((kind, operation),) = entry.items()
        try:
            table_name, key = _item_key(self, kind, operation)
            current = self.get_item(table_name, key)
        # A malformed operation: moto's own call below reports it.
        except Exception:  # noqa: S112  # nosec B112
            continue
        saved.append((table_name, key, copy.deepcopy(current.to_json()["Attributes"]) if current else None))
    try:
        _original_transact(self, transact_items)
    except Exception:
        for table_name, key, attributes in reversed(saved):
            if attributes is not None:
                self.put_item(table_name, attributes)
            elif self.get_item(table_name, key) is not None:
                self.delete_item(table_name, key)
        raise


def _check_moto_version() -> None:
    if moto.__version__ not in TESTED_MOTO_VERSIONS:
        raise UntestedMotoVersion(
            f"local/moto_fast.py patches moto internals and was written for moto {' or '.join(TESTED_MOTO_VERSIONS)}, "
            f"but moto {moto.__version__} is installed. Either install the pinned moto "
            "(pip install -r requirements-dev.txt), or check the shortcut against this moto's "
            "DynamoDBBackend.transact_write_items, update it and tests/unit/test_moto_fast.py, and then add "
            f"{moto.__version__} to TESTED_MOTO_VERSIONS in local/moto_fast.py."
        )


def install() -> None:
    """Patch moto's DynamoDB backend; raises UntestedMotoVersion on a moto not in TESTED_MOTO_VERSIONS."""
    _check_moto_version()
    models.copy = _CopyExceptTables()  # type: ignore[assignment]
    models.DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign]


@contextmanager
def installed() -> Iterator[None]:
    """`install()` for a while, then moto as it was (benchmarks on the in-process moto)."""
    saved = models.copy, models.DynamoDBBackend.transact_write_items
    install()
    try:
        yield
    finally:
        models.copy, models.DynamoDBBackend.transact_write_items = saved  # type: ignore[method-assign]
