"""Streamed model replies: the local echo in timed chunks, and Bedrock's ConverseStream read through botocore.

Bedrock answers from a fake HTTP body in the event-stream framing, handed to botocore at `before-send`, so its
own parser builds the EventStream and raises error events as it would for Bedrock (Stubber cannot return an
EventStream); a failing call is stubbed with botocore's Stubber.
"""

from __future__ import annotations

import json
import struct
import time
import zlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.stub import Stubber
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from sessions_api.dal import clients
from sessions_api.dal.bedrock import BedrockConverseProvider
from sessions_api.providers import ModelFailure, ModelRequest, ToolCall, ToolResult, Turn, provider_for
from sessions_api.providers.local_echo import LocalEchoProvider
from sessions_api.settings import Settings

MODEL = "amazon.nova-lite-v1:0"


def request(message: str = "What should I see in Lisbon?", max_output_tokens: int = 1000) -> ModelRequest:
    return ModelRequest(
        model_id=MODEL,
        system="Be brief.",
        turns=[Turn("user", "Hi"), Turn("assistant", "Hello!"), Turn("user", message)],
        max_output_tokens=max_output_tokens,
    )


# -- the local echo -------------------------------------------------------------------------------------


@pytest.mark.parametrize("max_output_tokens", [1000, 5])
def test_the_local_stream_is_the_converse_reply_in_chunks(max_output_tokens: int) -> None:
    provider = LocalEchoProvider(chunk_delay_seconds=0)
    whole = provider.converse(request(max_output_tokens=max_output_tokens))
    # When the same request is streamed
    stream = provider.converse_stream(request(max_output_tokens=max_output_tokens))
    chunks = list(stream)
    # Then its chunks, none empty, join into exactly the text `converse` gives, with the same usage
    assert len(chunks) > 1 and all(chunks)
    assert "".join(chunks) == whole.text
    assert stream.reply is not None
    assert (stream.reply.text, stream.reply.input_tokens, stream.reply.output_tokens, stream.reply.stop_reason) == (
        whole.text,
        whole.input_tokens,
        whole.output_tokens,
        whole.stop_reason,
    )


def test_the_local_stream_pauses_between_chunks() -> None:
    stream = LocalEchoProvider(chunk_delay_seconds=0.02).converse_stream(request())
    began = time.perf_counter()
    chunks = list(stream)
    assert time.perf_counter() - began >= 0.02 * (len(chunks) - 1)


def test_a_stream_marker_adds_that_many_generated_words() -> None:
    # When the last user turn asks for a 1,000-word answer
    asked = request("Tell me everything [stream 1000]", max_output_tokens=2000)
    text = "".join(LocalEchoProvider(chunk_delay_seconds=0).converse_stream(asked))
    # Then the echo is followed by word1 … word1000, which `converse` answers too
    echo, generated = text.rsplit("\n\n", 1)
    assert echo.startswith("Echo: Tell me everything [stream 1000]")
    assert generated.split() == [f"word{number}" for number in range(1, 1001)]
    assert LocalEchoProvider().converse(asked).text == text


def test_a_long_stream_still_honours_the_output_allowance() -> None:
    stream = LocalEchoProvider(chunk_delay_seconds=0).converse_stream(request("[stream 20000]", max_output_tokens=50))
    assert len("".join(stream).split()) == 50


def test_closing_the_local_stream_stops_it_without_a_reply() -> None:
    stream = LocalEchoProvider(chunk_delay_seconds=0).converse_stream(request("long [stream 400]"))
    received = []
    for chunk in stream:
        received.append(chunk)
        if len(received) == 2:
            stream.close()
    assert len(received) == 2
    assert stream.reply is None


def test_the_local_provider_paces_its_chunks_by_the_setting() -> None:
    settings = Settings(table_name="t", bucket_name="b", model_provider="local", local_stream_delay_ms=7)
    provider = provider_for(settings)
    assert isinstance(provider, LocalEchoProvider) and provider.chunk_delay_seconds == 0.007


# -- Bedrock ConverseStream ----------------------------------------------------------------------------


