"""One cold start, run in a fresh interpreter by benchmarks.cold_start (standard library only).

    python -I cold_child.py SPEC_JSON RESULT_FILE

SPEC: {"kind": "handler", "code_dir", "layer_dirs", "handler", "event"} or {"kind": "floor", "table", "key"}.
Writes {"import_ms", "first_ms", "status", "modules"} to RESULT_FILE; the target's own output goes nowhere.
"""

import importlib.abc
import json
import os
import sys
import sysconfig
import time

# What the Lambda Python runtime ships besides the standard library: its bytecode is there already.
RUNTIME_PACKAGES = {"boto3", "botocore", "s3transfer", "jmespath", "urllib3", "dateutil", "six"}


class Absent(importlib.abc.MetaPathFinder):
    """Packages this machine has but the Lambda runtime does not (botocore would pick them up)."""

    def __init__(self, names: list) -> None:
        self.names = set(names)

    def find_spec(self, name, path, target=None):
        if name.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return


def compile_cost() -> tuple:
    """(modules, ms) to compile the loaded modules a deployment package or layer ships without bytecode."""
    stdlib = sysconfig.get_paths()["stdlib"]
    count, seconds = 0, 0.0
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None) or ""
        if not path.endswith(".py") or path.startswith(stdlib) or name.partition(".")[0] in RUNTIME_PACKAGES:
            continue
        with open(path, "rb") as source:
            text = source.read()
        started = time.perf_counter()
        compile(text, path, "exec", dont_inherit=True)
        seconds += time.perf_counter() - started
        count += 1
    return count, seconds * 1000


class Context:
    function_name = "bench"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id = "cold-start"
    log_group_name = "/aws/lambda/bench"
    log_stream_name = "bench"
    function_version = "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def main() -> None:
    spec, result_file = json.loads(sys.argv[1]), sys.argv[2]
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # Powertools' metrics and logs
    sys.meta_path.insert(0, Absent(spec.get("absent", [])))
    started = time.perf_counter()
    if spec["kind"] == "floor":
        import boto3

        client = boto3.client("dynamodb")
        imported = time.perf_counter()
        response = client.get_item(TableName=spec["table"], Key=spec["key"], ConsistentRead=True)
        status = response["ResponseMetadata"]["HTTPStatusCode"]
    else:
        sys.path[0:0] = [spec["code_dir"], *spec["layer_dirs"]]
        module_name, _, function_name = spec["handler"].rpartition(".")
        module = __import__(module_name)
        handler = getattr(module, function_name)
        imported = time.perf_counter()
        result = handler(spec["event"], Context())
        status = result.get("statusCode") if isinstance(result, dict) else None
    done = time.perf_counter()
    result = {
        "import_ms": (imported - started) * 1000,
        "first_ms": (done - imported) * 1000,
        "status": status,
        "modules": len(sys.modules),
    }
    if spec.get("compile_cost"):
        result["compiled_modules"], result["compile_ms"] = compile_cost()
    with open(result_file, "w") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main()
