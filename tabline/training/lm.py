"""`TabularLM`: the embedded backbone — a small GPT-2 trained from scratch on one table.

Any-column conditioning: during training half of the rows (``canonical_fraction``) are written in the
schema's column order; the others start with a random subset of columns in random order, then continue
in schema order. Sampling without conditions uses the schema order; sampling with conditions puts the
conditioned columns first and the rest in schema order — exactly the layouts seen in training, so
``p(rest | conditions)`` is learnt directly instead of being approximated by rejection.

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"a": list(range(40)) * 2, "b": ["x", "y"] * 40})
    >>> lm = TabularLM(TabularLMConfig(max_epochs=1, seed=0)).fit(df, progress=False)
    >>> synth = lm.sample(5, seed=1, conditions={"b": "y"})
    >>> synth["b"].tolist()
    ['y', 'y', 'y', 'y', 'y']
"""
from __future__ import annotations

import copy
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field

from tabline import __version__, threads
from tabline._progress import progress_bar
from tabline.errors import ConditionError, InvalidArgumentError, InvalidTableError, ModelDirError
from tabline.io import atomic_directory
from tabline.schema import Schema
from tabline.training.checkpoint import TrainState, fingerprint, load_checkpoint, save_checkpoint
from tabline.training.external import ExternalColumns
from tabline.training.decoder import Decoder, Precision
from tabline.training.device import (DeviceSpec, device_for_loading, resolve_device, sampling_generator,
                                     training_autocast)
from tabline.training.sampler import sample_values
from tabline.training.tokenizer import PAD, TableTokenizer

MIN_ROWS = 10
_FILES = ["config.json", "model.safetensors", "tabline_tokenizer.json", "schema.json", "tabline.json"]


class TabularLMConfig(BaseModel):
    """Settings of the embedded tabular LM. ``None`` sizes are chosen from the data (rows × tokens per row).

    Example:
        >>> TabularLMConfig(max_epochs=5).patience
        4
    """

    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    n_layer: int | None = Field(None, ge=1, le=48)
    n_embd: int | None = Field(None, ge=16, le=4096)
    n_head: int = Field(4, ge=1)
    # Off by default: on 2 CPU cores dropout costs ~40 % of step time; early stopping guards overfitting.
    dropout: float = Field(0.0, ge=0, lt=1)
    # GPT-2's 0.02 suits wide text models; for these narrow ones it leaves attention near uniform for
    # epochs (the model learns each column's marginal first). 0.1 measured 3-5x faster to learn the
    # dependencies between columns (docs/tabular-lm.md).
    init_std: float = Field(0.1, gt=0, le=1)
    max_epochs: int = Field(40, ge=1)
    patience: int = Field(4, ge=1, description="epochs without validation improvement before stopping")
    val_fraction: float = Field(0.1, gt=0, lt=0.5)
    batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(2e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    time_budget_s: float | None = Field(None, gt=0, description="stop training after this many seconds")
    canonical_fraction: float = Field(0.5, ge=0, le=1)
    coarse_bins: int = Field(64, ge=2, le=1024)
    fine_bins: int = Field(128, ge=2, le=4096)
    exact_values: int = Field(128, ge=2, le=4096)
    threads: int | None = Field(None, ge=1, description="torch CPU threads (default: the cores other programs "
                                "leave free, measured when a fit starts and before each sampling batch; see "
                                "tabline.threads)")
    device: DeviceSpec = Field("auto", description="'auto' (a CUDA GPU when torch sees one, else the CPU), 'cpu', "
                               "'cuda' or 'cuda:N'; see tabline.training.device")


class TrainingLog(BaseModel):
    model_config = ConfigDict(extra="forbid")
    epochs: int = 0
    best_epoch: int = 0
    best_val_loss: float = math.inf
    seconds: float = 0.0
    stopped_by: Literal["early_stopping", "max_epochs", "time_budget", "not_trained"] = "not_trained"
    threads: int | None = None  # torch threads the fit ran with (see `tabline.threads`)
    history: list[dict[str, float]] = []


def training_orders(n: int, d: int, rng: np.random.Generator, canonical_fraction: float) -> np.ndarray:
    """Column orders for ``n`` training rows, (n, d): schema order, or a random prefix subset then schema order.

    Example:
        >>> o = training_orders(4, 3, np.random.default_rng(0), canonical_fraction=1.0)
        >>> o.tolist()
        [[0, 1, 2], [0, 1, 2], [0, 1, 2], [0, 1, 2]]
    """
    canonical = np.broadcast_to(np.arange(d), (n, d))
    perm = np.argsort(rng.random((n, d)), axis=1)  # (n, d) a random permutation per row
    rank = np.empty_like(perm)
    np.put_along_axis(rank, perm, np.broadcast_to(np.arange(d), (n, d)), axis=1)  # rank of each column
    k = rng.integers(1, d + 1, size=n)[:, None]  # (n, 1) prefix length
    priority = np.where(rank < k, rank, d + canonical)  # prefix columns first, others in schema order
    mixed = np.argsort(priority, axis=1, kind="stable")
    use_canonical = rng.random(n)[:, None] < canonical_fraction
    return np.where(use_canonical, canonical, mixed)


def row_logprob(logits: torch.Tensor, ids: torch.Tensor, value_mask: torch.Tensor) -> torch.Tensor:
    """Sum of log p(token) over each row's value tokens, the quantity the training loss averages.

    logits (B, T, V), ids (B, T), value_mask (B, T) bool -> (B,). Logits at t predict the token at t + 1.
    """
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)  # (B, T-1, V)
    tok = logp.gather(-1, ids[:, 1:, None]).squeeze(-1)  # (B, T-1)
    return (tok * value_mask[:, 1:]).sum(-1)  # (B,)


