"""`make local-aws`: the embedded AWS alone, for `sam local start-api` / `sam local invoke` where Docker runs.

    python -m local.sam_local [--template template.yaml] [--host 0.0.0.0] [--port 4566] [--env-file .local/env.json]

Starts moto with the template's table and bucket and writes the `--env-vars` file of SAM CLI: each function's
variables as this stack resolves them (local table and bucket names), and LOCAL_AWS_ENDPOINT, which points
the functions at this server as their containers reach it (`host.docker.internal`). SAM CLI overrides only
variables the template declares, which is why LOCAL_AWS_ENDPOINT and DEV_USER_ID are declared there, empty.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from local.aws import start_local_aws
from local.template import Stack, functions, load_stack

CONTAINER_HOST = (
    "host.docker.internal"  # Docker Desktop; Linux: sam local ... --add-host host.docker.internal:host-gateway
)


def env_vars(stack: Stack, endpoint: str) -> dict[str, dict[str, Any]]:
    """SAM CLI's env.json: per function, every variable it declares, aimed at the embedded AWS."""
    return {
        spec.logical_id: {**spec.environment, "LOCAL_AWS_ENDPOINT": endpoint}
        for spec in functions(stack)
        if "LOCAL_AWS_ENDPOINT" in spec.environment
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m local.sam_local", description=__doc__.splitlines()[0])
    parser.add_argument("--template", type=Path, default=Path("template.yaml"))
    parser.add_argument("--host", default="0.0.0.0", help="where moto listens (containers must reach it)")  # noqa: S104  # nosec B104
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument("--env-file", type=Path, default=Path(".local/env.json"))
    parser.add_argument("--container-host", default=CONTAINER_HOST, help="this machine, as containers name it")
    arguments = parser.parse_args(argv)

    stack = load_stack(arguments.template)
    aws = start_local_aws(stack, arguments.host, arguments.port)
    port = aws.endpoint.rsplit(":", 1)[1]
    arguments.env_file.parent.mkdir(parents=True, exist_ok=True)
    variables = env_vars(stack, f"http://{arguments.container_host}:{port}")
    arguments.env_file.write_text(json.dumps(variables, indent=2) + "\n")
    stopped = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    print(f"AWS (moto) on {aws.endpoint}: {', '.join(aws.resources.values())}")
    print(f"Wrote {arguments.env_file}: sam local start-api --env-vars {arguments.env_file} (Ctrl-C to stop)")
    print(f"READY {aws.endpoint}", flush=True)
    stopped.wait()
    aws.stop()


if __name__ == "__main__":
    main()
