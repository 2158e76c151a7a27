"""`make invoke FN=ExpiryFunction EVENT=events/schedule.json`: one invocation, like `sam local invoke -e`.

    python -m local.invoke FUNCTION [[-e] EVENT_FILE | -] [--template template.yaml]

It runs against the AWS of a running `make dev` (found through its state file), or else against a moto
server started for this invocation only. The function's logs go to stderr, its result (or Lambda's error
object) to stdout; the exit status is 1 when the invocation failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from local.aws import LocalAws, default_state_file, read_running_state, start_local_aws
from local.runtime import FunctionPool, lambda_environment
from local.template import functions, load_stack


def _read_event(source: str | None) -> Any:
    if source is None:
        return {}
    if source == "-":
        return json.load(sys.stdin)
    return json.loads(Path(source).read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.invoke", description="Invoke one function once.")
    parser.add_argument("function", help="logical id of the function in the template")
    parser.add_argument("event", nargs="?", help="JSON event file, or - for stdin (default: {})")
    parser.add_argument("-e", "--event", dest="event_option", metavar="EVENT", help="the same, as sam spells it")
    parser.add_argument("--template", type=Path, default=Path("template.yaml"))
    parser.add_argument("--state-file", type=Path, help="default: .local/stack.json next to the template")
    arguments = parser.parse_args(argv)

    stack = load_stack(arguments.template)
    state = read_running_state(arguments.state_file or default_state_file(stack))
    if state is not None:  # LIVE_CONNECTIONS_URL then names the running gateway's WebSocket API
        stack.local_apis.update(state.get("local_apis") or {})
    specs = {spec.logical_id: spec for spec in functions(stack)}
    if arguments.function not in specs:
        parser.error(f"no function {arguments.function!r}; the template has {', '.join(sorted(specs))}")
    event = _read_event(arguments.event_option or arguments.event)

    local_aws: LocalAws | None = None
    if state is None:
        print("No running `make dev` found: starting a moto server for this invocation only.", file=sys.stderr)
        local_aws = start_local_aws(stack)
        endpoint = local_aws.endpoint
    else:
        endpoint = state["aws_endpoint"]
    spec = specs[arguments.function]
    pool = FunctionPool(spec, lambda_environment(spec, endpoint), max_workers=1, stdout=sys.stderr)
    try:
        invocation = pool.invoke(event)
    finally:
        pool.close()
        if local_aws is not None:
            local_aws.stop()
    print(json.dumps(invocation.error if invocation.failed else invocation.result, indent=2))
    return 1 if invocation.failed else 0


if __name__ == "__main__":
    sys.exit(main())
