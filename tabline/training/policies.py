"""The models TabGRAA can align, behind one small interface (`Policy`).

- `TabularLMPolicy`: the embedded `TabularLM`. A row's log-probability is the sum over its value tokens in
  schema order (`row_logprob`); SFT uses the same layouts as `TabularLM.fit` (schema order and random
  prefixes), so extra SFT is exactly "training longer".
- `TextRowsPolicy`: any transformers causal LM directory, rows written GReaT-style — ``"col is value"``
  joined by ``", "`` in a random column order. Samples that do not parse back into a schema-valid row are
  dropped (and counted). Its SFT step is trl's `SFTTrainer`.

Example:
    >>> format_text_row({"age": 41, "job": "nurse"}, ["job", "age"])
    'job is nurse, age is 41'
    >>> parse_text_row("job is nurse, age is 41")
    {'job': 'nurse', 'age': '41'}
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch

from tabline.errors import ModelDirError
from tabline.io import atomic_directory
from tabline.schema import Schema
from tabline.threads import apply as apply_threads
from tabline.training.lm import TabularLM, row_logprob
from tabline.training.tokenizer import UNK

MISSING_TEXT = "None"


class Policy(Protocol):
    """What the aligner needs from a model. ``items`` are whatever `logprob` reads (token ids, texts);
    ``invalid`` counts generated rows that did not parse into a valid row (None where sampling cannot make one)."""

    model: torch.nn.Module
    schema: Schema
    invalid: int | None

    def sample(self, n: int, *, seed: int, temperature: float) -> tuple[pd.DataFrame, Any]: ...
    def items(self, df: pd.DataFrame, seed: int) -> tuple[Any, np.ndarray]: ...
    def logprob(self, model: torch.nn.Module, items: Any, idx: np.ndarray) -> torch.Tensor: ...
    def sft(self, real: pd.DataFrame, *, steps: int, batch_size: int, learning_rate: float, seed: int) -> list[float]: ...
    def save(self, directory: str | os.PathLike, extra: dict[str, str]) -> Path: ...


def batched_logprob(policy: Policy, model: torch.nn.Module, items: Any, n: int, batch: int = 256) -> torch.Tensor:
    """`Policy.logprob` over all ``n`` items without gradient, in batches. -> (n,)"""
    with torch.no_grad():
        return torch.cat([policy.logprob(model, items, np.arange(i, min(n, i + batch)))
                          for i in range(0, n, batch)]) if n else torch.zeros(0)


# ---------------------------------------------------------------------------------------------- TabularLM
class TabularLMPolicy:
    """The embedded `TabularLM` as a `Policy`; aligning changes ``lm.model`` in place."""

    def __init__(self, lm: TabularLM):
        lm._require_fitted()
        self.lm, self.model, self.schema = lm, lm.model, lm.schema
        self.invalid = None  # constrained decoding: every sampled row is valid

    def sample(self, n: int, *, seed: int, temperature: float) -> tuple[pd.DataFrame, torch.Tensor]:
        frame = self.lm.sample(n, seed=seed, temperature=temperature)
        items, kept = self.items(frame, seed)
        return frame[kept].reset_index(drop=True), items

    def items(self, df: pd.DataFrame, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
        """Token ids (N', T) of the rows the vocabulary can represent, and the (N,) mask of those rows."""
        tok = self.lm.tokenizer
        values = tok.encode_values(df)  # (N, d, 2)
        kept = ~(values == UNK).any(axis=(1, 2))  # (N,)
        return torch.from_numpy(tok.assemble(values[kept])), kept

    def logprob(self, model: torch.nn.Module, items: torch.Tensor, idx: np.ndarray) -> torch.Tensor:
        ids = items[torch.as_tensor(idx, dtype=torch.long)]  # (B, T)
        mask = torch.from_numpy(self.lm.tokenizer.value_mask(ids.numpy()))  # (B, T)
        return row_logprob(model(input_ids=ids).logits, ids, mask)  # (B,)

    def sft(self, real: pd.DataFrame, *, steps: int, batch_size: int, learning_rate: float, seed: int) -> list[float]:
        """``steps`` AdamW steps of the pre-training loss on ``real`` (random layouts as in `fit`)."""
        tok, cfg = self.lm.tokenizer, self.lm.config
        values = tok.encode_values(real)  # (N, d, 2)
        values = values[~(values == UNK).any(axis=(1, 2))]
        rng = np.random.default_rng(seed)
        opt = torch.optim.AdamW(self.model.parameters(), lr=learning_rate, weight_decay=cfg.weight_decay)
        self.model.train()
        losses = []
        for _ in range(steps):
            idx = rng.choice(len(values), size=min(batch_size, len(values)), replace=False)
            ids, labels = self.lm.training_batch(values[idx], rng)
            loss = self.model(input_ids=ids, labels=labels).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            opt.step()
            losses.append(float(loss.detach()))
        self.model.eval()
        return losses

    def save(self, directory: str | os.PathLike, extra: dict[str, str]) -> Path:
        return self.lm.save(directory, extra)


# ---------------------------------------------------------------------------------------------- text rows
def format_text_row(row: dict[str, Any], order: list[str]) -> str:
    """A row as GReaT writes it: ``col is value`` in the given column order."""
    return ", ".join(f"{c} is {MISSING_TEXT if _missing(row[c]) else row[c]}" for c in order)


def parse_text_row(text: str) -> dict[str, str] | None:
    """``col is value, ...`` back to a dict of strings; None if any piece is not ``col is value``."""
    out = {}
    for piece in text.strip().split(", "):
        name, sep, value = piece.partition(" is ")
        if not sep or not name:
            return None
        out[name.strip()] = value.strip()
    return out


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA or v is pd.NaT


class TextRowsPolicy:
    """A transformers causal LM directory that writes rows as text (GReaT-style). See the module docstring.

    ``schema`` comes from the training table (the directory knows nothing about it); it decides which
    generated rows are valid."""

    def __init__(self, directory: str | os.PathLike, schema: Schema, *, threads: int | None = None):
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        d = Path(directory)
        if not (d / "config.json").exists():
            raise ModelDirError(f"{d} is neither a tabline model directory nor a transformers model directory "
                                "(no config.json)")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(d))
            self.model = AutoModelForCausalLM.from_pretrained(str(d))
        except (OSError, ValueError) as exc:
            raise ModelDirError(f"cannot load the transformers model in {d}: {exc}") from exc
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.start = self.tokenizer.bos_token_id if self.tokenizer.bos_token_id is not None else self.tokenizer.eos_token_id
        self.model.eval()
        self.schema = schema
        self.row_tokens: int | None = None  # generation budget per row; measured by `sft`, else 16 per column
        self.invalid = 0  # generated rows that did not parse into a valid row, over the policy's lifetime
        apply_threads(threads)

    # -------------------------------------------------------------------- text <-> rows
    def texts(self, df: pd.DataFrame, rng: np.random.Generator) -> list[str]:
        names = self.schema.names
        records = df[names].astype(object).to_dict("records")
        return [format_text_row(r, [names[j] for j in rng.permutation(len(names))]) for r in records]

    def rows(self, texts: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
        """Parse texts; returns the valid rows (coerced to the schema) and the (N,) mask of valid texts."""
        names = self.schema.names
        parsed = [parse_text_row(t) for t in texts]
        whole = np.array([p is not None and set(p) == set(names) for p in parsed], dtype=bool)
        records = [{k: (None if v == MISSING_TEXT else v) for k, v in p.items()} for p, w in zip(parsed, whole) if w]
        frame = pd.DataFrame(records, columns=names, dtype=object)
        ok = whole.copy()
        if len(frame):
            valid = self.schema.valid_rows(frame).to_numpy()
            ok[np.flatnonzero(whole)[~valid]] = False
            frame = self.schema.format(self.schema.coerce(frame[valid].reset_index(drop=True)))
        return frame, ok

    # -------------------------------------------------------------------- Policy
    def _encode(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        tok = self.tokenizer
        seqs = [[self.start] + tok(t, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for t in texts]
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.bool)
        for i, s in enumerate(seqs):
            ids[i, :len(s)] = torch.tensor(s)
            mask[i, 1:len(s)] = True  # every token after the start token is the row's text (and its end)
        return ids, mask

    def items(self, df: pd.DataFrame, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.texts(df, np.random.default_rng(seed)), dtype=object), np.ones(len(df), dtype=bool)

    def logprob(self, model: torch.nn.Module, items: np.ndarray, idx: np.ndarray) -> torch.Tensor:
        ids, mask = self._encode(list(items[np.asarray(idx)]))  # (B, T), (B, T)
        return row_logprob(model(input_ids=ids, attention_mask=(ids != self.tokenizer.pad_token_id) | mask).logits,
                           ids, mask)  # (B,)

    def sample(self, n: int, *, seed: int, temperature: float, batch_size: int = 64,
               max_new_tokens: int | None = None) -> tuple[pd.DataFrame, np.ndarray]:
        """Generate until ``n`` valid rows or 5·n attempts; returns (rows, their texts)."""
        torch.manual_seed(seed)
        budget = max_new_tokens or self._row_tokens()
        frames, texts, tried = [], [], 0
        while sum(len(f) for f in frames) < n and tried < 5 * n:
            k = min(batch_size, 5 * n - tried)
            start = torch.full((k, 1), self.start, dtype=torch.long)
            with torch.no_grad():
                out = self.model.generate(start, attention_mask=torch.ones_like(start), do_sample=True,
                                          temperature=max(temperature, 1e-3), max_new_tokens=budget,
                                          pad_token_id=self.tokenizer.pad_token_id,
                                          eos_token_id=self.tokenizer.eos_token_id)
            batch = self.tokenizer.batch_decode(out[:, 1:], skip_special_tokens=True)
            frame, ok = self.rows(batch)
            self.invalid += int((~ok).sum())
            frames.append(frame)
            texts.extend(t.strip() for t, good in zip(batch, ok) if good)
            tried += k
        frame = pd.concat(frames, ignore_index=True).head(n) if frames else pd.DataFrame(columns=self.schema.names)
        return frame, np.asarray(texts[:len(frame)], dtype=object)

    def _row_tokens(self) -> int:
        return int(self.row_tokens or 16 * len(self.schema.names))

    def sft(self, real: pd.DataFrame, *, steps: int, batch_size: int, learning_rate: float, seed: int) -> list[float]:
        """``steps`` steps of trl's `SFTTrainer` on GReaT-style texts of ``real``."""
        import tempfile

        from datasets import Dataset
        from trl import SFTConfig, SFTTrainer

        texts = self.texts(real, np.random.default_rng(seed))
        self.row_tokens = int(np.percentile([len(self.tokenizer(t)["input_ids"]) for t in texts], 99)) + 4
        with tempfile.TemporaryDirectory() as tmp:
            args = SFTConfig(output_dir=tmp, max_steps=steps, per_device_train_batch_size=batch_size,
                             learning_rate=learning_rate, seed=seed, report_to=[], save_strategy="no",
                             logging_steps=max(1, steps), use_cpu=True, dataloader_num_workers=0,
                             disable_tqdm=True, dataset_text_field="text", packing=False,
                             **checkpointing_setting(SFTConfig))
            trainer = SFTTrainer(model=self.model, args=args, processing_class=self.tokenizer,
                                 train_dataset=Dataset.from_dict({"text": texts}))
            result = trainer.train()
        self.model.eval()
        return [float(result.training_loss)]

    def save(self, directory: str | os.PathLike, extra: dict[str, str]) -> Path:
        with atomic_directory(directory) as tmp:
            self.model.save_pretrained(str(tmp), safe_serialization=True)
            self.tokenizer.save_pretrained(str(tmp))
            self.schema.to_json(tmp / "schema.json")
            (tmp / "tabline_text_rows.json").write_text(json.dumps({"format": "great", "separator": ", ",
                                                                    "row_tokens": self._row_tokens()}),
                                                        encoding="utf-8")
            for name, text in extra.items():
                (tmp / name).write_text(text, encoding="utf-8")
        return Path(directory)


def checkpointing_setting(config_class: type) -> dict[str, bool]:
    """trl's own default for activation checkpointing, under the name the installed transformers reads.

    trl's configs turn it on by their default of ``gradient_checkpointing``, a name transformers 5 deprecated
    (a FutureWarning for every config built); passing the same value as ``activation_checkpointing`` keeps
    trl's choice without the warning. Older transformers know only the old name, so nothing is passed there.

    Example:
        >>> @dataclasses.dataclass
        ... class Config:  # trl's config on transformers 5
        ...     gradient_checkpointing: bool = True
        ...     activation_checkpointing: bool | None = None
        >>> checkpointing_setting(Config)
        {'activation_checkpointing': True}
    """
    fields = {f.name: f for f in dataclasses.fields(config_class)}
    if "activation_checkpointing" not in fields or "gradient_checkpointing" not in fields:
        return {}
    return {"activation_checkpointing": bool(fields["gradient_checkpointing"].default)}


def load_policy(directory: str | os.PathLike, data: pd.DataFrame | None = None, *,
                threads: int | None = None) -> Policy:
    """A `Policy` for a model directory: a tabline `TabularLM` directory, or a transformers causal LM
    directory (its schema comes from ``schema.json`` in the directory, else is inferred from ``data``)."""
    d = Path(directory)
    if not d.is_dir():
        raise ModelDirError(f"model directory not found: {d}")
    if (d / "tabline.json").exists():
        lm = TabularLM.load(d)
        if threads:
            lm.config = lm.config.model_copy(update={"threads": threads})
        return TabularLMPolicy(lm)
    if (d / "schema.json").exists():
        schema = Schema.load(d / "schema.json")
    elif data is not None:
        schema = Schema.infer(data)
    else:
        raise ModelDirError(f"{d} has no schema.json; pass the training table so its schema can be inferred")
    policy = TextRowsPolicy(d, schema, threads=threads)
    meta = d / "tabline_text_rows.json"
    if meta.exists():
        policy.row_tokens = json.loads(meta.read_text(encoding="utf-8")).get("row_tokens")
    return policy


__all__ = ["Policy", "TabularLMPolicy", "TextRowsPolicy", "batched_logprob", "format_text_row", "load_policy",
           "parse_text_row"]
