"""The model commands: `tabline align` (TabGRAA) and `tabline llm check`.

Example:
    $ tabline align model/ --data train.csv --rounds 2 -o aligned/
    $ tabline llm check openai-compatible:http://127.0.0.1:8000/v1:Qwen/Qwen2.5-7B-Instruct
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from tabline.cli import _BAD_LINES_HELP, _OTEL_HELP, _SEP_HELP, _friendly, _otel, _read, app, err, out
from tabline.errors import InvalidArgumentError


@app.command()
@_friendly
def align(
    model_dir: Path = typer.Argument(..., help="A model directory: from `tabline fit`, or any transformers causal LM."),
    data: Path = typer.Option(..., "--data", help="The real rows (CSV) the rewards compare samples with."),
    output: Path = typer.Option(..., "-o", "--output", help="Directory for the aligned model (replaced atomically)."),
    rounds: int = typer.Option(2, "--rounds", help="Rounds of generate → score → align."),
    reward: str = typer.Option("classifier", "--reward", help="classifier (random forest: can it tell the row "
                               "from real?), dcr (distance to the nearest real row) or random (the ablation)."),
    loss: str = typer.Option("graa", "--loss", help="graa, graa-logsig, dpo, kto, npo, or sft (extra training, "
                             "same number of steps: the control)."),
    beta: Optional[float] = typer.Option(None, "--beta", help="β of the loss (default 1; in GRAA z = r̄_H − β·r̄_L)."),
    learning_rate: Optional[float] = typer.Option(None, "--lr", help="AdamW learning rate (default 1e-5; higher rates made the model worse in our tuning)."),
    group_batch: Optional[int] = typer.Option(None, "--batch", help="B: rows from each group per step (default 4)."),
    samples: Optional[int] = typer.Option(None, "--samples", help="Rows sampled per round (default: as many as --data has)."),
    sft_steps: int = typer.Option(0, "--sft-steps", help="First fine-tune a transformers model on --data for this "
                                  "many steps (trl SFTTrainer); the reference is the result."),
    seed: int = typer.Option(0, help="Random seed (same seed + data + model = same aligned model)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch CPU threads (default: all cores)."),
    sep: Optional[str] = typer.Option(None, "--sep", help=_SEP_HELP),
    on_bad_lines: str = typer.Option("error", "--on-bad-lines", help=_BAD_LINES_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    otel: bool = typer.Option(False, "--otel", help=_OTEL_HELP),
) -> None:
    """TabGRAA: post-train a model against a frozen copy of itself, rewarded for rows a scorer cannot tell from real ones.

    Writes the aligned model plus align.json (per-round rewards and losses) and trace.jsonl."""
    from tabline.graphs.tabgraa import align_model
    from tabline.training.tabgraa import LOSSES, AlignConfig, reward_for

    reward_for(reward)
    if loss not in LOSSES:
        raise InvalidArgumentError(f"unknown loss {loss!r}; choose one of: {', '.join(LOSSES)}")
    settings = {"loss": loss, "reward": reward, "rounds": rounds, "seed": seed, "beta": beta,
                "learning_rate": learning_rate, "group_batch": group_batch, "samples": samples}
    config = AlignConfig(**{k: v for k, v in settings.items() if v is not None})
    export = _otel(otel)
    df = _read(data, sep=sep, on_bad_lines=on_bad_lines)
    report = align_model(model_dir, df, config, output, sft_steps=sft_steps, threads=threads, progress=not quiet,
                         otel=export)
    for h in report["history"]:
        auc = f", held-out AUC {h['heldout_auc']:.3f}" if "heldout_auc" in h else ""
        out.print(f"round {h['round']}: {h['rows']:,} rows, mean reward {h['reward_mean']:.3f}{auc}, "
                  f"{h['steps']} {loss} steps")
    out.print(f"aligned in {report['seconds']:.0f} s → {output} (history in {output / 'align.json'})")


llm_app = typer.Typer(help="Check LLM backends (see docs/llm.md).", no_args_is_help=True)
app.add_typer(llm_app, name="llm")


@llm_app.command("check")
@_friendly
def llm_check(model: str = typer.Argument(..., help="A backend shorthand: openai:MODEL, openai-compatible:URL:MODEL or hf:PATH."),
              timeout: float = typer.Option(60.0, help="Seconds to wait for the answer.")) -> None:
    """Send one small structured request and report whether the backend answers usable JSON."""
    from tabline.agents.llm.backends import LLMSettings, ModelRef
    from tabline.agents.llm.calls import probe

    ref = ModelRef(model, temperature=0.0, settings=LLMSettings(cache=False, timeout_s=timeout, transient_retries=1,
                                                               backoff_s=0.5, max_tokens=200))
    result = probe(ref)
    usage = result["usage"] or {}
    if result["ok"]:
        out.print(f"[bold green]ok[/] {model}: answered {result['answer']} in {result['seconds']} s "
                  f"({usage.get('input_tokens', 0)} + {usage.get('output_tokens', 0)} tokens; structured output via "
                  f"{result['structured']})")
        return
    err.print(f"[bold red]no usable answer[/] from {model} after {result['seconds']} s: "
              f"{(result['errors'] or ['no answer'])[-1]}")
    if result["raw"]:
        err.print(f"last raw answer: {result['raw'][:500]!r}")
    raise typer.Exit(1)
