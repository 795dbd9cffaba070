"""Chat model back-ends that stream: any OpenAI-compatible chat-completions API (OpenAI, vLLM,
llama.cpp server, Ollama, ...) and the Anthropic Messages API. Pure module (no Django)."""

import json
import logging
import os

from .config import AgentConfig, Budget, Usage, estimate_tokens
from .errors import AgentError, AgentUnavailable
from .streaming import RetryPolicy, post_events, with_retries

DEFAULT_MAX_TOKENS = 1024
log = logging.getLogger(__name__)


class ChatModel:
    """stream(system, user) yields text deltas; retries, budget and token counts are handled here,
    the wire format in the subclasses."""

    def __init__(self, config: AgentConfig, budget: Budget | None = None):
        self.config = config
        self.budget = budget or Budget(config)
        self.policy = RetryPolicy(config.attempts, config.retry_base_delay, config.retry_max_delay)

    @property
    def name(self) -> str:
        return self.config.model

    def stream(self, system: str, user: str, on_retry=None):
        allowance = self.budget.output_allowance(system + user)
        requested = self.config.parameters.get(self._max_tokens_name(), DEFAULT_MAX_TOKENS)
        max_tokens = requested if allowance is None else min(requested, allowance)
        usage = Usage()

        def attempt():
            usage.input_tokens = usage.output_tokens = 0
            written = []
            url, headers, body = self.request(system, user, max_tokens)
            for delta in self.deltas(post_events(url, headers, body, self.config.timeout_s), usage):
                written.append(delta)
                self.budget.check_output(allowance, estimate_tokens("".join(written)))
                yield delta
            if not usage.output_tokens:  # the server sent no counts
                usage.input_tokens = estimate_tokens(system + user)
                usage.output_tokens = estimate_tokens("".join(written))

        yield from with_retries(attempt, self.policy, on_retry)
        self.budget.charge(usage)

    def complete(self, system: str, user: str, on_retry=None) -> str:
        return "".join(self.stream(system, user, on_retry))

    def api_key(self) -> str | None:
        name = self.config.key_env()
        if name is None:
            return None
        key = os.environ.get(name)
        if not key:
            raise AgentError(
                "missing_api_key",
                f"the {self.config.backend} back-end has no API key: the server's "
                f"operator must set the environment variable it names",
            )
        return key

    def _max_tokens_name(self) -> str:
        return "max_tokens"

    def request(self, system: str, user: str, max_tokens: int) -> tuple[str, dict, dict]:
        raise NotImplementedError

    def deltas(self, events, usage: Usage):
        raise NotImplementedError


def _json(data: str) -> dict:
    try:
        return json.loads(data)
    except ValueError:
        log.warning("model server sent an event that is not JSON: %r", data[:300])
        raise AgentUnavailable("bad_stream", "the model server sent an event that is not JSON") from None


class OpenAIChat(ChatModel):
    """POST {base_url}/chat/completions with stream=true; `data:` lines carry
    choices[0].delta.content, and a final `data: [DONE]`."""

    def _max_tokens_name(self) -> str:
        # Newer OpenAI models take max_completion_tokens instead; use it if the parameters do.
        return "max_completion_tokens" if "max_completion_tokens" in self.config.parameters else "max_tokens"

    def request(self, system, user, max_tokens):
        headers = {}
        key = self.api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        body = {
            **self.config.parameters,
            "model": self.config.model,
            "stream": True,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            self._max_tokens_name(): max_tokens,
        }
        if self.config.endpoint.stream_usage:
            body["stream_options"] = {"include_usage": True}
        return f"{self.config.url()}/chat/completions", headers, body

    def deltas(self, events, usage):
        for _, data in events:
            if data.strip() == "[DONE]":
                return
            chunk = _json(data)
            if chunk.get("error"):
                log.warning("model server reported an error in the stream: %r", chunk["error"])
                raise AgentUnavailable("stream_error", "the model server reported an error in the stream")
            if chunk.get("usage"):
                usage.input_tokens = int(chunk["usage"].get("prompt_tokens") or 0)
                usage.output_tokens = int(chunk["usage"].get("completion_tokens") or 0)
            for choice in chunk.get("choices") or []:
                content = (choice.get("delta") or {}).get("content")
                if choice.get("index", 0) == 0 and content:
                    yield content
        raise AgentUnavailable("stream_cut", "the stream ended before [DONE]")


class AnthropicMessages(ChatModel):
    """POST {base_url}/messages with stream=true; text arrives in content_block_delta events,
    token counts in message_start and message_delta, and the end in message_stop."""

    TRANSIENT = {"overloaded_error", "api_error", "rate_limit_error", "timeout_error"}
    KNOWN_ERRORS = TRANSIENT | {
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "not_found_error",
        "request_too_large",
    }

    def request(self, system, user, max_tokens):
        headers = {"x-api-key": self.api_key() or "", "anthropic-version": self.config.endpoint.anthropic_version}
        body = {
            **self.config.parameters,
            "model": self.config.model,
            "stream": True,
            "system": system,
            "messages": [{"role": "user", "content": user}],
            "max_tokens": max_tokens,
        }
        return f"{self.config.url()}/messages", headers, body

    def deltas(self, events, usage):
        for event, data in events:
            message = _json(data)
            kind = message.get("type", event)
            if kind == "message_start":
                usage.input_tokens = int((message.get("message") or {}).get("usage", {}).get("input_tokens") or 0)
            elif kind == "content_block_delta":
                delta = message.get("delta") or {}
                if delta.get("type", "text_delta") == "text_delta" and delta.get("text"):
                    yield delta["text"]
            elif kind == "message_delta":
                usage.output_tokens = int((message.get("usage") or {}).get("output_tokens") or 0)
            elif kind == "message_stop":
                return
            elif kind == "error":
                error = message.get("error") or {}
                log.warning("Anthropic API reported an error in the stream: %r", error)
                kind = error.get("type") if error.get("type") in self.KNOWN_ERRORS else "an error"
                text = f"the Anthropic API reported {kind}"
                if error.get("type") in self.TRANSIENT:
                    raise AgentUnavailable("stream_error", text)
                raise AgentError("stream_error", text)
        raise AgentUnavailable("stream_cut", "the stream ended before message_stop")


def chat_model(config: AgentConfig, budget: Budget | None = None) -> ChatModel:
    if config.kind == "openai":
        return OpenAIChat(config, budget)
    if config.kind == "anthropic":
        return AnthropicMessages(config, budget)
    raise AgentError("bad_agent_config", f"{config.backend!r} is not a chat model back-end")