def frame(headers: dict[str, str], payload: dict[str, Any]) -> bytes:
    """One message of the event-stream framing Bedrock streams in: prelude, string headers, JSON, CRCs."""
    encoded_headers = b"".join(
        struct.pack("!B", len(name)) + name.encode() + struct.pack("!BH", 7, len(value)) + value.encode()
        for name, value in headers.items()
    )
    body = json.dumps(payload).encode()
    prelude = struct.pack("!II", 16 + len(encoded_headers) + len(body), len(encoded_headers))
    message = prelude + struct.pack("!I", zlib.crc32(prelude)) + encoded_headers + body
    return message + struct.pack("!I", zlib.crc32(message))


def event(kind: str, payload: dict[str, Any]) -> bytes:
    return frame({":message-type": "event", ":event-type": kind, ":content-type": "application/json"}, payload)


def error_event(kind: str) -> bytes:
    headers = {":message-type": "exception", ":exception-type": kind, ":content-type": "application/json"}
    return frame(headers, {"message": f"injected {kind}"})


def text_delta(text: str) -> bytes:
    return event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": text}})


START = event("messageStart", {"role": "assistant"})
END = [
    event("contentBlockStop", {"contentBlockIndex": 0}),
    event("messageStop", {"stopReason": "end_turn"}),
    event(
        "metadata", {"usage": {"inputTokens": 21, "outputTokens": 7, "totalTokens": 28}, "metrics": {"latencyMs": 345}}
    ),
]


class Body:
    """The HTTP body botocore reads the stream from: one frame at a time, then (optionally) a transport error."""

    def __init__(self, frames: list[bytes], failure: Exception | None = None) -> None:
        self.frames = frames
        self.failure = failure
        self.read = 0
        self.closed = False

    def stream(self, **_: Any) -> Iterator[bytes]:
        for data in self.frames:
            if self.closed:
                return
            self.read += 1
            yield data
        if self.failure:
            raise self.failure

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def bedrock() -> Iterator[dict[str, Any]]:
    """A fresh Bedrock Runtime client whose ConverseStream answers with `answer["body"]`; the request it sent
    is noted in `answer["request"]`."""
    clients.reset()
    answer: dict[str, Any] = {}

    def respond(request: Any, **_: Any) -> AWSResponse:
        answer["request"] = request
        headers = HTTPHeaders.from_dict({"content-type": "application/vnd.amazon.eventstream"})
        return AWSResponse("https://bedrock-runtime.invalid", 200, headers, answer["body"])

    clients.bedrock_runtime().meta.events.register_first("before-send.bedrock-runtime.ConverseStream", respond)
    yield answer
    clients.reset()


def test_bedrock_streams_text_deltas_then_the_reply_with_its_usage(bedrock: dict[str, Any]) -> None:
    # Given Bedrock answering in three text deltas, one tool-use delta among them
    tool_use = event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{}"}}})
    bedrock["body"] = Body([START, text_delta("Lisbon "), text_delta("has "), tool_use, text_delta("trams."), *END])
    # When the reply is streamed
    stream = BedrockConverseProvider().converse_stream(request())
    deltas = list(stream)
    # Then the text deltas come as they were sent, and the reply carries the text, usage and stop reason
    assert deltas == ["Lisbon ", "has ", "trams."]
    assert stream.reply is not None
    assert stream.reply.text == "Lisbon has trams."
    assert (stream.reply.model_id, stream.reply.input_tokens, stream.reply.output_tokens) == (MODEL, 21, 7)
    assert (stream.reply.latency_ms, stream.reply.stop_reason) == (345, "end_turn")
    # And Bedrock was asked as Converse asks it: system prompt, turns, output allowance
    sent = bedrock["request"]
    assert unquote(sent.url).endswith(f"/model/{MODEL}/converse-stream")
    assert json.loads(sent.body) == {
        "system": [{"text": "Be brief."}],
        "messages": [
            {"role": "user", "content": [{"text": "Hi"}]},
            {"role": "assistant", "content": [{"text": "Hello!"}]},
            {"role": "user", "content": [{"text": "What should I see in Lisbon?"}]},
        ],
        "inferenceConfig": {"maxTokens": 1000, "temperature": 0.5},
    }


