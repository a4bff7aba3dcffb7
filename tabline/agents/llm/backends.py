"""Which chat model backs a role: a LangChain `BaseChatModel`, or a shorthand string from YAML or the CLI.

Shorthands:
- ``openai:MODEL`` — OpenAI's hosted API; the key comes from ``OPENAI_API_KEY`` (never from a file).
- ``openai-compatible:URL:MODEL`` — any server speaking the OpenAI API: ``vllm serve``, Ollama, LM Studio,
  llama.cpp's server. The key, if the server wants one, comes from ``TABLINE_LLM_API_KEY`` (else a
  placeholder, since local servers usually ignore it). The model name may contain colons (``llama3:8b``).
- ``hf:PATH`` — a local transformers causal-LM directory, run in-process (`LocalHFChatModel`).
- ``embedded`` — the TabularLM trained on the user's table (for a worker: the same as ``kind: lm``).
- any other name — looked up in the ``models`` mapping given to `AssemblyLine` (Python-built chat models).

`ModelRef` is what agents hold: the shorthand and its settings, resolved lazily. It pickles without the
live client (run folders pickle the fitted line), so a resumed run rebuilds the client from the
environment — and no key ever reaches a file.

Example:
    >>> parse_model_spec("openai-compatible:http://127.0.0.1:8000/v1:Qwen/Qwen2.5-7B-Instruct")
    ('openai-compatible', 'http://127.0.0.1:8000/v1', 'Qwen/Qwen2.5-7B-Instruct')
    >>> parse_model_spec("openai-compatible:http://localhost:11434/v1:llama3.1:8b")[2]
    'llama3.1:8b'
    >>> parse_model_spec("hf:./models/tiny")
    ('hf', './models/tiny', '')
    >>> parse_model_spec("gpt-4o")
    Traceback (most recent call last):
    tabline.agents.llm.backends.InvalidModelSpecError: model 'gpt-4o' is not a backend shorthand: write openai:MODEL, openai-compatible:URL:MODEL, hf:PATH or embedded (or register a chat model under that name)
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tabline.errors import TablineError

_COMPATIBLE = re.compile(r"^(https?://[^/\s:]+(?::\d+)?(?:/[^:\s]*)?):(.+)$")
KEY_ENV = {"openai": "OPENAI_API_KEY", "openai-compatible": "TABLINE_LLM_API_KEY"}


class InvalidModelSpecError(TablineError):
    """A model shorthand cannot be read, or names a backend that is not available here."""


class BackendError(TablineError):
    """A model backend failed in a way retrying cannot fix (bad key, unknown model, refused connection)."""


class LLMSettings(BaseModel):
    """How every LLM call of the line is made. One section (``llm:``) of the team; all have defaults.

    ``concurrency`` calls run at once; each may take ``timeout_s``; a 429 / 5xx / timeout is retried up to
    ``transient_retries`` times with exponential backoff (``backoff_s`` doubling up to ``backoff_max_s``,
    with jitter; a server's ``Retry-After`` is honoured). An answer that does not parse or validate is shown
    its errors and asked again, ``attempts`` times in all. ``cache``: None = on for temperature-0 calls.
    ``prices`` (USD per million input/output tokens, per model shorthand) turn token counts into cost.

    Example:
        >>> LLMSettings(concurrency=8).attempts
        3
    """

    model_config = ConfigDict(extra="forbid")

    concurrency: int = Field(4, ge=1, le=256)
    timeout_s: float = Field(120.0, gt=0)
    attempts: int = Field(3, ge=1, le=10)
    transient_retries: int = Field(5, ge=0, le=20)
    backoff_s: float = Field(1.0, ge=0)
    backoff_max_s: float = Field(60.0, ge=0)
    max_tokens: int | None = Field(4096, ge=1)
    cache: bool | None = None
    cache_path: str | None = None  # default: $TABLINE_CACHE_DIR or ~/.cache/tabline, file llm-cache.sqlite
    structured: Literal["auto", "json_schema", "prompt"] = "auto"
    prices: dict[str, tuple[float, float]] = {}

    def cache_file(self) -> Path:
        if self.cache_path:
            return Path(self.cache_path).expanduser()
        root = os.environ.get("TABLINE_CACHE_DIR") or Path.home() / ".cache" / "tabline"
        return Path(root) / "llm-cache.sqlite"


def parse_model_spec(spec: str) -> tuple[str, str, str]:
    """``(backend, location, model)`` of a shorthand; raises `InvalidModelSpecError` naming the problem."""
    text = spec.strip()
    if text == "embedded":
        return "embedded", "", ""
    kind, sep, rest = text.partition(":")
    if not sep or kind not in ("openai", "openai-compatible", "hf"):
        raise InvalidModelSpecError(
            f"model {spec!r} is not a backend shorthand: write openai:MODEL, openai-compatible:URL:MODEL, "
            f"hf:PATH or embedded (or register a chat model under that name)")
    if not rest:
        raise InvalidModelSpecError(f"model {spec!r}: nothing after '{kind}:'")
    if kind == "openai":
        return "openai", "", rest
    if kind == "hf":
        return "hf", rest, ""
    match = _COMPATIBLE.match(rest)
    if not match:
        raise InvalidModelSpecError(
            f"model {spec!r}: expected openai-compatible:URL:MODEL with URL like http://127.0.0.1:8000/v1, "
            f"e.g. openai-compatible:http://127.0.0.1:8000/v1:Qwen/Qwen2.5-7B-Instruct")
    return "openai-compatible", match.group(1), match.group(2)


def build_chat_model(spec: str, *, temperature: float, settings: LLMSettings, seed: int | None = None,
                     cache: Any = None) -> Any:
    """A LangChain chat model for a shorthand. Clients never retry on their own: `tabline.agents.llm.calls`
    owns retries, so the backoff and the counts in the trace are ours."""
    kind, location, model = parse_model_spec(spec)
    if kind == "embedded":
        raise InvalidModelSpecError("'embedded' is the TabularLM, not a chat model: use it for workers "
                                    "(kind: lm) and leave the coordinator's and judges' model unset")
    if kind == "hf":
        from tabline.agents.llm.local_hf import LocalHFChatModel

        return LocalHFChatModel(path=location, temperature=temperature, seed=seed,
                                max_new_tokens=settings.max_tokens or 512, cache=cache)
    try:
        from langchain_openai import ChatOpenAI
    except ImportError:  # pragma: no cover - a declared dependency; kept for broken installs
        raise InvalidModelSpecError(f"model {spec!r} needs langchain-openai: pip install langchain-openai") from None
    env = KEY_ENV[kind]
    key = os.environ.get(env)
    if kind == "openai" and not key:
        raise BackendError(f"model {spec!r} needs an API key in the environment variable {env} "
                           f"(keys are read from the environment only, never from team files)")
    kwargs: dict[str, Any] = {"model": model, "api_key": key or "not-needed", "temperature": temperature,
                              "timeout": settings.timeout_s, "max_retries": 0, "cache": cache}
    if settings.max_tokens:
        kwargs["max_tokens"] = settings.max_tokens
    if seed is not None:
        kwargs["seed"] = seed
    if kind == "openai-compatible":
        kwargs["base_url"] = location
    return ChatOpenAI(**kwargs)


class ModelRef:
    """A role's model: a shorthand (or a registered name) plus temperature, resolved on first use.

    Example:
        >>> ref = ModelRef("openai-compatible:http://127.0.0.1:9/v1:m", temperature=0.0)
        >>> ref.label, ref.cached
        ('openai-compatible:http://127.0.0.1:9/v1:m', True)
    """

    def __init__(self, spec: str, *, temperature: float = 0.7, settings: LLMSettings | None = None,
                 registry: dict[str, Any] | None = None):
        self.spec, self.temperature = spec, float(temperature)
        self.settings = settings or LLMSettings()
        self._registry = dict(registry or {})
        self._model: Any = None
        if spec not in self._registry:
            kind, location, _ = parse_model_spec(spec)  # fail at fit time, not at the first batch
            if kind == "hf":
                from tabline.agents.llm.local_hf import check_model_dir

                check_model_dir(location)

    @property
    def label(self) -> str:
        return self.spec

    @property
    def model_name(self) -> str:
        """The model as a request names it — ``gpt-4o-mini``, ``Qwen/Qwen2.5-7B-Instruct``, a local folder's name,
        a registered model's name — without the server's address (traces show it).

        Example:
            >>> ModelRef("openai-compatible:http://127.0.0.1:9/v1:llama3.1:8b").model_name
            'llama3.1:8b'
        """
        if self.spec in self._registry or self.spec == "embedded":
            return self.spec
        try:
            _, location, model = parse_model_spec(self.spec)
        except InvalidModelSpecError:  # a registered name on a copy that dropped the registry
            return self.spec
        return model or Path(location).name or self.spec

    @property
    def system(self) -> str:
        """Who serves the model, as OpenTelemetry's GenAI conventions name it (``gen_ai.system``): ``openai``
        for every OpenAI-protocol server (their clients cannot tell vLLM from OpenAI), ``huggingface`` for a local
        transformers model, ``langchain`` for a registered chat model.

        Example:
            >>> ModelRef("openai:gpt-4o-mini").system, ModelRef("openai-compatible:http://127.0.0.1:9/v1:m").system
            ('openai', 'openai')
        """
        try:
            kind = "registered" if self.spec in self._registry else parse_model_spec(self.spec)[0]
        except InvalidModelSpecError:
            kind = "registered"
        return {"hf": "huggingface", "registered": "langchain", "embedded": "tabline"}.get(kind, "openai")

    @property
    def cached(self) -> bool:
        return self.settings.cache if self.settings.cache is not None else self.temperature == 0

    @property
    def structured(self) -> str:
        """How structured output is asked for: a JSON schema in ``response_format`` (OpenAI-protocol
        servers enforce it; vLLM decodes under it), or only in the prompt (local transformers models)."""
        if self.settings.structured != "auto":
            return self.settings.structured
        if self.spec in self._registry:
            return "prompt"
        return "prompt" if parse_model_spec(self.spec)[0] == "hf" else "json_schema"

    def get(self, seed: int | None = None) -> Any:
        if self._model is None:
            cache = None
            if self.cached:
                from tabline.agents.llm.cache import SQLiteChatCache

                cache = SQLiteChatCache(self.settings.cache_file())
            if self.spec in self._registry:
                model = self._registry[self.spec]
                self._model = model if cache is None or getattr(model, "cache", None) is not None else \
                    model.model_copy(update={"cache": cache})
            else:
                self._model = build_chat_model(self.spec, temperature=self.temperature, settings=self.settings,
                                               cache=cache)
        return self._model

    def __getstate__(self) -> dict:
        # A copy carries neither the live client (it holds sockets and, in its headers, the API key) nor
        # registered chat models (they hold clients too).
        return {"spec": self.spec, "temperature": self.temperature, "settings": self.settings,
                "_registry": {}, "_model": None}