def choose_size(n_rows: int, row_length: int) -> tuple[int, int]:
    """(n_layer, n_embd) from the amount of training text: larger tables get a deeper, wider model."""
    tokens = n_rows * row_length
    if tokens < 100_000:
        return 2, 96
    if tokens < 400_000:
        return 3, 128
    if tokens < 2_000_000:
        return 4, 128
    return 4, 192


class TabularLM:
    """A GPT-2-style causal LM over one table's column-aware vocabulary. See the module docstring."""

    def __init__(self, config: TabularLMConfig | None = None):
        self.config = config or TabularLMConfig()
        self.schema: Schema | None = None
        self.tokenizer: TableTokenizer | None = None
        self.external: ExternalColumns | None = None
        self.model = None
        self.log = TrainingLog()

    # ------------------------------------------------------------------ training
    def fit(self, df: pd.DataFrame, schema: Schema | None = None, *, progress: bool = True,
            checkpoint: str | os.PathLike | None = None) -> "TabularLM":
        """Train from scratch on ``df`` (a validation split is held out for early stopping).

        ``checkpoint``: a directory where the whole training state is saved after every epoch; if it already
        holds the state of this same fit (same data and settings), training continues from there and ends
        exactly as an uninterrupted fit would (unless a time budget stopped it: that depends on the clock)."""
        from transformers import GPT2Config, GPT2LMHeadModel
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # its notices about unused config keys are noise to our users
        cfg = self.config
        if len(df) < MIN_ROWS:
            raise InvalidTableError(f"the table has {len(df)} row(s); at least {MIN_ROWS} are needed to fit a model")
        self.schema = schema or Schema.infer(df)
        self.schema.validate_table(df)
        resolve_device(cfg.device)  # a device this machine lacks fails here, before any work
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        self.tokenizer = tok = TableTokenizer.fit(
            df, self.schema, coarse_bins=cfg.coarse_bins, fine_bins=cfg.fine_bins, exact_values=cfg.exact_values
        )
        self.external = ExternalColumns.fit(df, self.schema)
        if not tok.codes:
            raise InvalidTableError("the table has only text, identifier and constant columns: there is nothing to model")
        values = tok.encode_values(df)  # (N, d, 2)
        perm = rng.permutation(len(df))
        n_val = max(1, int(round(cfg.val_fraction * len(df))))
        val_vals, train_vals = values[perm[:n_val]], values[perm[n_val:]]
        n_layer, n_embd = choose_size(len(train_vals), tok.row_length())
        n_layer, n_embd = cfg.n_layer or n_layer, cfg.n_embd or n_embd
        if n_embd % cfg.n_head:
            raise InvalidArgumentError(f"n_embd ({n_embd}) must be a multiple of n_head ({cfg.n_head})")
        self.model = GPT2LMHeadModel(GPT2Config(
            vocab_size=tok.vocab_size, n_positions=tok.row_length(), n_embd=n_embd, n_layer=n_layer,
            n_head=cfg.n_head, activation_function="gelu", resid_pdrop=cfg.dropout, embd_pdrop=cfg.dropout, attn_pdrop=cfg.dropout,
            initializer_range=cfg.init_std, bos_token_id=1, eos_token_id=2, pad_token_id=PAD,
        ))
        key = fingerprint(df[self.schema.names], cfg.model_dump_json(exclude={"time_budget_s", "threads", "device"}),
                          self.schema.model_dump_json())
        self._train(train_vals, val_vals, rng, progress, checkpoint, key)
        return self

    def _train(self, train_vals: np.ndarray, val_vals: np.ndarray, rng: np.random.Generator, progress: bool,
               checkpoint: str | os.PathLike | None, key: str) -> None:
        cfg, tok, model = self.config, self.tokenizer, self.model
        device = resolve_device(cfg.device)
        model.to(device)  # before the optimizer exists, so its moments are made there too
        val_ids = torch.from_numpy(tok.assemble(val_vals))
        steps_per_epoch = math.ceil(len(train_vals) / cfg.batch_size)
        warmup = min(200, steps_per_epoch)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        # Warm-up, then a constant rate halved whenever validation stalls. A decaying schedule fixed in advance
        # measured worse: learning *which* column a value depends on comes after a plateau of variable
        # length, and a rate already decayed by then stretches the plateau (docs/tabular-lm.md).
        state, best_state = TrainState(fingerprint=key), None
        resumed = load_checkpoint(checkpoint, model, opt, fingerprint=key) if checkpoint else None
        if resumed is not None:
            state, best_state, rng = resumed.state, resumed.best, resumed.rng
        # One thread count for the whole fit, chosen from the free cores at its start and reused by a resume:
        # gradients' sums split by thread differ in the last bits, so a count changing mid-fit would make the
        # same seed train a different model (sampling has no such sums, and adapts per batch)
        state.threads = threads.apply(cfg.threads or state.threads)
        log = TrainingLog(**state.log) if state.log else TrainingLog()
        log.threads = state.threads
        start = time.perf_counter() - state.seconds  # a resumed fit's budget counts the time already spent
        title = f"training (resumed after epoch {state.epoch})" if state.epoch else "training"
        with progress_bar(cfg.max_epochs, title, enabled=progress) as bar:
            bar.advance(state.epoch)
            for epoch in range(state.epoch + 1, cfg.max_epochs + 1):
                if log.stopped_by != "not_trained":
                    break  # the checkpoint was written after the last epoch
                model.train()
                ids, labels = self.training_batch(train_vals, rng)
                ids, labels = ids.to(device), labels.to(device)  # no-ops on the CPU
                shuffle = torch.from_numpy(rng.permutation(len(ids)))
                running = []
                for s in range(steps_per_epoch):
                    idx = shuffle[s * cfg.batch_size : (s + 1) * cfg.batch_size]
                    with training_autocast(device):  # bf16 on a GPU that has it; nothing on the CPU
                        loss = model(input_ids=ids[idx], labels=labels[idx]).loss
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                    for group in opt.param_groups:
                        group["lr"] = cfg.learning_rate * state.lr_scale * min(1.0, (state.step + 1) / warmup)
                    opt.step()
                    state.step += 1
                    running.append(loss.item())
                val_loss = self._mean_loss(val_ids)
                log.history.append({"epoch": epoch, "train_loss": float(np.mean(running)), "val_loss": val_loss})
                log.epochs = state.epoch = epoch
                if val_loss < log.best_val_loss - 1e-4:
                    log.best_val_loss, log.best_epoch, state.bad_epochs = val_loss, epoch, 0
                    best_state = copy.deepcopy(model.state_dict())
                else:
                    state.bad_epochs += 1
                    state.lr_scale *= 0.5
                bar.advance(1, info=f"train {np.mean(running):.3f} val {val_loss:.3f}")
                elapsed = time.perf_counter() - start
                if state.bad_epochs >= cfg.patience:
                    log.stopped_by = "early_stopping"
                elif cfg.time_budget_s is not None and elapsed * (epoch + 1) / epoch > cfg.time_budget_s:
                    log.stopped_by = "time_budget"  # the next epoch would overrun the budget
                elif epoch == cfg.max_epochs:
                    log.stopped_by = "max_epochs"
                if checkpoint:
                    state.seconds, state.log = elapsed, log.model_dump()
                    save_checkpoint(checkpoint, state, model, opt, best=best_state, rng=rng)
        if log.stopped_by == "not_trained":
            log.stopped_by = "max_epochs"
        if best_state is not None:  # None only if no epoch had a finite validation loss
            model.load_state_dict(best_state)
        model.eval().cpu()  # a fitted model rests on the CPU: save, logprob, TabGRAA; sampling copies it over
        log.seconds = time.perf_counter() - start
        self.log = log

    def training_batch(self, values: np.ndarray, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Input ids and labels (-100 off value tokens) for encoded rows (N, d, 2) in training layouts: schema
        order or a random prefix (``canonical_fraction``). Shared by `fit` and TabGRAA's extra-SFT control."""
        tok = self.tokenizer
        orders = training_orders(len(values), len(tok.codes), rng, self.config.canonical_fraction)
        ids = torch.from_numpy(tok.assemble(values, orders))
        return ids, ids.masked_fill(~torch.from_numpy(tok.value_mask(ids.numpy())), -100)

    @torch.no_grad()
    def _mean_loss(self, ids: torch.Tensor, batch_size: int = 1024) -> float:
        """Mean per-value-token NLL in schema order: the validation loss and the `logprob` normaliser."""
        self.model.eval()
        device = next(self.model.parameters()).device  # the training device while a fit runs
        mask = torch.from_numpy(self.tokenizer.value_mask(ids.numpy()))
        ids, part = ids.to(device), mask.to(device)
        with training_autocast(device):
            total = sum(float(row_logprob(self.model(input_ids=ids[i : i + batch_size]).logits,
                                          ids[i : i + batch_size], part[i : i + batch_size]).sum())
                        for i in range(0, len(ids), batch_size))
        return -total / float(mask[:, 1:].sum())

    # ------------------------------------------------------------------ sampling
    def sample(
        self, n: int, *, conditions: Mapping[str, Any] | pd.DataFrame | None = None, seed: int | None = None,
        temperature: float = 1.0, top_p: float = 1.0, batch_size: int | None = None, progress: bool = False,
        columns: Sequence[str] | None = None, precision: Precision = "auto",
    ) -> pd.DataFrame:
        """Sample ``n`` schema-valid rows. ``conditions`` fixes columns: a dict (same value for every row) or a
        DataFrame with ``n`` rows (one value per row; NaN means 'missing'). Same seed, same rows.

        ``columns`` limits generation to those columns (plus the conditions, which come back as given): the
        model stops after them, so a column worker pays only for its own tokens.

        ``batch_size``: rows decoded together; by default as many as keep the key/value cache near 256 MB (at
        most 4,096: larger batches measured no faster).

        Reproducibility: the same seed gives the same rows for the same model, batch size and precision; "auto"
        precision depends on the CPU, so pass ``precision="float32"`` for rows that match across machines.

        ``precision``: "auto" multiplies in bfloat16 where the CPU does so in hardware (the residual stream and
        the probabilities stay float32), "float32" everywhere else; see `tabline.training.decoder`."""
        self._require_fitted()
        if not isinstance(n, (int, np.integer)) or n <= 0:
            raise InvalidArgumentError(f"n must be a positive whole number of rows, got {n!r}")
        if temperature < 0 or not 0 < top_p <= 1:
            raise InvalidArgumentError(f"need temperature >= 0 and 0 < top_p <= 1, got {temperature}, {top_p}")
        self._threads()
        tok, d = self.tokenizer, len(self.tokenizer.codes)
        seed = self.config.seed if seed is None else seed
        device = resolve_device(self.config.device)
        gen, rng = sampling_generator(device, seed), np.random.default_rng(seed)
        forced, given = self._forced(n, conditions)  # (n, d, 2), condition values by column
        wanted = self._wanted(columns, given)
        order = [j for j in range(d) if forced[0, j, 0] >= 0] + [
            j for j in range(d) if forced[0, j, 0] < 0 and tok.codes[j].name in wanted]
        chunks, decoder = [], Decoder(self.model, precision, device)
        batch_size = batch_size or decoder.batch_for(tok.row_length())
        with progress_bar(n, "sampling", enabled=progress) as bar:
            for i in range(0, n, batch_size):
                if i:
                    self._threads()  # the machine may have become busier, or freer
                chunk = sample_values(decoder, tok, forced[i : i + batch_size], order,
                                      temperature=temperature, top_p=top_p, generator=gen)
                chunks.append(chunk)
                bar.advance(len(chunk))
        frame = tok.decode_values(np.concatenate(chunks), rng, only=[tok.codes[j].name for j in order])
        for name in given.columns:
            frame[name] = given[name]  # exact condition values, not their (possibly binned) decoding
        external = self.external.sample(n, rng)
        frame = pd.concat([frame, external[[c for c in external.columns if c in wanted and c not in frame]]], axis=1)
        names = [c for c in self.schema.names if c in frame.columns]
        return self.schema.format(frame.reindex(columns=self.schema.names))[names]

    def _wanted(self, columns: Sequence[str] | None, given: pd.DataFrame) -> set[str]:
        if columns is None:
            return set(self.schema.names)
        unknown = [c for c in columns if c not in self.schema.names]
        if unknown:
            raise InvalidArgumentError(f"cannot generate unknown column(s) {unknown}; columns are {self.schema.names}")
        return set(columns) | set(given.columns)

    def _forced(self, n: int, conditions) -> tuple[np.ndarray, pd.DataFrame]:
        if conditions is None:
            return np.full((n, len(self.tokenizer.codes), 2), -1, dtype=np.int64), pd.DataFrame(index=range(n))
        if isinstance(conditions, pd.DataFrame):
            if len(conditions) != n:
                raise ConditionError(f"the conditions table has {len(conditions)} rows but n is {n}")
            frame = conditions.reset_index(drop=True)
        else:
            frame = pd.DataFrame({k: pd.Series([v] * n, dtype=object) for k, v in dict(conditions).items()})
        return self.tokenizer.encode_conditions(frame)

    # ------------------------------------------------------------------ likelihood
    @torch.no_grad()
    def logprob(self, df: pd.DataFrame, batch_size: int = 1024) -> np.ndarray:
        """Per-row log-likelihood (nats) of the modelled columns in schema order, shape (rows,).

        Its mean divided by the number of value tokens per row is the training/validation loss.
        Numbers are scored as their tokens (coarse bin + fine bin), i.e. a discretised likelihood.
        """
        self._require_fitted()
        ids = torch.from_numpy(self.tokenizer.encode_strict(df))
        mask = torch.from_numpy(self.tokenizer.value_mask(ids.numpy()))
        self.model.eval()
        out = [row_logprob(self.model(input_ids=ids[i : i + batch_size]).logits, ids[i : i + batch_size],
                           mask[i : i + batch_size]) for i in range(0, len(ids), batch_size)]
        return torch.cat(out).numpy().astype(np.float64)

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | os.PathLike, extra: Mapping[str, str] | None = None) -> Path:
        """Write weights (safetensors), tokenizer, schema and settings, plus ``extra`` text files (name ->
        content, e.g. an alignment report); atomic: all or nothing."""
        from transformers.utils import logging as hf_logging

        self._require_fitted()
        hf_logging.disable_progress_bar()  # its per-shard bar is noise for a one-file model
        with atomic_directory(directory) as tmp:
            self.model.save_pretrained(str(tmp), safe_serialization=True)
            self.tokenizer.save(tmp)
            self.schema.to_json(tmp / "schema.json")
            meta = {"format": 1, "tabline_version": __version__, "config": self.config.model_dump(),
                    "training": self.log.model_dump(), "external": self.external.to_dict()}
            (tmp / "tabline.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
            for name, text in (extra or {}).items():
                (tmp / name).write_text(text, encoding="utf-8")
        return Path(directory)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "TabularLM":
        """Load a directory written by `save`; `ModelDirError` says what is missing or wrong."""
        from transformers import GPT2LMHeadModel
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # config notices are noise to our users
        hf_logging.disable_progress_bar()  # a bar for loading one small file is noise too
        d = Path(directory)
        if not d.is_dir():
            raise ModelDirError(f"model directory not found: {d}")
        missing = [f for f in _FILES if not (d / f).exists()]
        if missing:
            raise ModelDirError(f"{d} is not a tabline model directory (missing: {', '.join(missing)})")
        try:
            meta = json.loads((d / "tabline.json").read_text(encoding="utf-8"))
            if meta.get("format") != 1:
                raise ModelDirError(f"{d} was written in model format {meta.get('format')}; this tabline reads format 1")
            config = meta["config"]  # trained on a GPU? it still loads and samples where there is none
            lm = cls(TabularLMConfig(**{**config, "device": device_for_loading(config.get("device", "auto"))}))
            lm.schema = Schema.load(d / "schema.json")
            lm.tokenizer = TableTokenizer.load(d, lm.schema)
            lm.external = ExternalColumns.from_dict(meta["external"])
            lm.log = TrainingLog(**meta["training"])
            lm.model = GPT2LMHeadModel.from_pretrained(str(d), use_safetensors=True)
        except (json.JSONDecodeError, KeyError, TypeError, OSError) as exc:
            raise ModelDirError(f"{d} is damaged: {exc}") from exc
        lm.model.eval()
        return lm

    # ------------------------------------------------------------------ misc
    def num_parameters(self) -> int:
        self._require_fitted()
        return sum(p.numel() for p in self.model.parameters())

    def _require_fitted(self) -> None:
        if self.model is None:
            raise RuntimeError("TabularLM is not fitted: call fit(df) or TabularLM.load(dir) first")

    def _threads(self) -> int:
        return threads.apply(self.config.threads)
