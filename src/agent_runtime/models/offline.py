"""The offline chat model: a deterministic LLM stand-in so examples and tests need no network.

It owns the reply rules, token-by-token streaming and usage reporting; it never calls out.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, Literal

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import PrivateAttr, field_validator

# A token is one whitespace-separated word plus the whitespace after it, so joining the streamed
# chunks gives back the exact text and the chunk count equals the word count used for usage.
_TOKEN = re.compile(r"\S+\s*|\s+")
_ARITHMETIC_RUN = re.compile(r"[\d.\s+\-*/%()]+")
_HAS_OPERATION = re.compile(r"\d[\s()]*(?:\*\*|//|[-+*/%])[\s()+-]*[\d.]")
_TIME_WORD = re.compile(r"\btime\b", re.IGNORECASE)
_TIMEZONE = re.compile(r"\b(UTC|[A-Z][A-Za-z_]+/[A-Za-z_]+(?:/[A-Za-z_]+)?)\b")


class OfflineChatModel(BaseChatModel):
    """A deterministic stand-in for an LLM; it is not a language model and does not reason.

    Replies, in order of precedence:

    - Scripted: with `responses`, it returns them one per call, in order, and raises
      `ValueError` once they run out.
    - After tool results (the last message is a `ToolMessage`): one sentence per result,
      `"The result is <content>."` or `"The <tool> call failed: <content>"`.
    - Tool calls, only when tools are bound and the last message is a `HumanMessage`; for each
      bound tool, in bind order, the first rule that matches the human text:
        1. the tool's name followed by a JSON object -> those arguments;
        2. `calculator`: a run of numbers and operators such as `2 + 3` or `2*3`
           -> `{"expression": "2 + 3"}`;
        3. `current_time`: the word "time" -> `{}`, or `{"timezone": "Asia/Tokyo"}` when an
           IANA zone (`Area/City`) or `UTC` is named;
        4. the tool's name as a word -> `{}`.
      Call ids are `call_<number of input messages>_<index in the reply>`.
    - Otherwise an echo: `"[offline model] You said: <last human text>"`.

    Usage counts tokens as whitespace-separated words: input is every input message's text
    (plus tool-call names and JSON arguments), output the reply's. Message ids are left to
    LangChain, which gives every chunk of one reply the run's id (`lc_run-<uuid>`).
    """

    model_name: str = "offline"
    """Reported in `response_metadata["model_name"]`, which keys per-model usage."""
    responses: list[AIMessage | str] | None = None
    """A script of replies, returned in order instead of the rules above; strings become
    `AIMessage`s."""
    delay_per_token: float = 0.0
    """Seconds to sleep before each streamed chunk after the first."""

    _cursor: int = PrivateAttr(default=0)

    @field_validator("responses", mode="before")
    @classmethod
    def _wrap_strings(cls, value: Any) -> Any:
        # Done before validation: pydantic would otherwise try a str against AIMessage's own
        # validator, which fails with AttributeError rather than a validation error. The field
        # still admits str so that type checkers accept `responses=["text"]`.
        if isinstance(value, list):
            return [AIMessage(content=item) if isinstance(item, str) else item for item in value]
        return value

    @property
    def _llm_type(self) -> str:
        return "agent-runtime-offline"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "offline"
        params["ls_model_name"] = self.model_name
        return params

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools in OpenAI format; `tool_choice` is accepted and ignored."""
        formatted = [convert_to_openai_tool(tool) for tool in tools]
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return self.bind(tools=formatted, **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        reply = self._reply(messages, kwargs.get("tools"))
        message = reply.model_copy(
            update={
                "usage_metadata": self._usage(messages, reply),
                "response_metadata": self._metadata(reply),
            }
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._generate(messages, stop, **kwargs)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for index, chunk in enumerate(self._chunks(messages, kwargs.get("tools"))):
            if index and self.delay_per_token > 0:
                time.sleep(self.delay_per_token)
            if run_manager:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for index, chunk in enumerate(self._chunks(messages, kwargs.get("tools"))):
            if index and self.delay_per_token > 0:
                await asyncio.sleep(self.delay_per_token)
            if run_manager:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    def _chunks(
        self, messages: list[BaseMessage], tools: list[dict[str, Any]] | None
    ) -> list[ChatGenerationChunk]:
        reply = self._reply(messages, tools)
        content = reply.content
        chunks = [
            AIMessageChunk(content=piece, id=reply.id)
            for piece in (_TOKEN.findall(content) if isinstance(content, str) else [content])
            if piece
        ]
        if reply.tool_calls:
            calls = [
                tool_call_chunk(
                    name=call["name"], args=json.dumps(call["args"]), id=call["id"], index=i
                )
                for i, call in enumerate(reply.tool_calls)
            ]
            chunks.append(AIMessageChunk(content="", id=reply.id, tool_call_chunks=calls))
        last = chunks.pop() if chunks else AIMessageChunk(content="", id=reply.id)
        # Usage and metadata go on the last chunk only: merging chunks adds usage and
        # concatenates string metadata, so repeating them would double-count.
        chunks.append(
            last.model_copy(
                update={
                    "usage_metadata": self._usage(messages, reply),
                    "response_metadata": self._metadata(reply),
                    "chunk_position": "last",
                }
            )
        )
        return [ChatGenerationChunk(message=chunk) for chunk in chunks]

    def _reply(self, messages: list[BaseMessage], tools: list[dict[str, Any]] | None) -> AIMessage:
        if self.responses is not None:
            return self._next_scripted(self.responses)
        last = messages[-1] if messages else None
        if isinstance(last, ToolMessage):
            return AIMessage(content=_summarise_tool_results(messages))
        text = _last_human_text(messages)
        if isinstance(last, HumanMessage) and tools:
            names = [tool["function"]["name"] for tool in tools]
            calls = _match_tool_calls(text, names, prefix=f"call_{len(messages)}")
            if calls:
                return AIMessage(content="", tool_calls=calls)
        if text is None:
            return AIMessage(content="[offline model] There is no human message to answer.")
        return AIMessage(content=f"[offline model] You said: {text}")

    def _next_scripted(self, responses: list[AIMessage | str]) -> AIMessage:
        if self._cursor >= len(responses):
            raise ValueError(f"OfflineChatModel script exhausted after {len(responses)} responses")
        response = responses[self._cursor]
        self._cursor += 1
        return AIMessage(content=response) if isinstance(response, str) else response

    def _usage(self, messages: list[BaseMessage], reply: AIMessage) -> UsageMetadata:
        if reply.usage_metadata is not None:
            return reply.usage_metadata
        input_tokens = _PROMPT_COUNTS.count(messages)
        output_tokens = _count_tokens(reply)
        return UsageMetadata(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            total_tokens=input_tokens + output_tokens,
        )

    def _metadata(self, reply: AIMessage) -> dict[str, Any]:
        finish_reason: Literal["stop", "tool_calls"] = "tool_calls" if reply.tool_calls else "stop"
        # A script may pin its own metadata (say finish_reason "length"); it wins.
        return {
            "model_name": self.model_name,
            "finish_reason": finish_reason,
            **reply.response_metadata,
        }


class _PromptCounts:
    """The input token counts of the prompts seen last, so that a conversation's next prompt
    (a system prompt made anew, then the conversation so far and what it added) counts only
    the messages it added: walking 600 messages scattered in memory costs a third of a
    millisecond even with each text's word count remembered (`_count_words`).

    A prompt is found by the first message after a leading system prompt, and its entry used
    only while the new prompt starts with the same messages (a pointer comparison). A message
    changed in place inside that prefix keeps its old count: LangGraph's state is changed by
    returning updates, and an edit arrives as a new message object."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: dict[int, tuple[list[BaseMessage], int]] = {}
        self._lock = threading.Lock()

    def count(self, messages: Sequence[BaseMessage]) -> int:
        head = 1 if messages and isinstance(messages[0], SystemMessage) else 0
        total = sum(_count_tokens(message) for message in messages[:head])
        body = list(messages[head:])
        if not body:
            return total
        with self._lock:
            known = self._entries.get(id(body[0]))
        start, counted = 0, 0
        if known is not None and len(known[0]) <= len(body) and body[: len(known[0])] == known[0]:
            start, counted = len(known[0]), known[1]
        counted += sum(_count_tokens(message) for message in body[start:])
        with self._lock:
            self._entries.pop(id(body[0]), None)
            self._entries[id(body[0])] = (body, counted)
            if len(self._entries) > self._size:
                del self._entries[next(iter(self._entries))]
        return total + counted


_PROMPT_COUNTS = _PromptCounts(64)


def _count_tokens(message: BaseMessage) -> int:
    # A string is what `.text` would return, without its content-block machinery.
    content = message.content
    count = _count_words(content if isinstance(content, str) else message.text)
    if _calls_tools(type(message)):
        for call in message.tool_calls:  # type: ignore[attr-defined]
            count += 1 + len(json.dumps(call["args"]).split())
    return count


@functools.cache
def _calls_tools(kind: type[BaseMessage]) -> bool:
    # By type: isinstance on a pydantic model class costs about a microsecond.
    return issubclass(kind, AIMessage)


@functools.lru_cache(maxsize=8192)
def _count_words(text: str) -> int:
    # Every call counts the whole conversation; remembering each message's count keeps the
    # stand-in model's own cost from growing with the thread, as a hosted model's would not.
    return len(text.split())


def _last_human_text(messages: list[BaseMessage]) -> str | None:
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return str(message.text)
    return None


def _summarise_tool_results(messages: list[BaseMessage]) -> str:
    results: list[ToolMessage] = []
    for message in reversed(messages):
        if not isinstance(message, ToolMessage):
            break
        results.insert(0, message)
    sentences = [
        f"The {result.name or 'tool'} call failed: {result.text}"
        if result.status == "error"
        else f"The result is {str(result.text).rstrip('.')}."
        for result in results
    ]
    return " ".join(sentences)


def _match_tool_calls(text: str | None, names: list[str], *, prefix: str) -> list[ToolCall]:
    if not text:
        return []
    calls: list[ToolCall] = []
    for name in names:
        args = _match_tool_args(text, name)
        if args is not None:
            calls.append(ToolCall(name=name, args=args, id=f"{prefix}_{len(calls)}"))
    return calls


def _match_tool_args(text: str, name: str) -> dict[str, Any] | None:
    mention = re.search(rf"\b{re.escape(name)}\b\s*", text, re.IGNORECASE)
    if mention and text[mention.end() :].startswith("{"):
        try:
            args, _ = json.JSONDecoder().raw_decode(text, mention.end())
        except json.JSONDecodeError:
            args = None
        if isinstance(args, dict):
            return args
    if name == "calculator":
        expression = _find_expression(text)
        if expression is not None:
            return {"expression": expression}
    if name == "current_time" and _TIME_WORD.search(text):
        zone = _TIMEZONE.search(text)
        return {"timezone": zone.group(1)} if zone else {}
    return {} if mention else None


def _find_expression(text: str) -> str | None:
    for run in _ARITHMETIC_RUN.finditer(text):
        # Trim sentence punctuation and spacing that the character class also admits.
        candidate = run.group().strip(" \t\n.")
        if _HAS_OPERATION.search(candidate):
            return candidate
    return None
