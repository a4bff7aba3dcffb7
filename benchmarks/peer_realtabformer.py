"""REaLTabFormer as a benchmark peer (runs inside its own venv, benchmarks/.venv-rtf: it needs transformers<5).

A small GPT-2 of tabline's size, a wall-clock stop on training, and the parameter count of its default model
for the record. Called by `benchmarks.peers` with ``--method realtabformer``.
"""
from __future__ import annotations

import contextlib
import io
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from benchmarks._common import FitResult, seed_everything

def gpt2_num_parameters(vocab_size: int, n_positions: int, n_embd: int, n_layer: int) -> int:
    """Parameter count of transformers' GPT2LMHeadModel (tied LM head), closed form."""
    d = n_embd
    per_block = 12 * d * d + 13 * d  # attn (4d^2+4d) + mlp (8d^2+5d) + 2 layernorms (4d)
    return vocab_size * d + n_positions * d + n_layer * per_block + 2 * d


# REaLTabFormer's own default network (recorded in RESULTS.md beside the small one we run).
RTF_DEFAULT_GPT2 = {"n_layer": 6, "n_embd": 768, "n_head": 12, "n_positions": 1024}


def run_realtabformer(train: pd.DataFrame, seed: int, cfg: dict[str, Any], meta: dict) -> FitResult:
    import logging
    import warnings

    import transformers  # noqa: PLC0415
    from realtabformer import REaLTabFormer  # noqa: PLC0415
    from transformers import GPT2Config  # noqa: PLC0415

    warnings.filterwarnings("ignore")
    transformers.logging.set_verbosity_error()
    logging.getLogger().setLevel(logging.WARNING)
    cfg = dict(cfg)
    gpt2 = GPT2Config(n_layer=cfg["n_layer"], n_embd=cfg["n_embd"], n_head=cfg["n_head"],
                      n_positions=cfg.get("n_positions", 128))
    workdir = Path(tempfile.mkdtemp(prefix="rtf-"))
    rtf = REaLTabFormer(
        model_type="tabular",
        tabular_config=gpt2,
        checkpoints_dir=str(workdir / "checkpoints"),
        samples_save_dir=str(workdir / "samples"),
        full_save_dir=str(workdir / "full"),
        epochs=cfg["epochs"],
        batch_size=cfg["batch_size"],
        random_state=1029 + seed,  # RTF skips seeding when random_state is falsy (0)
        train_size=1,
        numeric_nparts=cfg["numeric_nparts"],
        numeric_precision=cfg["numeric_precision"],
        numeric_max_len=cfg["numeric_max_len"],
        gradient_accumulation_steps=cfg["gradient_accumulation_steps"],
        learning_rate=cfg["learning_rate"],
        save_strategy="no",
        logging_steps=10_000,
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        seed=seed,
        dataloader_num_workers=0,
    )
    budget = _TimeBudget(transformers.TrainerCallback, cfg.get("train_time_budget_s"))
    build = rtf._build_tabular_trainer

    def _build_with_budget(*a, **k):  # RTF builds its Trainer inside fit(); add our callback
        trainer = build(*a, **k)
        trainer.add_callback(budget.callback)
        return trainer

    rtf._build_tabular_trainer = _build_with_budget
    res = FitResult()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        trainer = rtf.fit(train, n_critic=cfg["n_critic"], device="cpu")
    res.extra["fit_s"] = time.perf_counter() - t0
    res.params = int(rtf.model.num_parameters())
    res.params_note = "whole GPT-2 (GPT2LMHeadModel.num_parameters())"
    vocab = int(rtf.tabular_config.vocab_size)
    seq_len = int(rtf.tabular_max_length)
    d = RTF_DEFAULT_GPT2
    res.extra.update({
        "vocab_size": vocab,
        "sequence_length": seq_len,
        "n_positions": int(rtf.tabular_config.n_positions),
        "params_closed_form": gpt2_num_parameters(vocab, int(rtf.tabular_config.n_positions),
                                                  cfg["n_embd"], cfg["n_layer"]),
        "default_model": dict(d),
        "default_model_params": gpt2_num_parameters(vocab, d["n_positions"], d["n_embd"],
                                                    d["n_layer"]),
        "realtabformer_version": getattr(__import__("realtabformer"), "__version__", "?"),
        "transformers_version": transformers.__version__,
        "train_steps": int(getattr(getattr(trainer, "state", None), "global_step", 0) or 0),
        "epochs_done": float(getattr(getattr(trainer, "state", None), "epoch", 0) or 0),
        "train_loop_s": budget.elapsed(),
        "stopped_by_time_budget": budget.hit,
    })

    def _sample(n: int, s: int) -> pd.DataFrame:
        seed_everything(s)
        with contextlib.redirect_stdout(io.StringIO()):
            return rtf.sample(n_samples=n, gen_batch=cfg["gen_batch"], device="cpu")

    res.sample = _sample
    return res


class _TimeBudget:
    """A transformers TrainerCallback that stops training once ``seconds`` have passed."""

    def __init__(self, base, seconds: float | None):
        self.seconds, self.hit, self.t0, self.t1 = seconds, False, None, None
        outer = self

        class _Callback(base):
            def on_train_begin(self, args, state, control, **kw):
                outer.t0 = time.perf_counter()

            def on_step_end(self, args, state, control, **kw):
                outer.t1 = time.perf_counter()
                if outer.seconds and outer.t1 - outer.t0 > outer.seconds:
                    control.should_training_stop = True
                    outer.hit = True
                return control

            def on_train_end(self, args, state, control, **kw):
                outer.t1 = time.perf_counter()

        self.callback = _Callback()

    def elapsed(self) -> float | None:
        return None if self.t0 is None or self.t1 is None else self.t1 - self.t0
