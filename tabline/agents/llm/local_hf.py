"""A LangChain chat model that runs a local transformers causal-LM directory in-process (``hf:PATH``).

Why in-process rather than behind a server: the assembly line should run on a laptop or an offline
cluster node with nothing but a checkpoint on disk, and every agent role talks to one LangChain chat
model interface, so the local model has to *be* a ``BaseChatModel`` to get structured output,
retries, the cache and token accounting for free.

Design choices worth knowing:

* Loading is lazy and cached on the instance: building a team (or unpickling a saved line) must stay
  cheap, and a checkpoint is only read once somebody actually asks it something.
* One lock per instance serialises generation: transformers models keep per-call state (KV cache,
  RNG) and are not safe to call from several threads, while the line runs agents concurrently.
* Pickling drops the loaded weights and tokenizer: tabline pickles objects that hold chat models
  (run folders, checkpoints), and a pickled GPU model would be huge and tied to one device.
* A bad directory raises :class:`tabline.errors.ModelDirError` naming the path and the missing
  piece, because a transformers traceback about ``None`` configs is no help to a user who typed a
  wrong path.

Example:
    >>> from tabline.agents.llm.local_hf import LocalHFChatModel
    >>> llm = LocalHFChatModel(path="models/my-chat-model", temperature=0.0, max_new_tokens=64)
    >>> llm._llm_type
    'tabline-local-hf'

With a checkpoint in that folder, ``llm.invoke("Give me one row as JSON.").content`` is the model's text,
e.g. ``'{"age": 42, "region": "north"}'`` (the first call loads the weights).
"""
from __future__ import annotations

import asyncio
import copy
import os
import threading
from pathlib import Path
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ChatMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr

from tabline.errors import ModelDirError

__all__ = ["LocalHFChatModel", "check_model_dir"]

_WEIGHT_PATTERNS = ("*.safetensors", "*.safetensors.index.json", "pytorch_model*.bin", "pytorch_model.bin.index.json")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "spiece.model")


class ContextLengthError(ValueError):
    """A prompt does not fit the local model's context window (retrying cannot help)."""


def check_model_dir(path: str | os.PathLike[str]) -> Path:
    """Return the absolute model directory, or raise ModelDirError naming what is missing.

    Checks only what is on disk (config.json, weights, tokenizer files), so it is cheap enough to
    call before loading and catches the usual mistakes (typo in the path, a half-copied checkpoint,
    a directory that holds only weights) with a message the user can act on.
    """
    root = Path(path).expanduser().resolve()
    if not root.exists():
        raise ModelDirError(f"model directory {root} does not exist")
    if not root.is_dir():
        raise ModelDirError(f"model path {root} is a file, not a transformers model directory")
    missing = []
    if not (root / "config.json").is_file():
        missing.append("config.json")
    if not any(next(root.glob(pattern), None) is not None for pattern in _WEIGHT_PATTERNS):
        missing.append("weights (*.safetensors or pytorch_model*.bin)")
    if not any((root / name).is_file() for name in _TOKENIZER_FILES):
        missing.append("tokenizer files (tokenizer.json or tokenizer_config.json)")
    if missing:
        raise ModelDirError(
            f"model directory {root} is not a complete transformers causal-LM checkpoint: "
            f"missing {', '.join(missing)}"
        )
    return root


def _text_of(message: BaseMessage) -> str:
    # Content may be a list of blocks (multimodal messages); a text-only local model gets the text.
    content = message.content
    if isinstance(content, str):
        return content
    parts = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
    return "".join(parts)


def _role_of(message: BaseMessage) -> str:
    if isinstance(message, SystemMessage):
        return "system"
    if isinstance(message, HumanMessage):
        return "user"
    if isinstance(message, AIMessage):
        return "assistant"
    if isinstance(message, ToolMessage):
        return "tool"
    if isinstance(message, ChatMessage):
        return message.role
    raise TypeError(f"LocalHFChatModel cannot send a {type(message).__name__} to a local model")


def _plain_prompt(conversation: list[dict[str, str]]) -> str:
    # For base models without a chat template: a transcript that ends on the assistant's cue.
    lines = [f"{turn['role'].capitalize()}: {turn['content']}" for turn in conversation]
    lines.append("Assistant:")
    return "\n".join(lines)