@pytest.mark.parametrize(
    ("kind", "code", "retryable"),
    [
        ("throttlingException", "ThrottlingException", True),
        ("serviceUnavailableException", "ServiceUnavailableException", True),
        ("internalServerException", "InternalServerException", True),
        ("modelStreamErrorException", "ModelStreamErrorException", False),
        ("validationException", "ValidationException", False),
    ],
)
def test_an_error_event_mid_stream_is_a_model_failure(
    bedrock: dict[str, Any], kind: str, code: str, retryable: bool
) -> None:
    bedrock["body"] = Body([START, text_delta("Lisbon "), error_event(kind), text_delta("never read"), *END])
    stream = BedrockConverseProvider().converse_stream(request())
    deltas: list[str] = []
    with pytest.raises(ModelFailure) as failed:
        deltas.extend(stream)
    assert deltas == ["Lisbon "]
    assert (failed.value.code, failed.value.retryable, failed.value.reason) == (code, retryable, f"injected {kind}")
    assert stream.reply is None


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        (ReadTimeoutError(None, None, "Read timed out."), "Timeout"),  # type: ignore[arg-type]
        (ProtocolError("Connection broken"), "ProtocolError"),
    ],
)
def test_a_broken_connection_mid_stream_is_a_retryable_failure(
    bedrock: dict[str, Any], failure: Exception, code: str
) -> None:
    bedrock["body"] = Body([START, text_delta("Lisbon ")], failure=failure)
    with pytest.raises(ModelFailure) as failed:
        list(BedrockConverseProvider().converse_stream(request()))
    assert (failed.value.code, failed.value.retryable) == (code, True)


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        ("ThrottlingException", True),
        ("ModelTimeoutException", True),
        ("ModelNotReadyException", True),
        ("AccessDeniedException", False),
    ],
)
def test_a_refused_call_is_a_model_failure_before_any_delta(error: str, retryable: bool) -> None:
    clients.reset()
    with Stubber(clients.bedrock_runtime()) as stubber:
        stubber.add_client_error("converse_stream", service_error_code=error, service_message="the model said no")
        with pytest.raises(ModelFailure) as failed:
            BedrockConverseProvider().converse_stream(request())
    clients.reset()
    assert (failed.value.code, failed.value.retryable, failed.value.reason) == (error, retryable, "the model said no")


def test_a_stream_without_text_is_a_refusal(bedrock: dict[str, Any]) -> None:
    bedrock["body"] = Body([START, text_delta(""), *END])
    stream = BedrockConverseProvider().converse_stream(request())
    with pytest.raises(ModelFailure) as failed:
        list(stream)
    assert failed.value.retryable is False and "no text" in failed.value.reason
    assert stream.reply is None


def test_closing_a_bedrock_stream_stops_reading_and_closes_the_connection(bedrock: dict[str, Any]) -> None:
    body = Body([START, text_delta("Lisbon "), text_delta("has "), text_delta("trams."), *END])
    bedrock["body"] = body
    stream = BedrockConverseProvider().converse_stream(request())
    deltas = []
    for delta in stream:
        deltas.append(delta)
        stream.close()
    assert deltas == ["Lisbon "]
    assert body.closed and body.read == 2, "nothing is read after the close"
    assert stream.reply is None


# -- tool use ----------------------------------------------------------------------------------------------


def tool_use_frames(call_id: str, name: str, fragments: list[str]) -> list[bytes]:
    """A tool call as ConverseStream sends it: a block started with the tool's name and id, its input as JSON
    fragments, the block stopped; then the message stops for tool use."""
    return [
        event(
            "contentBlockStart", {"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": call_id, "name": name}}}
        ),
        *(
            event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": fragment}}})
            for fragment in fragments
        ),
        event("contentBlockStop", {"contentBlockIndex": 1}),
        event("messageStop", {"stopReason": "tool_use"}),
        event("metadata", {"usage": {"inputTokens": 50, "outputTokens": 40, "totalTokens": 90}, "metrics": {}}),
    ]


