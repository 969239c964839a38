"""Turns a `provider:model` spec into a chat model, importing integration packages lazily.

It owns the spec grammar and one message per failure; it must not import an integration at
module import time, so agent-runtime runs with none of them installed.
"""

from __future__ import annotations

import difflib
import importlib
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

from langchain_core.language_models import BaseChatModel

from agent_runtime.errors import InvalidRequestError
from agent_runtime.models.offline import OfflineChatModel

DEFAULT_MODEL = "offline:echo"
"""What graphs use when a run names no model: needs no network and no key."""

BASE_URL_VARIABLE = "OPENAI_BASE_URL"
API_KEY_VARIABLE = "OPENAI_API_KEY"
# Local OpenAI-compatible servers (vLLM, llama.cpp, LM Studio) ignore the key, but the OpenAI
# client refuses to start without one.
_PLACEHOLDER_API_KEY = "not-needed"


@dataclass(frozen=True, slots=True, kw_only=True)
class _Integration:
    package: str
    module: str
    class_name: str


_INTEGRATIONS: dict[str, _Integration] = {
    "anthropic": _Integration(
        package="langchain-anthropic", module="langchain_anthropic", class_name="ChatAnthropic"
    ),
    "ollama": _Integration(
        package="langchain-ollama", module="langchain_ollama", class_name="ChatOllama"
    ),
    "openai": _Integration(
        package="langchain-openai", module="langchain_openai", class_name="ChatOpenAI"
    ),
    "openai-compatible": _Integration(
        package="langchain-openai", module="langchain_openai", class_name="ChatOpenAI"
    ),
}
_KNOWN_PROVIDERS = ", ".join(sorted([*_INTEGRATIONS, "offline"]))


def load_chat_model(spec: str) -> BaseChatModel:
    """Return the chat model a `provider:model` spec names, one shared instance per spec.

    Providers: `offline` (the bundled `OfflineChatModel`, the model part becomes its
    `model_name`), `openai`, `anthropic`, `ollama`, and `openai-compatible`, which is
    `ChatOpenAI` pointed at `$OPENAI_BASE_URL` with `$OPENAI_API_KEY` (a placeholder when
    unset). Both `ChatOpenAI` providers ask for token usage on streamed completions too. The
    environment is read on the first load of a spec; later loads reuse it.

    Raises:
        InvalidRequestError: the spec is malformed, names an unknown provider, needs an
            integration package that is not installed, or needs `OPENAI_BASE_URL` unset.
    """
    return _load_cached(spec)


@lru_cache(maxsize=64)
def _load_cached(spec: str) -> BaseChatModel:
    provider, _, name = spec.partition(":")
    if not provider or not name:
        raise InvalidRequestError(
            f'Model "{spec}" is not a "provider:model" spec such as "{DEFAULT_MODEL}"; '
            f"known providers: {_KNOWN_PROVIDERS}",
            code="invalid_model",
        )
    if provider == "offline":
        return OfflineChatModel(model_name=name)
    integration = _INTEGRATIONS.get(provider)
    if integration is None:
        raise InvalidRequestError(
            f'Model provider "{provider}" in "{spec}" is unknown{_suggest(provider)}; '
            f"known providers: {_KNOWN_PROVIDERS}",
            code="invalid_model",
        )
    model_class = _import_class(spec, integration)
    kwargs: dict[str, Any] = {"model": name}
    if integration.class_name == "ChatOpenAI":
        # Streamed completions report tokens only when asked (`stream_options.include_usage`);
        # ChatOpenAI asks by itself only for api.openai.com, so a streamed run's usage would
        # be missing where a waited one's is recorded.
        kwargs["stream_usage"] = True
    if provider == "openai-compatible":
        base_url = os.environ.get(BASE_URL_VARIABLE)
        if not base_url:
            raise InvalidRequestError(
                f'Model "{spec}" needs the {BASE_URL_VARIABLE} environment variable set to '
                "the server's base URL, such as http://localhost:8000/v1",
                code="invalid_model",
            )
        kwargs["base_url"] = base_url
        kwargs["api_key"] = os.environ.get(API_KEY_VARIABLE) or _PLACEHOLDER_API_KEY
    return cast(BaseChatModel, model_class(**kwargs))


def _import_class(spec: str, integration: _Integration) -> Any:
    try:
        module = importlib.import_module(integration.module)
    except ModuleNotFoundError as error:
        # Only the integration itself being absent has this remedy; a broken dependency
        # inside an installed integration must surface as it is.
        if error.name != integration.module:
            raise
        raise InvalidRequestError(
            f'Model "{spec}" needs the {integration.package} package: '
            f"pip install {integration.package}",
            code="model_unavailable",
        ) from None
    return getattr(module, integration.class_name)


def _suggest(provider: str) -> str:
    matches = difflib.get_close_matches(provider, [*_INTEGRATIONS, "offline"], n=1)
    return f' (did you mean "{matches[0]}"?)' if matches else ""
