"""Tests for `load_chat_model`: one exact message per way a model spec can fail."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType
from typing import Any

import pytest

from agent_runtime.errors import InvalidRequestError
from agent_runtime.models import DEFAULT_MODEL, OfflineChatModel, load_chat_model

KNOWN = "anthropic, offline, ollama, openai, openai-compatible"


async def test_load_chat_model_offline_uses_model_part_as_name() -> None:
    model = load_chat_model("offline:tiny")

    assert isinstance(model, OfflineChatModel)
    assert model.model_name == "tiny"


async def test_load_chat_model_default_is_offline() -> None:
    model = load_chat_model(DEFAULT_MODEL)

    assert DEFAULT_MODEL == "offline:echo"
    assert isinstance(model, OfflineChatModel)


async def test_load_chat_model_caches_per_spec() -> None:
    assert load_chat_model("offline:a") is load_chat_model("offline:a")
    assert load_chat_model("offline:a") is not load_chat_model("offline:b")


async def test_load_chat_model_keeps_colons_in_model_name() -> None:
    model = load_chat_model("offline:llama3:8b")

    assert isinstance(model, OfflineChatModel)
    assert model.model_name == "llama3:8b"


@pytest.mark.parametrize("spec", ["gpt-4o", "openai:", ":gpt-4o", ""])
async def test_load_chat_model_rejects_malformed_spec(spec: str) -> None:
    with pytest.raises(InvalidRequestError) as error:
        load_chat_model(spec)

    assert error.value.detail == (
        f'Model "{spec}" is not a "provider:model" spec such as "offline:echo"; '
        f"known providers: {KNOWN}"
    )
    assert error.value.code == "invalid_model"
    assert error.value.status_code == 422


async def test_load_chat_model_rejects_unknown_provider_with_suggestion() -> None:
    with pytest.raises(InvalidRequestError) as error:
        load_chat_model("opnai:gpt-4o")

    assert error.value.detail == (
        'Model provider "opnai" in "opnai:gpt-4o" is unknown (did you mean "openai"?); '
        f"known providers: {KNOWN}"
    )
    assert error.value.code == "invalid_model"


async def test_load_chat_model_rejects_unknown_provider() -> None:
    with pytest.raises(InvalidRequestError) as error:
        load_chat_model("bedrock:claude")

    assert error.value.detail == (
        f'Model provider "bedrock" in "bedrock:claude" is unknown; known providers: {KNOWN}'
    )


@pytest.fixture
def no_openai(monkeypatch: pytest.MonkeyPatch) -> None:
    """langchain-openai as if not installed (the dev extra installs it)."""
    monkeypatch.setitem(sys.modules, "langchain_openai", None)


async def test_load_chat_model_names_missing_integration_package(no_openai: None) -> None:
    with pytest.raises(InvalidRequestError) as error:
        load_chat_model("openai:gpt-4o")

    assert error.value.detail == (
        'Model "openai:gpt-4o" needs the langchain-openai package: pip install langchain-openai'
    )
    assert error.value.code == "model_unavailable"


async def test_load_chat_model_openai_compatible_needs_the_openai_package(
    no_openai: None,
) -> None:
    with pytest.raises(InvalidRequestError) as error:
        load_chat_model("openai-compatible:qwen")

    assert error.value.detail == (
        'Model "openai-compatible:qwen" needs the langchain-openai package: '
        "pip install langchain-openai"
    )


@pytest.mark.skipif(
    importlib.util.find_spec("langchain_anthropic") is not None
    or importlib.util.find_spec("langchain_ollama") is not None,
    reason="the missing-package message needs the integrations absent",
)
async def test_load_chat_model_names_each_missing_package() -> None:
    messages = []
    for spec in ["anthropic:claude-sonnet-4-5", "ollama:llama3"]:
        with pytest.raises(InvalidRequestError) as error:
            load_chat_model(spec)
        messages.append(error.value.detail)

    assert messages == [
        'Model "anthropic:claude-sonnet-4-5" needs the langchain-anthropic package: '
        "pip install langchain-anthropic",
        'Model "ollama:llama3" needs the langchain-ollama package: pip install langchain-ollama',
    ]


class _FakeChatOpenAI:
    """Stands in for langchain_openai.ChatOpenAI; records what it was built with."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


@pytest.fixture
def fake_openai(monkeypatch: pytest.MonkeyPatch) -> None:
    module = ModuleType("langchain_openai")
    module.ChatOpenAI = _FakeChatOpenAI  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "langchain_openai", module)


async def test_load_chat_model_builds_openai_with_model_name(fake_openai: None) -> None:
    model: Any = load_chat_model("openai:gpt-fake-1")

    assert model.kwargs == {"model": "gpt-fake-1", "stream_usage": True}


async def test_load_chat_model_points_openai_compatible_at_base_url(
    fake_openai: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:8000/v1")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)

    model: Any = load_chat_model("openai-compatible:qwen-fake-1")

    assert model.kwargs == {
        "model": "qwen-fake-1",
        "stream_usage": True,
        "base_url": "http://localhost:8000/v1",
        "api_key": "not-needed",
    }


async def test_load_chat_model_openai_compatible_needs_base_url(
    fake_openai: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)

    with pytest.raises(InvalidRequestError) as error:
        load_chat_model("openai-compatible:qwen-fake-2")

    assert error.value.detail == (
        'Model "openai-compatible:qwen-fake-2" needs the OPENAI_BASE_URL environment variable '
        "set to the server's base URL, such as http://localhost:8000/v1"
    )
    assert error.value.code == "invalid_model"
