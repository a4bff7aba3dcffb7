"""Supervised fine-tuning of a transformers chat model on chat-format rows (TableDreamer's last step: the
target learns from its weaknesses). trl's `SFTTrainer` does the work on the ``messages`` column as it is,
so what `tabline dream` writes is what is trained on; the model is written atomically to ``output``.

Example (the settings alone; training needs a model directory):
    >>> ChatSFTConfig(steps=10).learning_rate
    2e-05
"""
from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from tabline.errors import InvalidArgumentError, ModelDirError
from tabline.io import atomic_directory
from tabline.training.policies import checkpointing_setting


class ChatSFTConfig(BaseModel):
    """Steps, batch size, learning rate, the longest row in tokens, the seed."""

    model_config = ConfigDict(extra="forbid")

    steps: int = Field(100, ge=1)
    batch_size: int = Field(4, ge=1)
    learning_rate: float = Field(2e-5, gt=0)
    max_length: int = Field(2048, ge=16)
    seed: int = 0


def sft_chat_model(model_dir: str | os.PathLike, dataset: str | os.PathLike, output: str | os.PathLike,
                   config: ChatSFTConfig | None = None) -> dict[str, Any]:
    """Fine-tune the model in ``model_dir`` on the JSONL chat rows in ``dataset``; save it to ``output``.
    Returns the steps taken and the mean training loss."""
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    config = config or ChatSFTConfig()
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").exists():
        raise ModelDirError(f"{model_dir} is not a transformers model directory (no config.json)")
    rows = load_dataset("json", data_files=str(dataset), split="train")
    if len(rows) == 0:
        raise InvalidArgumentError(f"{dataset} has no rows to fine-tune on")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if not getattr(tokenizer, "chat_template", None):
        raise ModelDirError(f"{model_dir} has no chat template: the chat rows cannot be written as its prompts")
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    gpu = torch.cuda.is_available()  # trl defaults to bf16, which a CPU-only machine refuses
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # trl's and transformers' notices about their own defaults
        args = SFTConfig(output_dir=tmp, max_steps=config.steps, per_device_train_batch_size=config.batch_size,
                         learning_rate=config.learning_rate, seed=config.seed, report_to=[], save_strategy="no",
                         logging_steps=max(1, config.steps), dataloader_num_workers=0, disable_tqdm=True,
                         max_length=config.max_length, use_cpu=not gpu, bf16=gpu and torch.cuda.is_bf16_supported(),
                         **checkpointing_setting(SFTConfig))
        result = SFTTrainer(model=model, args=args, processing_class=tokenizer, train_dataset=rows).train()
    with atomic_directory(output) as out:
        model.save_pretrained(str(out), safe_serialization=True)
        tokenizer.save_pretrained(str(out))
    return {"steps": int(result.global_step), "loss": float(result.training_loss), "rows": len(rows),
            "output": str(output)}


__all__ = ["ChatSFTConfig", "sft_chat_model"]
