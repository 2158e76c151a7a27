"""A function's stdout as a developer reads it in the `make dev` terminal.

Lambda sends a function's stdout to CloudWatch Logs, where Powertools' JSON records and its metrics
(embedded metric format) are parsed. Locally every raw line goes to `<log dir>/<function>.log`, and the
terminal gets one readable line per log record and none for metrics. A worker's stderr (tracebacks, the
platform's own lines) is not touched.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import IO, Any

# What a record says beyond its level and message that helps to follow a request.
_SHOWN_KEYS = ("correlation_id", "user_id", "error", "exception")


def readable(function: str, line: str) -> str | None:
    """The terminal's line for one raw stdout line; None for a metrics record."""
    text = line.rstrip("\n")
    record: Any = None
    if text.startswith("{"):
        try:
            record = json.loads(text)
        except ValueError:
            record = None
    if not isinstance(record, dict):
        return f"  {function} | {text}"
    if "_aws" in record:
        return None
    level = record.get("level", "")
    extras = " ".join(f"{key}={record[key]}" for key in _SHOWN_KEYS if record.get(key))
    return f"  {function} | {level} {record.get('message', text)}" + (f" ({extras})" if extras else "")


def log(*fields: object) -> None:
    """One line of the terminal: the time, then what happened."""
    line = " ".join(map(str, (datetime.now().strftime("%H:%M:%S"), *fields)))
    sys.stdout.write(line + "\n")  # one write: lines of concurrent requests never mix
    sys.stdout.flush()


class FunctionLog:
    """The pipe a function's workers write their stdout to, read by a thread that files and prints it."""

    def __init__(self, function: str, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.function = function
        self._raw = (directory / f"{function}.log").open("a", encoding="utf-8")
        read_fd, write_fd = os.pipe()
        self.stream: IO[str] = os.fdopen(write_fd, "w")
        self._reader = os.fdopen(read_fd, "r", encoding="utf-8", errors="replace")
        self._thread = threading.Thread(target=self._pump, name=f"log-{function}", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        for line in self._reader:
            self._raw.write(line)
            self._raw.flush()
            shown = readable(self.function, line)
            if shown is not None:
                log(shown)

    def close(self) -> None:
        self.stream.close()  # workers are gone: the reader meets the end of the pipe
        self._thread.join(timeout=2)
        self._reader.close()
        self._raw.close()