def _fold_system_into_user(conversation: list[dict[str, str]]) -> list[dict[str, str]]:
    # Some templates (Gemma, early Mistral) reject a system role; prepending it to the first user
    # turn is what their model cards recommend.
    system = "\n\n".join(turn["content"] for turn in conversation if turn["role"] == "system")
    rest = [dict(turn) for turn in conversation if turn["role"] != "system"]
    for turn in rest:
        if turn["role"] == "user":
            turn["content"] = f"{system}\n\n{turn['content']}" if system else turn["content"]
            return rest
    return [{"role": "user", "content": system}, *rest]


def _dtype_kwarg() -> str:
    # transformers 4.56 renamed from_pretrained(torch_dtype=...) to dtype=...; 5.x warns on the old name.
    import transformers

    major, minor = (int(part) for part in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


class LocalHFChatModel(BaseChatModel):
    """Chat with a local transformers causal-LM directory, in-process (the ``hf:PATH`` backend).

    Args:
        path: the model directory (``config.json``, weights, tokenizer); nothing is downloaded.
        temperature: 0 means greedy decoding; above 0 samples with this temperature.
        max_new_tokens: cap on generated tokens per call.
        seed: when set, sampling is reproducible: the same seed gives the same text.
        device: ``"auto"`` (CUDA if available, else CPU), or any torch device string.
        torch_dtype: ``"auto"`` (the checkpoint's dtype on GPU, float32 on CPU) or a torch dtype
            name such as ``"bfloat16"``.

    ``invoke`` kwargs ``max_new_tokens``, ``temperature`` and ``seed`` override the fields for one
    call. Each reply carries ``usage_metadata`` (prompt and generated token counts) and
    ``response_metadata`` (``model_name``, ``finish_reason`` of ``"stop"`` or ``"length"``).

    Example:
        >>> llm = LocalHFChatModel(path="models/my-chat-model", seed=7)
        >>> llm.seed, llm.device
        (7, 'auto')

        With a checkpoint there, ``llm.invoke([("system", "Answer in JSON."), ("human", "One row.")])``
        returns an ``AIMessage`` such as ``AIMessage(content='{"age": 42}', ...)``.
    """

    path: str
    temperature: float = 0.7
    max_new_tokens: int = 512
    seed: int | None = None
    device: str = "auto"
    torch_dtype: str = "auto"

    _model: Any = PrivateAttr(default=None)
    _tokenizer: Any = PrivateAttr(default=None)
    _lock: Any = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "tabline-local-hf"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        # Part of LangChain's cache key: the resolved path makes "./m" and "/abs/m" one entry.
        return {
            "path": str(Path(self.path).expanduser().resolve()),
            "temperature": self.temperature,
            "max_new_tokens": self.max_new_tokens,
            "seed": self.seed,
        }

    # -- pickling -----------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        # Weights and tokenizer reload lazily; a lock cannot be pickled at all.
        state["__pydantic_private__"] = {"_model": None, "_tokenizer": None, "_lock": None}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.__pydantic_private__["_lock"] = threading.Lock()

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> LocalHFChatModel:
        # pydantic's default deep-copies private attributes: the lock cannot be copied, and copying
        # the weights would double memory. A deep copy behaves like a pickle round trip instead.
        clone = self.__class__.__new__(self.__class__)
        clone.__setstate__(copy.deepcopy(self.__getstate__(), memo))
        return clone

    # -- loading ------------------------------------------------------------------------------

    def _resolve_device(self) -> str:
        import torch

        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.device

    def _resolve_dtype(self, device: str) -> Any:
        import torch

        if self.torch_dtype == "auto":
            # Half precision on CPU is slow and some ops lack kernels; float32 is the safe choice.
            return torch.float32 if device == "cpu" else "auto"
        dtype = getattr(torch, self.torch_dtype, None)
        if not isinstance(dtype, torch.dtype):
            raise ValueError(f"torch_dtype {self.torch_dtype!r} is not a torch dtype name (e.g. 'bfloat16')")
        return dtype

    def _load(self) -> tuple[Any, Any, str]:
        """Load (once) and return model, tokenizer and device; the caller holds the lock."""
        device = self._resolve_device()
        if self._model is not None:
            return self._model, self._tokenizer, device
        root = check_model_dir(self.path)
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(root, local_files_only=True)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelDirError(f"cannot load the tokenizer from model directory {root}: {exc}") from exc
        try:
            model = AutoModelForCausalLM.from_pretrained(
                root, local_files_only=True, **{_dtype_kwarg(): self._resolve_dtype(device)}
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelDirError(f"cannot load a causal LM from model directory {root}: {exc}") from exc
        model.to(device)
        model.eval()
        self._model, self._tokenizer = model, tokenizer
        return model, tokenizer, device

    # -- prompting ----------------------------------------------------------------------------

    def _prompt_text(self, tokenizer: Any, messages: list[BaseMessage]) -> tuple[str, bool]:
        """The prompt string, and whether it came from a chat template (which brings its own BOS)."""
        conversation = [{"role": _role_of(m), "content": _text_of(m)} for m in messages]
        if not getattr(tokenizer, "chat_template", None):
            return _plain_prompt(conversation), False
        from jinja2.exceptions import TemplateError

        try:
            text = tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
        except TemplateError:
            if not any(turn["role"] == "system" for turn in conversation):
                raise
            text = tokenizer.apply_chat_template(
                _fold_system_into_user(conversation), tokenize=False, add_generation_prompt=True
            )
        return text, True

    # -- generation ---------------------------------------------------------------------------

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        import torch

        max_new_tokens = int(kwargs.get("max_new_tokens", self.max_new_tokens))
        temperature = float(kwargs.get("temperature", self.temperature))
        seed = kwargs.get("seed", self.seed)

        with self._lock:
            model, tokenizer, device = self._load()
            text, templated = self._prompt_text(tokenizer, messages)
            # A chat template already spells out BOS; adding special tokens again would double it.
            encoded = tokenizer(text, return_tensors="pt", add_special_tokens=not templated).to(device)
            prompt_len = encoded["input_ids"].shape[1]
            context = getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", None)
            if context and prompt_len >= context:  # past the position table the model indexes out of range
                raise ContextLengthError(
                    f"the prompt has {prompt_len} tokens; the model at {self.path} reads at most {context}: "
                    f"lower the worker's rows_per_call or examples")
            if context:
                max_new_tokens = min(max_new_tokens, context - prompt_len)

            eos_ids = model.generation_config.eos_token_id
            eos_ids = set(eos_ids if isinstance(eos_ids, list) else [] if eos_ids is None else [eos_ids])
            if tokenizer.eos_token_id is not None:
                eos_ids.add(tokenizer.eos_token_id)
            pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else next(iter(eos_ids), None)

            gen_kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "pad_token_id": pad_id}
            if temperature > 0:
                gen_kwargs.update(do_sample=True, temperature=temperature)
            else:
                # Checkpoints often ship sampling defaults; greedy must not inherit top_p/top_k.
                gen_kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)

            # fork_rng keeps the seed local to this call: seeding the global RNG would silently
            # change the randomness of everything else running in the process (training, sampling).
            fork_devices = [torch.device(device).index or 0] if device.startswith("cuda") else []
            with torch.random.fork_rng(devices=fork_devices), torch.inference_mode():
                if seed is not None:
                    torch.manual_seed(int(seed))
                output = model.generate(**encoded, **gen_kwargs)

        new_ids = output[0, prompt_len:].tolist()
        finish_reason = "stop" if (len(new_ids) < max_new_tokens or (new_ids and new_ids[-1] in eos_ids)) else "length"
        content = tokenizer.decode(new_ids, skip_special_tokens=True)
        if stop:
            cut = min((i for i in (content.find(s) for s in stop if s) if i >= 0), default=-1)
            if cut >= 0:
                content, finish_reason = content[:cut], "stop"

        message = AIMessage(
            content=content,
            usage_metadata={
                "input_tokens": prompt_len,
                "output_tokens": len(new_ids),
                "total_tokens": prompt_len + len(new_ids),
            },
            response_metadata={"model_name": Path(self.path).expanduser().resolve().name, "finish_reason": finish_reason},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        # Generation is CPU/GPU-bound and holds the lock for seconds; a worker thread keeps the
        # event loop (and every other agent on it) responsive.
        return await asyncio.to_thread(self._generate, messages, stop, None, **kwargs)
