"""`tabline dream`: TableDreamer — tables, seed tasks, evolution in three directions, and (with a target model)
the target's weaknesses kept as training data, round after round.

Example:
    $ tabline dream --rounds 2 --per-round 60 -o runs/dream            # the shipped table, no target model
    $ tabline dream sales.csv --target-model openai-compatible:http://127.0.0.1:8000/v1:Qwen/Qwen2.5-7B-Instruct -o runs/d
    $ tabline dream --resume runs/d
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Optional

import typer

from tabline.cli import _BAD_LINES_HELP, _SEP_HELP, _friendly, _read, app, err, out
from tabline.errors import InvalidArgumentError


@app.command()
@_friendly
def dream(
    tables: Optional[list[Path]] = typer.Argument(None, help="Tables to make sub-tables from (default: the shipped "
                                                  "diamonds sample). Not needed with --resume."),
    rounds: int = typer.Option(2, "--rounds", help="Rounds of evolve → answer → judge → select."),
    per_round: int = typer.Option(60, "--per-round", help="Evolved items per round (split over the three directions)."),
    n_tables: int = typer.Option(6, "--tables", help="Tables to make (sub-tables, plus LLM tables with --table-llm)."),
    target_model: Optional[str] = typer.Option(None, "--target-model", help="MODEL whose weaknesses are kept: "
                                               "hf:PATH, openai-compatible:URL:MODEL or openai:MODEL. Without it the "
                                               "evolved set is written unfiltered."),
    judge_llm: Optional[str] = typer.Option(None, "--judge-llm", help="MODEL: the 1-5 rubric judge, for free-form "
                                            "answers only (the others are checked by executing the task)."),
    table_llm: Optional[str] = typer.Option(None, "--table-llm", help="MODEL: also write tables from scratch "
                                            "(topic → subtopic → title → table)."),
    phrase_llm: Optional[str] = typer.Option(None, "--phrase-llm", help="MODEL: reword the evolved instructions in "
                                             "its own words (the program stays the truth: a wording that drops a "
                                             "name, value or number is refused and the template's kept)."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Run folder (default: runs/dream-<time>)."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue the dream run in this folder."),
    sft: Optional[Path] = typer.Option(None, "--sft", help="Then fine-tune the hf: target on the weaknesses (trl "
                                       "SFTTrainer) and save it to this folder."),
    sft_steps: int = typer.Option(100, "--sft-steps", help="Optimizer steps of --sft."),
    no_view: bool = typer.Option(False, "--no-view", help="Do not write the run's page (view.html) at the end."),
    sep: Optional[str] = typer.Option(None, "--sep", help=_SEP_HELP),
    on_bad_lines: str = typer.Option("error", "--on-bad-lines", help=_BAD_LINES_HELP),
) -> None:
    """Make table-task training data the TableDreamer way: each answer computed by running its task.

    Every reference answer is computed by executing the task on its table. Writes OUT/dataset.jsonl (chat format: `datasets.load_dataset("json", ...)` and trl's
    SFTTrainer take it as it is), OUT/items.jsonl, OUT/report.json and OUT/trace.jsonl."""
    from tabline.dream.config import DreamConfig
    from tabline.line.dreamer import Dreamer

    if sft is not None and not (target_model or "").startswith("hf:"):
        raise InvalidArgumentError(f"--sft fine-tunes a local target model (--target-model hf:PATH); got "
                                   f"{target_model or 'no target model'}")
    if resume is not None:
        if tables:
            raise InvalidArgumentError("--resume takes only the run folder; the tables were fixed when the run began")
        result = Dreamer.resume(resume)
    else:
        config = DreamConfig(rounds=rounds, per_round=per_round, tables=n_tables, seed=seed)
        frames = None
        if tables:
            frames = {}
            for path in tables:
                name = path.stem if path.stem not in frames else str(path)
                frames[name] = _read(path, sep=sep, on_bad_lines=on_bad_lines)
        output = output or Path("runs") / f"dream-{datetime.now():%Y%m%d-%H%M%S}"
        dreamer = Dreamer(config, target_model=target_model, judge_llm=judge_llm, table_llm=table_llm,
                          phrase_llm=phrase_llm)
        out.print(f"run folder: {output} — `tabline dream --resume {output}` continues it if it is stopped",
                  highlight=False)
        result = dreamer.run(frames, output)
    _print(result)
    if not no_view:
        from tabline.cli.line import print_view

        print_view(result.run_dir)
    if sft is not None:
        _fine_tune(target_model.removeprefix("hf:"), result, sft, sft_steps, seed)


def _fine_tune(model_dir: str, result, output: Path, steps: int, seed: int) -> None:
    from tabline.training.chat_sft import ChatSFTConfig, sft_chat_model

    if not result.dataset:
        err.print("note: no weaknesses were kept, so there is nothing to fine-tune on; --sft skipped")
        return
    done = sft_chat_model(model_dir, result.run_dir / "dataset.jsonl", output, ChatSFTConfig(steps=steps, seed=seed))
    out.print(f"fine-tuned on {done['rows']} rows for {done['steps']} steps (loss {done['loss']:.3f}) → {output}",
              highlight=False)


def _print(result) -> None:
    r = result.report
    for h in r["history"]:
        verdicts = ", ".join(f"{k} {v}" for k, v in h["by_verdict"].items()) or "not answered"
        out.print(f"round {h['round']}: {h['items']} items ({verdicts}); kept {h['kept']}")
    if not r["filtered"]:
        err.print(f"note: {r['note']}", highlight=False)
    out.print(f"[bold green]done[/] → {result.run_dir}/dataset.jsonl: {r['dataset_rows']} rows "
              f"({len(r['by_task_type'])} task types; stopped: {r['stop_reason']})", highlight=False)
