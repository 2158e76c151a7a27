"""The Bedrock provider: Amazon Bedrock's Converse API, one request per chat turn."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, ReadTimeoutError

from sessions_api.dal import clients
from sessions_api.providers import ModelFailure, ModelReply, ModelRequest

# Worth retrying later (503 + Retry-After); anything else is a refusal of this request (502).
RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "ServiceUnavailableException",
        "ModelTimeoutException",
        "ModelNotReadyException",
        "InternalServerException",
        "ServiceQuotaExceededException",
    }
)


class BedrockConverseProvider:
    def model_for(self, requested: str) -> str:
        return requested

    def converse(self, request: ModelRequest) -> ModelReply:
        params: dict[str, Any] = {
            "modelId": request.model_id,
            "messages": [{"role": turn.role, "content": [{"text": turn.text}]} for turn in request.turns],
            "inferenceConfig": {"maxTokens": request.max_output_tokens, "temperature": request.temperature},
        }
        if request.system:
            params["system"] = [{"text": request.system}]
        try:
            response = clients.bedrock_runtime().converse(**params)
        except ClientError as exc:
            code = clients.error_code(exc) or "ClientError"
            message = exc.response.get("Error", {}).get("Message") or code
            raise ModelFailure(message, retryable=code in RETRYABLE_CODES, code=code) from exc
        except (ReadTimeoutError, ConnectionError) as exc:
            raise ModelFailure("Bedrock did not answer in time", retryable=True, code="Timeout") from exc
        except BotoCoreError as exc:
            raise ModelFailure(str(exc), retryable=True, code=type(exc).__name__) from exc
        blocks = ((response.get("output") or {}).get("message") or {}).get("content") or []
        text = "".join(block["text"] for block in blocks if "text" in block).strip()
        stop_reason = response.get("stopReason")
        if not text:
            raise ModelFailure(f"The model returned no text (stop reason {stop_reason})", retryable=False)
        usage = response.get("usage") or {}
        return ModelReply(
            text=text,
            model_id=request.model_id,
            input_tokens=int(usage.get("inputTokens", 0)),
            output_tokens=int(usage.get("outputTokens", 0)),
            latency_ms=(response.get("metrics") or {}).get("latencyMs"),
            stop_reason=stop_reason,
        )
