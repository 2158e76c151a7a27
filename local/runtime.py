"""Lambda execution environments on this machine: one worker process per warm environment.

A worker imports the function's handler once (its cold start) and then serves invocations one at a time,
with the function's own environment and sys.path. A `FunctionPool` grows workers on demand like Lambda
concurrency, replaces crashed or timed-out ones, and retires those whose code changed on disk.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess  # nosec B404  # workers are our own interpreter running local/bootstrap.py
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from local.template import ACCOUNT_ID, REGION, FunctionSpec

BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
ROLE_VARIABLE = "_LOCAL_ROLE"
# The Lambda runtime's own packages and nothing else (`make local-build` installs it): a function that needs
# a package its code directory and layers do not ship fails here as it would in AWS.
RUNTIME_PYTHON = Path(__file__).resolve().parents[1] / ".local" / "runtime" / "bin" / "python"
# moto's conventional fake credentials: no secret, and never the developer's own.
FAKE_CREDENTIAL = "testing"
INIT_TIMEOUT_SECONDS = 10.0  # Lambda's limit for the init phase
_SHUTTING_DOWN = {"errorType": "Runtime.Unavailable", "errorMessage": "the local stack is shutting down"}


@dataclass(frozen=True)
class Invocation:
    request_id: str
    result: Any = None
    error: dict[str, Any] | None = None  # Lambda's error object: errorType, errorMessage, stackTrace

    @property
    def failed(self) -> bool:
        return self.error is not None


class WorkerError(Exception):
    """A worker could not start: the error Lambda would report for the failed init."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error["errorMessage"])
        self.error = error


def lambda_environment(spec: FunctionSpec, aws_endpoint: str) -> dict[str, str]:
    """What a Lambda sandbox of `spec` sees in os.environ, with AWS calls going to `aws_endpoint`."""
    logging = {}
    if spec.log_format == "JSON":  # Lambda's advanced logging controls; Powertools' logger follows the level
        logging["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
        if spec.application_log_level:
            logging["AWS_LAMBDA_LOG_LEVEL"] = spec.application_log_level
    return {
        **spec.environment,
        **logging,
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "LAMBDA_TASK_ROOT": str(spec.code_dir),
        "_HANDLER": spec.handler,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime or 'python3.13'}",
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": FAKE_CREDENTIAL,
        "AWS_SECRET_ACCESS_KEY": FAKE_CREDENTIAL,
        "AWS_SESSION_TOKEN": FAKE_CREDENTIAL,
        "AWS_ENDPOINT_URL": aws_endpoint,
        # No profile or credentials of the developer's own may leak into the function.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        # What `sam local` sets; Powertools turns tracing off on seeing it.
        "AWS_SAM_LOCAL": "true",
        # The function's role, which local/bootstrap.py holds its calls to (and removes from its environment).
        ROLE_VARIABLE: json.dumps({"account": ACCOUNT_ID, "statements": list(spec.policy_statements)}),
    }


def code_stamp(spec: FunctionSpec) -> float:
    """The newest modification time of the function's and its layers' Python files."""
    newest = 0.0
    for directory in (spec.code_dir, *spec.layer_dirs):
        for root, subdirectories, files in os.walk(directory):
            subdirectories[:] = [name for name in subdirectories if name != "__pycache__"]
            for name in files:
                if name.endswith(".py"):
                    with contextlib.suppress(FileNotFoundError):
                        newest = max(newest, os.stat(os.path.join(root, name)).st_mtime)
    return newest