def test_bedrock_streams_a_tool_call_whose_input_comes_in_fragments(bedrock: dict[str, Any]) -> None:
    from sessions_api.agents import AGENTS, tools_of

    # Given Bedrock announcing a deck, then calling write_slides with its input split mid-string
    deck = {"slides": [{"slide_id": "s1", "html": "<h1>Tides</h1>"}], "css": "h1 { color: red }"}
    encoded = json.dumps(deck)
    fragments = [encoded[:7], encoded[7:30], encoded[30:]]
    intro = [START, text_delta("Writing it."), event("contentBlockStop", {"contentBlockIndex": 0})]
    bedrock["body"] = Body([*intro, *tool_use_frames("tooluse_abc", "write_slides", fragments)])
    tools = tools_of(AGENTS["slides"])
    asked = ModelRequest(MODEL, "Make decks.", [Turn("user", "One slide on tides")], 2000, tools=tools)
    # When the reply is streamed
    stream = BedrockConverseProvider().converse_stream(asked)
    # (an empty delta for each piece of the tool's input: the model is alive, the run renews its lease)
    assert list(stream) == ["Writing it.", "", "", ""]
    # Then the reply carries the call, its input whole, and stops for the tool
    assert stream.reply is not None
    assert stream.reply.tool_calls == (ToolCall("tooluse_abc", "write_slides", deck),)
    assert (stream.reply.text, stream.reply.stop_reason, stream.reply.output_tokens) == ("Writing it.", "tool_use", 40)
    # And the tool was offered as Converse's toolConfig, with the deck's own schema, self-contained
    sent = json.loads(bedrock["request"].body)
    (spec,) = sent["toolConfig"]["tools"]
    assert spec["toolSpec"]["name"] == "write_slides"
    schema = spec["toolSpec"]["inputSchema"]["json"]
    assert schema["properties"]["slides"]["items"]["required"] == ["slide_id", "html"]
    assert "$ref" not in json.dumps(schema) and "$defs" not in schema


def test_the_tool_s_result_goes_back_to_bedrock_after_the_call_it_answers(bedrock: dict[str, Any]) -> None:
    from sessions_api.agents import AGENTS, tools_of

    # Given a conversation in which the model called the tool and the tool answered
    call = ToolCall("tooluse_abc", "write_slides", {"slides": []})
    answered = [
        Turn("user", "Slides on tides"),
        Turn("assistant", "Writing it.", (call,)),
        Turn("user", "", tool_results=(ToolResult("tooluse_abc", {"status": "written", "version": 3}),)),
    ]
    bedrock["body"] = Body([START, text_delta("Done: one slide."), *END])
    asked = ModelRequest(MODEL, "Make decks.", answered, 500, tools=tools_of(AGENTS["slides"]))
    # When the model is asked again
    stream = BedrockConverseProvider().converse_stream(asked)
    assert "".join(stream) == "Done: one slide."
    # Then Bedrock saw the call and its result as Converse's content blocks, the tools still offered
    sent = json.loads(bedrock["request"].body)
    assert sent["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"text": "Writing it."},
                {"toolUse": {"toolUseId": "tooluse_abc", "name": "write_slides", "input": {"slides": []}}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "toolResult": {
                        "toolUseId": "tooluse_abc",
                        "content": [{"json": {"status": "written", "version": 3}}],
                        "status": "success",
                    }
                }
            ],
        },
    ]
    assert "toolConfig" in sent


def test_a_tool_input_that_is_not_json_is_kept_for_the_tool_to_refuse(bedrock: dict[str, Any]) -> None:
    bedrock["body"] = Body([START, *tool_use_frames("t1", "write_slides", ['{"slides": [', "oops"])])
    stream = BedrockConverseProvider().converse_stream(request())
    assert list(stream) == ["", ""]
    assert stream.reply is not None and stream.reply.tool_calls == (ToolCall("t1", "write_slides", '{"slides": [oops'),)
    bedrock["body"] = Body([START, *tool_use_frames("t2", "write_slides", ['{"n": NaN}'])])
    nan = BedrockConverseProvider().converse_stream(request())
    list(nan)
    assert nan.reply is not None and nan.reply.tool_calls[0].input == '{"n": NaN}'
    # And sent back, it is an object Converse accepts, showing what the model sent
    from sessions_api.dal.bedrock import _params

    turn = Turn("assistant", "", stream.reply.tool_calls)
    (block,) = _params(ModelRequest(MODEL, "", [Turn("user", "x"), turn], 10))["messages"][1]["content"]
    assert block["toolUse"]["input"] == {"unparsed_input": '{"slides": [oops'}
