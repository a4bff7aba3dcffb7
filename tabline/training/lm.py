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
from typing import Any, Callable, Literal, Mapping, Sequence

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
from tabline.training.gpt import TabularGPT, folded_length
from tabline.training.guard import Copies, CopyGuard, SampleReport, keep_probability, overfit_signal
from tabline.training.plan import Plan, lr_factor, over_budget, plan_training
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
    max_epochs: int = Field(60, ge=1, description="at most this many epochs (the time budget plans fewer)")
    patience: int = Field(4, ge=1, description="epochs without validation improvement before stopping")
    val_fraction: float = Field(0.1, gt=0, lt=0.5)
    batch_size: int = Field(64, ge=1)
    learning_rate: float = Field(2e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    time_budget_s: float | Literal["auto"] | None = Field(
        "auto", description="seconds of training to plan for: 'auto' sizes it from the table (~100 s for 10k rows "
        "x 10 columns), None trains up to max_epochs; see tabline.training.plan")
    anneal_fraction: float = Field(0.2, ge=0, lt=1, description="share of the planned epochs that anneal the "
                                   "learning rate to 5 % at the end (0: no anneal)")
    guard_rows: int = Field(256, ge=0, description="rows sampled to watch the copy rate and DCR against held "
                            "rows (0: off)")
    # Every epoch measured 13-16 % of fit time on 2 cores (issue 12 ablation); the guard needs two checks in a
    # row over its limit, so every third epoch still stops a fit that memorises, a few epochs later.
    guard_every: int = Field(3, ge=1, description="watch after every this many epochs")
    canonical_fraction: float = Field(0.5, ge=0, le=1)
    # A marker takes a position of its own only to say which column comes next; folded into the token before
    # it, rows run ~40 % fewer positions in training and sampling (tabline.training.gpt, docs/tabular-lm.md)
    fold_markers: bool = Field(True, description="add each column marker to the token before it instead of "
                               "giving it a position (False: the layout of models saved before 0.2)")
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
    stopped_by: Literal["early_stopping", "max_epochs", "time_budget", "overfit_guard", "not_trained"] = "not_trained"
    threads: int | None = None  # torch threads the fit ran with (see `tabline.threads`)
    planned_epochs: int = 0  # the plan (tabline.training.plan), anneal included
    anneal_epochs: int = 0
    annealed_from: int | None = None  # the epoch whose weights the anneal started from
    budget_s: float | None = None
    tokens_per_s: float | None = None  # positions the model ran (markers folded away) per second of training
    copy_rate_natural: float | None = None  # share of held rows equal to a training row: real data's own rate
    history: list[dict[str, float]] = []


def _clock(seconds_from_now: float) -> str:
    """Wall-clock time ``seconds_from_now`` ahead, for a progress bar's expected end."""
    return time.strftime("%H:%M:%S", time.localtime(time.time() + seconds_from_now))


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


class TabularLM:
    """A GPT-2-style causal LM over one table's column-aware vocabulary. See the module docstring."""

    def __init__(self, config: TabularLMConfig | None = None):
        self.config = config or TabularLMConfig()
        self.schema: Schema | None = None
        self.tokenizer: TableTokenizer | None = None
        self.external: ExternalColumns | None = None
        self.model = None
        self.log = TrainingLog()
        self.guard = CopyGuard.empty()
        self.last_sample: SampleReport | None = None
        self._fitting = False

    # ------------------------------------------------------------------ training
    def fit(self, df: pd.DataFrame, schema: Schema | None = None, *, progress: bool = True,
            checkpoint: str | os.PathLike | None = None) -> "TabularLM":
        """Train from scratch on ``df`` (a validation split is held out for early stopping).

        ``checkpoint``: a directory where the whole training state is saved after every epoch; if it already
        holds the state of this same fit (same data and settings), training continues from there and ends
        exactly as an uninterrupted fit would (unless a time budget stopped it: that depends on the clock)."""
        from transformers import GPT2Config
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
        self.guard = CopyGuard.fit(df, self.schema, held=perm[:n_val])
        markers = [c.marker for c in tok.codes] if cfg.fold_markers else []
        positions = folded_length(tok.row_length(), len(markers))
        plan = plan_training(len(train_vals), tok.row_length(), budget_s=cfg.time_budget_s, max_epochs=cfg.max_epochs,
                             n_layer=cfg.n_layer, n_embd=cfg.n_embd, anneal_fraction=cfg.anneal_fraction,
                             model_length=positions)
        if plan.n_embd % cfg.n_head:
            raise InvalidArgumentError(f"n_embd ({plan.n_embd}) must be a multiple of n_head ({cfg.n_head})")
        self.model = TabularGPT(GPT2Config(
            vocab_size=tok.vocab_size, n_positions=positions, n_embd=plan.n_embd, n_layer=plan.n_layer,
            n_head=cfg.n_head, activation_function="gelu", resid_pdrop=cfg.dropout, embd_pdrop=cfg.dropout, attn_pdrop=cfg.dropout,
            initializer_range=cfg.init_std, bos_token_id=1, eos_token_id=2, pad_token_id=PAD, marker_ids=markers,
        ))
        key = fingerprint(df[self.schema.names], cfg.model_dump_json(exclude={"time_budget_s", "threads", "device"}),
                          self.schema.model_dump_json(), json.dumps(plan.__dict__))
        self._train(train_vals, val_vals, rng, progress, checkpoint, key, plan, df.iloc[perm[:n_val]])
        return self

    def _train(self, train_vals: np.ndarray, val_vals: np.ndarray, rng: np.random.Generator, progress: bool,
               checkpoint: str | os.PathLike | None, key: str, plan: Plan, held: pd.DataFrame) -> None:
        cfg, tok, model = self.config, self.tokenizer, self.model
        device = resolve_device(cfg.device)
        model.to(device)  # before the optimizer exists, so its moments are made there too
        val_ids = torch.from_numpy(tok.assemble(val_vals))
        steps_per_epoch = math.ceil(len(train_vals) / cfg.batch_size)
        warmup = min(200, steps_per_epoch)
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        state, best_state = TrainState(fingerprint=key), None
        resumed = load_checkpoint(checkpoint, model, opt, fingerprint=key) if checkpoint else None
        if resumed is not None:
            state, best_state, rng = resumed.state, resumed.best, resumed.rng
        # One thread count for the whole fit, chosen from the free cores at its start and reused by a resume:
        # gradients' sums split by thread differ in the last bits, so a count changing mid-fit would make the
        # same seed train a different model (sampling has no such sums, and adapts per batch)
        state.threads = threads.apply(cfg.threads or state.threads)
        log = TrainingLog(**state.log) if state.log else TrainingLog()
        log.threads, log.budget_s = state.threads, plan.budget_s
        log.planned_epochs, log.anneal_epochs = plan.epochs, plan.anneal_epochs
        log.copy_rate_natural = self.guard.natural_rate
        if state.anneal_start is None and plan.anneal_epochs:
            state.anneal_start = (plan.epochs - plan.anneal_epochs) * steps_per_epoch
            state.anneal_steps = plan.anneal_epochs * steps_per_epoch
        start = time.perf_counter() - state.seconds  # a resumed fit's budget counts the time already spent
        loop_s, tokens = 0.0, 0
        title = f"training (resumed after epoch {state.epoch})" if state.epoch else "training"
        self._fitting = True  # sampling for the guard must not change the fit's thread count
        try:
            with progress_bar(state.last_epoch or plan.epochs, title, enabled=progress) as bar:
                bar.advance(state.epoch)
                while log.stopped_by == "not_trained":  # set in the checkpoint written after the last epoch
                    epoch = state.epoch + 1
                    tick = time.perf_counter()
                    running, n_tokens = self._epoch(train_vals, rng, opt, state, steps_per_epoch, warmup)
                    loop_s, tokens = loop_s + time.perf_counter() - tick, tokens + n_tokens
                    val_loss = self._mean_loss(val_ids)
                    annealing = state.anneal_start is not None and state.step > state.anneal_start
                    entry = {"epoch": epoch, "train_loss": running, "val_loss": val_loss, "lr": opt.param_groups[0]["lr"]}
                    watch = self._watch(held, epoch) if cfg.guard_rows and epoch % cfg.guard_every == 0 else None
                    entry.update(watch or {})
                    log.history.append(entry)
                    log.epochs = state.epoch = epoch
                    tripped = watch is not None and overfit_signal(log.history, self.guard.natural_rate)
                    if val_loss < log.best_val_loss - 1e-4 and not tripped:
                        log.best_val_loss, log.best_epoch, state.bad_epochs = val_loss, epoch, 0
                        best_state = copy.deepcopy(model.state_dict())
                    else:
                        state.bad_epochs += 1
                        if not annealing:
                            state.lr_scale *= 0.5
                    elapsed = time.perf_counter() - start
                    epoch_s = elapsed / epoch
                    cause = None if annealing else (
                        "early_stopping" if state.bad_epochs >= cfg.patience else "overfit_guard" if tripped
                        else "time_budget" if over_budget(elapsed, epoch_s, plan.budget_s) else None)
                    if cause is not None:
                        state.cause = cause
                        if plan.anneal_epochs and best_state is not None:
                            # Anneal from the best weights so far instead of stopping where training went stale
                            model.load_state_dict(best_state)
                            log.annealed_from = log.best_epoch
                            n = max(1, min(plan.anneal_epochs, round(cfg.anneal_fraction * epoch)))
                            state.anneal_start, state.anneal_steps = state.step, n * steps_per_epoch
                            state.last_epoch, state.bad_epochs = epoch + n, 0
                            bar.update(total=state.last_epoch)
                        else:
                            log.stopped_by = cause
                    elif state.step == state.anneal_start and best_state is not None and log.best_epoch < epoch:
                        # The planned anneal is next, but the last epochs were worse than the best: anneal from it
                        model.load_state_dict(best_state)
                        log.annealed_from = log.best_epoch
                    last = state.last_epoch or plan.epochs
                    if log.stopped_by == "not_trained" and epoch >= last:
                        log.stopped_by = state.cause or (
                            "max_epochs" if plan.budget_s is None or plan.epochs >= cfg.max_epochs else "time_budget")
                    bar.advance(1, info=f"train {running:.3f} val {val_loss:.3f}" + (
                        "" if log.stopped_by != "not_trained" else f" · ends ~{_clock(epoch_s * (last - epoch))}"))
                    if checkpoint:
                        state.seconds, state.log = elapsed, log.model_dump()
                        save_checkpoint(checkpoint, state, model, opt, best=best_state, rng=rng)
        finally:
            self._fitting = False
        if best_state is not None:  # None only if no epoch had a finite validation loss
            model.load_state_dict(best_state)
        model.eval().cpu()  # a fitted model rests on the CPU: save, logprob, TabGRAA; sampling copies it over
        log.seconds = time.perf_counter() - start
        log.tokens_per_s = tokens / loop_s if loop_s > 0 else log.tokens_per_s
        self.log = log

    def _epoch(self, train_vals: np.ndarray, rng: np.random.Generator, opt: torch.optim.Optimizer, state: TrainState,
               steps: int, warmup: int) -> tuple[float, int]:
        """One pass over the training rows; returns the mean training loss and the tokens it saw."""
        cfg, model = self.config, self.model
        device = next(model.parameters()).device
        model.train()
        ids, labels = self.training_batch(train_vals, rng)
        ids, labels = ids.to(device), labels.to(device)  # no-ops on the CPU
        shuffle = torch.from_numpy(rng.permutation(len(ids)))
        losses = []
        for s in range(steps):
            idx = shuffle[s * cfg.batch_size : (s + 1) * cfg.batch_size]
            with training_autocast(device):  # bf16 on a GPU that has it; nothing on the CPU
                loss = model(input_ids=ids[idx], labels=labels[idx]).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            factor = lr_factor(state.step, warmup=warmup, anneal_start=state.anneal_start, anneal_steps=state.anneal_steps)
            for group in opt.param_groups:
                group["lr"] = cfg.learning_rate * state.lr_scale * factor
            opt.step()
            state.step += 1
            losses.append(loss.item())
        return float(np.mean(losses)), len(ids) * model.folded_length(ids.shape[1])  # positions the model ran

    def _watch(self, held: pd.DataFrame, epoch: int) -> dict[str, float]:
        """Copy rate and DCR share of a few sampled rows against the held rows (the overfit guard's view)."""
        rows = self.sample(self.config.guard_rows, seed=self.config.seed * 1_000_003 + epoch, copies="allow")
        return self.guard.watch(rows, held)

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
        columns: Sequence[str] | None = None, precision: Precision = "auto", copies: Copies = "natural",
    ) -> pd.DataFrame:
        """Sample ``n`` schema-valid rows. ``conditions`` fixes columns: a dict (same value for every row) or a
        DataFrame with ``n`` rows (one value per row; NaN means 'missing'). Same seed, same rows.

        ``columns`` limits generation to those columns (plus the conditions, which come back as given): the
        model stops after them, so a column worker pays only for its own tokens.

        ``copies``: rows equal to a row the model was fitted on are kept only at the rate real unseen rows
        repeat training rows ("natural", the default), never ("reject"), or as sampled ("allow"); rows
        dropped are drawn again, and ``lm.last_sample`` says how many (see `tabline.training.guard`). Partial
        rows (``columns``) are not checked.

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
        if copies not in ("natural", "reject", "allow"):
            raise InvalidArgumentError(f"copies must be 'natural', 'reject' or 'allow', got {copies!r}")
        self._threads()
        tok, d = self.tokenizer, len(self.tokenizer.codes)
        seed = self.config.seed if seed is None else seed
        device = resolve_device(self.config.device)
        gen, rng = sampling_generator(device, seed), np.random.default_rng(seed)
        forced, given = self._forced(n, conditions)  # (n, d, 2), condition values by column
        wanted = self._wanted(columns, given)
        order = [j for j in range(d) if forced[0, j, 0] >= 0] + [
            j for j in range(d) if forced[0, j, 0] < 0 and tok.codes[j].name in wanted]
        decoder = Decoder(self.model, precision, device)
        batch_size = batch_size or decoder.batch_for(decoder.positions(tok.row_length()))

        def draw(rows: np.ndarray, bar: Any) -> pd.DataFrame:
            chunks = []
            for i in range(0, len(rows), batch_size):
                if i:
                    self._threads()  # the machine may have become busier, or freer
                chunk = sample_values(decoder, tok, forced[rows[i : i + batch_size]], order,
                                      temperature=temperature, top_p=top_p, generator=gen)
                chunks.append(chunk)
                if bar is not None:
                    bar.advance(len(chunk))
            frame = tok.decode_values(np.concatenate(chunks), rng, only=[tok.codes[j].name for j in order])
            for name in given.columns:
                frame[name] = given[name].to_numpy()[rows]  # exact condition values, not their decoding
            external = self.external.sample(len(rows), rng)
            frame = pd.concat([frame, external[[c for c in external.columns if c in wanted and c not in frame]]], axis=1)
            names = [c for c in self.schema.names if c in frame.columns]
            return self.schema.format(frame.reindex(columns=self.schema.names))[names]

        guarded = copies != "allow" and columns is None and self.guard.active
        report = SampleReport(n, copies, natural_rate=self.guard.natural_rate if guarded else None)
        with progress_bar(n, "sampling", enabled=progress) as bar:
            frame = draw(np.arange(n), bar)
            if guarded:
                frame = self._guard(frame, draw, bar, rng, report)
        self.last_sample = report
        return frame

    def _guard(self, frame: pd.DataFrame, draw: Callable[[np.ndarray, Any], pd.DataFrame], bar: Any, rng: np.random.Generator, report: SampleReport,
               max_rounds: int = 20) -> pd.DataFrame:
        """Redraw copies of training rows beyond what ``report.mode`` keeps (see `tabline.training.guard`)."""
        is_copy = self.guard.copies(frame)
        keep = 0.0 if report.mode == "reject" else keep_probability(float(is_copy.mean()), report.natural_rate or 0.0)
        rows = np.arange(len(frame))
        for _ in range(max_rounds):
            report.copies_drawn += int(is_copy.sum())
            redo = rows[is_copy & (rng.random(len(rows)) >= keep)]
            if not len(redo):
                break
            report.rounds += 1
            report.copies_rejected += len(redo)
            fresh = draw(redo, None)  # redraws are not counted again on the bar
            fresh.index = frame.index[redo]
            frame.loc[fresh.index, fresh.columns] = fresh
            rows, is_copy = redo, self.guard.copies(fresh)
        report.copies_kept = int(self.guard.copies(frame).sum())
        return frame
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
                    "training": self.log.model_dump(), "external": self.external.to_dict(),
                    "copy_guard": self.guard.save(tmp)}
            (tmp / "tabline.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
            for name, text in (extra or {}).items():
                (tmp / name).write_text(text, encoding="utf-8")
        return Path(directory)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "TabularLM":
        """Load a directory written by `save`; `ModelDirError` says what is missing or wrong."""
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
            # a model saved before the folded layout has no fold_markers setting: it runs as it was trained
            lm = cls(TabularLMConfig(**{"fold_markers": False, **config,
                                        "device": device_for_loading(config.get("device", "auto"))}))
            lm.schema = Schema.load(d / "schema.json")
            lm.tokenizer = TableTokenizer.load(d, lm.schema)
            lm.external = ExternalColumns.from_dict(meta["external"])
            lm.log = TrainingLog(**meta["training"])
            lm.model = TabularGPT.from_pretrained(str(d), use_safetensors=True)
            lm.guard = CopyGuard.load(d, meta.get("copy_guard"), lm.schema)  # absent: a model from before guards
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
        if self._fitting:
            return torch.get_num_threads()  # inside a fit: its one thread count (see `_train`)
        return threads.apply(self.config.threads)