def _platform_log(request_id: str, message: str) -> None:
    """A line the Lambda platform itself would write to the function's log."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    print(f"{stamp}Z {request_id} {message}", file=sys.stderr, flush=True)


class Worker:
    """One execution environment: a Python process that has imported the handler."""

    def __init__(self, spec: FunctionSpec, environment: Mapping[str, str], stdout: IO[str] | None = None) -> None:
        if not spec.code_dir.is_dir():
            raise WorkerError(
                {
                    "errorType": "Runtime.InvalidEntrypoint",
                    "errorMessage": f"no code directory {spec.code_dir}",
                }
            )
        if not RUNTIME_PYTHON.exists():
            raise WorkerError(
                {
                    "errorType": "Runtime.InvalidRuntime",
                    "errorMessage": f"no local Lambda runtime at {RUNTIME_PYTHON}: run `make local-build`",
                }
            )
        self.spec = spec
        self.code_stamp = code_stamp(spec)
        log_stream = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        read_fd, write_fd = os.pipe()
        try:
            self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and bootstrap script  # nosec B603
                [str(RUNTIME_PYTHON), "-I", "-u", str(BOOTSTRAP), str(write_fd), str(spec.code_dir)]
                + [str(directory) for directory in spec.layer_dirs],
                stdin=subprocess.PIPE,
                stdout=stdout,
                env={**environment, "AWS_LAMBDA_LOG_STREAM_NAME": log_stream},
                cwd=spec.code_dir,
                pass_fds=(write_fd,),
                # Ctrl-C in the terminal is for the gateway, which stops its workers itself.
                start_new_session=True,
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        self._results = os.fdopen(read_fd, "rb")
        try:
            message = self._receive(time.monotonic() + INIT_TIMEOUT_SECONDS)
        except (TimeoutError, EOFError):
            code = self.kill()
            raise WorkerError(
                {"errorType": "Runtime.Unknown", "errorMessage": f"init failed (exit status {code})"}
            ) from None
        if "init_error" in message:
            self.kill()
            raise WorkerError(message["init_error"])

    @property
    def alive(self) -> bool:
        return self._process.poll() is None

    def invoke(self, event: Any, timeout: float) -> Invocation:
        request_id = str(uuid.uuid4())
        if timeout <= 0:  # the caller's deadline passed while this environment started
            return Invocation(request_id, error={"errorType": "Sandbox.Timedout", "errorMessage": "no time left"})
        request = {
            "event": event,
            "request_id": request_id,
            "deadline_ms": int((time.time() + timeout) * 1000),
            "function_arn": self.spec.arn,
        }
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(json.dumps(request).encode() + b"\n")
            self._process.stdin.flush()
            message = self._receive(time.monotonic() + timeout)
        except TimeoutError:
            self.kill()
            text = f"Task timed out after {timeout:.2f} seconds"
            _platform_log(request_id, text)
            return Invocation(request_id, error={"errorType": "Sandbox.Timedout", "errorMessage": text})
        except (EOFError, OSError, ValueError):  # the process died, or was killed while we waited
            code = self.kill()
            text = f"Runtime exited with error: exit status {code}"
            _platform_log(request_id, text)
            return Invocation(request_id, error={"errorType": "Runtime.ExitError", "errorMessage": text})
        if "error" in message:
            return Invocation(request_id, error=message["error"])
        return Invocation(request_id, result=message["result"])

    def _receive(self, deadline: float) -> dict[str, Any]:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([self._results], [], [], remaining)[0]:
            raise TimeoutError
        line = self._results.readline()
        if not line:
            raise EOFError
        message: dict[str, Any] = json.loads(line)
        return message

    def kill(self) -> int:
        """Stop the process (at once, as Lambda does with a sandbox); returns its exit status."""
        if self._process.poll() is None:
            self._process.kill()
        code = self._process.wait()
        with contextlib.suppress(OSError):
            if self._process.stdin is not None:
                self._process.stdin.close()
        self._results.close()
        return code


class FunctionPool:
    """A function's warm workers, started on demand up to `max_workers` concurrent invocations."""

    def __init__(
        self,
        spec: FunctionSpec,
        environment: Mapping[str, str],
        max_workers: int = 4,
        stdout: IO[str] | None = None,
    ) -> None:
        self.spec = spec
        self._environment = dict(environment)
        self._max_workers = max_workers
        self._stdout = stdout
        self._idle: list[Worker] = []
        self._workers: set[Worker] = set()
        self._starting = 0
        self._closed = False
        self._condition = threading.Condition()

    def invoke(self, event: Any, deadline: float | None = None) -> Invocation:
        """Run the function once, for at most its timeout, and never past `deadline` (time.monotonic()).

        A caller's deadline counts a cold start (API Gateway's 30 s run from the request, init included);
        the function's own timeout, as in Lambda, starts once its environment is initialised.
        """
        try:
            worker = self._acquire()
        except WorkerError as failure:
            return Invocation(str(uuid.uuid4()), error=failure.error)
        timeout = float(self.spec.timeout)
        if deadline is not None:
            timeout = min(timeout, deadline - time.monotonic())
        try:
            return worker.invoke(event, timeout)
        finally:
            self._release(worker)

    def warm(self) -> None:
        """Start one worker ahead of the first request (its init errors are in the log already)."""
        with contextlib.suppress(WorkerError):
            self._release(self._acquire())

    def close(self) -> None:
        with self._condition:
            self._closed = True
            workers = list(self._workers)
            self._condition.notify_all()
        for worker in workers:
            worker.kill()

    def _acquire(self) -> Worker:
        stamp = code_stamp(self.spec)
        with self._condition:
            while True:
                if self._closed:
                    raise WorkerError(_SHUTTING_DOWN)
                while self._idle:
                    worker = self._idle.pop()
                    if worker.alive and worker.code_stamp >= stamp:
                        return worker
                    self._discard(worker)  # crashed, or its code changed on disk: the next one reloads it
                if len(self._workers) + self._starting < self._max_workers:
                    self._starting += 1
                    break
                self._condition.wait()
        try:
            worker = Worker(self.spec, self._environment, self._stdout)
        except BaseException:
            with self._condition:
                self._starting -= 1
                self._condition.notify()
            raise
        with self._condition:
            self._starting -= 1
            if not self._closed:
                self._workers.add(worker)
                return worker
        worker.kill()
        raise WorkerError(_SHUTTING_DOWN)

    def _release(self, worker: Worker) -> None:
        with self._condition:
            if worker.alive and not self._closed:
                self._idle.append(worker)
            else:
                self._discard(worker)
            self._condition.notify()

    def _discard(self, worker: Worker) -> None:
        worker.kill()
        self._workers.discard(worker)
