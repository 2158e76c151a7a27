"""The runtime loop of one local Lambda execution environment (a worker process).

Run as `python -I -u bootstrap.py RESULT_FD CODE_DIR [LAYER_DIR ...]` with the function's environment.
It imports the handler once, then takes invocations from stdin and answers on RESULT_FD, one JSON line
each, so stdout and stderr stay the function's own logs. Standard library only: the function's sys.path
is the code directory and its layers, nothing of the gateway. Its S3 and DynamoDB calls are held to the
role template.yaml gives it (local/iam.py, loaded by path), as IAM would hold them.
"""

import decimal
import importlib
import importlib.util
import json
import os
import sys
import time
import traceback
from typing import Any


class LambdaContext:
    """The context object of awslambdaric, the Python runtime's interface client."""

    def __init__(self, request_id: str, deadline_ms: int, invoked_function_arn: str) -> None:
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")  # a string there too
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.client_context = None
        self.identity = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(self._deadline_ms - int(time.time() * 1000), 0)


def _json_default(value: Any) -> Any:
    # The runtime serialises Decimal (what DynamoDB returns for numbers) as a JSON number.
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _error(exception: BaseException, error_type: str | None = None) -> dict[str, Any]:
    error = {
        "errorMessage": str(exception),
        "errorType": error_type or type(exception).__name__,
        "stackTrace": traceback.format_list(
            [frame for frame in traceback.extract_tb(exception.__traceback__) if frame.filename != __file__]
        ),
    }
    print(f"[ERROR] {error['errorType']}: {error['errorMessage']}", file=sys.stderr)
    traceback.print_exception(exception, file=sys.stderr)
    return error


def _load_handler(name: str) -> tuple[Any, dict[str, Any] | None]:
    """The handler function, or the error awslambdaric would report for the failed init."""
    module_name, _, function_name = name.rpartition(".")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except SyntaxError as exception:
        return None, _error(exception, "Runtime.UserCodeSyntaxError")
    except ImportError as exception:
        return None, _error(exception, "Runtime.ImportModuleError")
    except Exception as exception:
        return None, _error(exception)
    handler = getattr(module, function_name, None)
    if handler is None:
        missing = AttributeError(f"Handler '{function_name}' missing on module '{module_name}'")
        return None, _error(missing, "Runtime.HandlerNotFound")
    return handler, None


def _hold_to_role(role: dict[str, Any]) -> None:
    location = importlib.util.spec_from_file_location("_local_iam", os.path.join(os.path.dirname(__file__), "iam.py"))
    assert location is not None
    assert location.loader is not None
    iam = importlib.util.module_from_spec(location)
    sys.modules[location.name] = iam  # dataclasses look their module up
    location.loader.exec_module(iam)
    statements = iam.parse(role["statements"])
    iam.enforce(lambda: statements, region=os.environ["AWS_REGION"], account=role["account"])


def main() -> None:
    result_fd, code_dir, *layer_dirs = sys.argv[1:]
    role = os.environ.pop("_LOCAL_ROLE", None)
    if role is not None:
        _hold_to_role(json.loads(role))
    sys.path[0:1] = [code_dir, *layer_dirs]
    results = os.fdopen(int(result_fd), "w", encoding="utf-8")

    def send(message: str) -> None:
        results.write(message + "\n")
        results.flush()

    handler, init_error = _load_handler(os.environ["_HANDLER"])
    if init_error is not None:
        send(json.dumps({"init_error": init_error}))
        return
    send(json.dumps({"ready": True}))

    for line in sys.stdin:
        request = json.loads(line)
        context = LambdaContext(request["request_id"], request["deadline_ms"], request["function_arn"])
        try:
            result = handler(request["event"], context)
        except Exception as exception:
            send(json.dumps({"error": _error(exception)}))
            continue
        try:
            send(json.dumps({"result": result}, default=_json_default))
        except (TypeError, ValueError) as exception:
            send(json.dumps({"error": _error(exception, "Runtime.MarshalError")}))


if __name__ == "__main__":
    main()
