"""`Dreamer`: run TableDreamer's loop (`tabline.graphs.dream`) in a run folder, resume it after any kill, and
write what it made: ``dataset.jsonl`` (chat-format training rows — the weaknesses, or the whole evolved set
when no target model is given), ``items.jsonl`` (every item with its reply and verdict) and ``report.json``.

Example (offline: sub-tables of the shipped table, no target model, so nothing is filtered):
    >>> import tempfile
    >>> result = Dreamer(DreamConfig(rounds=2, per_round=9, tables=2)).run(None, tempfile.mkdtemp())
    >>> result.report["filtered"], result.report["items"], len(result.dataset)
    (False, 18, 18)
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver

from tabline import __version__
from tabline.agents.dream import DirectionEvolver, ProgramJudge, SubTableMaker, TemplateTaskMaker
from tabline.agents.llm.backends import BackendError, LLMSettings, ModelRef
from tabline.dream.config import DreamConfig
from tabline.dream.evolve import DIRECTIONS
from tabline.dream.items import DreamItem
from tabline.dream.table import canonical_frame
from tabline.errors import InvalidArgumentError, OutputError, TablineError
from tabline.graphs.dream import DreamAgents, DreamRuntime, build_dream_graph, initial_state, mermaid
from tabline.io import write_parquet_atomic, write_text_atomic
from tabline.run_folder import DreamFolder

NO_TARGET_NOTE = "no target model: the evolved set is written unfiltered (every item, not only the weaknesses)"


@dataclass
class DreamResult:
    """``dataset``: the training rows (chat format); ``items``: every item with its reply and verdict;
    ``report``: counts per round, task type, direction and verdict."""

    dataset: list[dict[str, Any]]
    items: list[dict[str, Any]]
    report: dict[str, Any]
    run_dir: Path


class Dreamer:
    """The settings (`DreamConfig`) and models of a run. ``target_model``: the model whose weaknesses are
    kept (any backend shorthand, or a name in ``models``); ``judge_llm``: the 1–5 rubric judge for free-form
    answers; ``table_llm``: tables from scratch besides the sub-tables of the user's tables; ``phrase_llm``: the
    evolved instructions reworded in that model's words (programs and answers unchanged)."""

    def __init__(self, config: DreamConfig | None = None, *, target_model: str | None = None,
                 judge_llm: str | None = None, table_llm: str | None = None, phrase_llm: str | None = None,
                 models: dict[str, Any] | None = None, llm: LLMSettings | None = None):
        self.config = config or DreamConfig()
        self.target_model, self.judge_llm, self.table_llm = target_model, judge_llm, table_llm
        self.phrase_llm = phrase_llm
        self.models, self.llm = dict(models or {}), llm or LLMSettings()
        self._refs = {role: self._ref(spec) for role, spec in
                      (("target", target_model), ("judge", judge_llm), ("tables", table_llm), ("phrase", phrase_llm))
                      if spec}

    def _ref(self, spec: str) -> ModelRef:
        return ModelRef(spec, temperature=0.0, settings=self.llm, registry=self.models)

    def agents(self, frames: dict[str, pd.DataFrame]) -> DreamAgents:
        from tabline.agents.llm.dream import LLMAnswerer, LLMPhraser, LLMRubricJudge, LLMTableMaker

        spec = self.config.table
        makers: list[Any] = [SubTableMaker(frames, spec)]
        if "tables" in self._refs:
            makers.append(LLMTableMaker(self._refs["tables"], spec))
        rubric = LLMRubricJudge(self._refs["judge"], threshold=self.config.threshold) if "judge" in self._refs else None
        return DreamAgents(self.config, makers, TemplateTaskMaker(spec), [DirectionEvolver(d) for d in DIRECTIONS],
                           LLMAnswerer(self._refs["target"]) if "target" in self._refs else None,
                           ProgramJudge(rel_tol=self.config.rel_tol, rubric=rubric),
                           LLMPhraser(self._refs["phrase"]) if "phrase" in self._refs else None)

    # ------------------------------------------------------------------ run
    def run(self, tables: dict[str, pd.DataFrame] | pd.DataFrame | None, output: str | os.PathLike, *,
            on_event: Any = None) -> DreamResult:
        """Run the loop in the new run folder ``output``. ``tables``: name -> table, one table, or None for
        the shipped demo table."""
        frames = _frames(tables)
        folder = DreamFolder(output)
        with folder.lock():
            folder.create()
            names = {}
            for k, (name, frame) in enumerate(frames.items()):
                names[name] = f"table-{k + 1:02d}.parquet"
                write_parquet_atomic(canonical_frame(frame)[0], folder.tables / names[name])
            run_id = uuid.uuid4().hex[:12]
            folder.write_manifest({"run_id": run_id, "kind": "dream", "status": "running", "tabline": __version__,
                                   "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                   "config": self.config.model_dump(mode="json"), "tables": names,
                                   "target_model": self.target_model, "judge_llm": self.judge_llm,
                                   "table_llm": self.table_llm, "phrase_llm": self.phrase_llm,
                                   "llm": self.llm.model_dump(mode="json"),
                                   "registered_models": sorted(self.models)})
            return self._drive(folder, run_id, self._read_frames(folder), initial_state(), on_event)

    @classmethod
    def resume(cls, run_dir: str | os.PathLike, *, models: dict[str, Any] | None = None,
               on_event: Any = None) -> DreamResult:
        """Continue a run from its last checkpoint (a finished run is read back)."""
        folder = DreamFolder(run_dir)
        with folder.lock():
            manifest = folder.read_manifest()
            if manifest.get("kind") != "dream":
                raise TablineError(f"{folder.path} holds a `tabline run`, not a dream run; resume it with "
                                   f"`tabline run --resume {folder.path}`")
            if manifest.get("status") == "done":
                return _read_result(folder)
            missing = [m for m in manifest.get("registered_models", []) if m not in (models or {})]
            if missing:
                raise BackendError(f"this run used the Python chat model(s) registered as {missing}; resume it "
                                   f"from Python with Dreamer.resume(run_dir, models={{{missing[0]!r}: model}})")
            dreamer = cls(DreamConfig(**manifest["config"]), target_model=manifest["target_model"],
                          judge_llm=manifest["judge_llm"], table_llm=manifest["table_llm"],
                          phrase_llm=manifest.get("phrase_llm"), models=models,
                          llm=LLMSettings(**manifest["llm"]))
            frames = dreamer._read_frames(folder)
            return dreamer._drive(folder, manifest["run_id"], frames, None, on_event)

    def _read_frames(self, folder: DreamFolder) -> dict[str, pd.DataFrame]:
        names = folder.read_manifest()["tables"]
        return {name: folder.read_table(folder.tables / file, f"the table {name!r}") for name, file in names.items()}

    def _drive(self, folder: DreamFolder, run_id: str, frames: dict[str, pd.DataFrame], initial: dict | None,
               on_event: Any) -> DreamResult:
        runtime = DreamRuntime(self.agents(frames), folder)
        graph = build_dream_graph(runtime, run_id=run_id, on_event=on_event)
        write_text_atomic(mermaid(graph), folder.path / "graph.mmd")
        config = {"configurable": {"thread_id": run_id}, "recursion_limit": 10 * self.config.rounds + 20}
        started = time.perf_counter()
        conn = sqlite3.connect(folder.checkpoints, check_same_thread=False)
        try:
            # Strict: a checkpoint is read back as plain data only (see tabline.line.driving).
            saver = SqliteSaver(conn, serde=JsonPlusSerializer(allowed_msgpack_modules=None))
            compiled = graph.compile(checkpointer=saver)
            if compiled.get_state(config).values:
                initial = None  # resuming: continue from the last checkpoint
            try:
                for _ in compiled.stream(initial, config, stream_mode="updates", durability="sync"):
                    pass
            except sqlite3.Error as exc:
                raise OutputError(f"cannot write the run's checkpoint {folder.checkpoints}: {exc}") from exc
            final = compiled.get_state(config).values
        finally:
            conn.close()
        return self._finish(folder, final, time.perf_counter() - started)

    def _finish(self, folder: DreamFolder, state: dict, seconds: float) -> DreamResult:
        history = state["history"]
        rounds = folder.read_rounds(len(history))
        seen: set[str] = set()
        dataset, items = [], []
        for records in rounds:
            for rec in records:
                item = DreamItem.from_json(rec["item"])
                row = item.chat_row()
                items.append({**row, "kept": rec["kept"], "reply": rec["reply"], "verdict": rec["verdict"]})
                if rec["kept"] and item.id not in seen:  # a later round can remake an earlier item
                    seen.add(item.id)
                    dataset.append(row)
        filtered = self.target_model is not None
        report = {"run_id": folder.read_manifest()["run_id"], "filtered": filtered,
                  "note": "" if filtered else NO_TARGET_NOTE, "target_model": self.target_model,
                  "rounds": len(history), "stop_reason": state.get("stop", ""), "items": len(items),
                  "dataset_rows": len(dataset), "seconds": round(seconds, 2),
                  "by_task_type": _count(items, "task_type"), "by_direction": _count(items, "direction"),
                  "by_family": _count(items, "family"),
                  "by_verdict": _count([{"v": (i["verdict"] or {}).get("verdict", "not answered")} for i in items], "v"),
                  "distinct_instructions": len({i["messages"][1]["content"].split("\n\n")[0] for i in items}),
                  "history": history}
        _write_jsonl(dataset, folder.path / "dataset.jsonl")
        _write_jsonl(items, folder.path / "items.jsonl")
        write_text_atomic(json.dumps(report, indent=2, default=str), folder.path / "report.json")
        folder.update_manifest(status="done", stop_reason=report["stop_reason"], dataset_rows=len(dataset))
        return DreamResult(dataset, items, report, folder.path)


def _frames(tables: dict[str, pd.DataFrame] | pd.DataFrame | None) -> dict[str, pd.DataFrame]:
    if tables is None:
        from tabline.demo import load_demo_table

        return {"diamonds": load_demo_table()}
    if isinstance(tables, pd.DataFrame):
        return {"table": tables}
    if not tables:
        raise InvalidArgumentError("give at least one table (or None for the shipped demo table)")
    return dict(tables)


def _count(rows: list[dict[str, Any]], key: str) -> dict[str, int]:
    return {str(k): int(v) for k, v in sorted(pd.Series([r[key] for r in rows], dtype=object).value_counts().items())}


def _write_jsonl(rows: list[dict[str, Any]], path: Path) -> None:
    write_text_atomic("".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows), path)


def _read_result(folder: DreamFolder) -> DreamResult:
    try:
        report = json.loads((folder.path / "report.json").read_text(encoding="utf-8"))
        read = lambda name: [json.loads(line) for line in (folder.path / name).read_text(encoding="utf-8").splitlines()]
        return DreamResult(read("dataset.jsonl"), read("items.jsonl"), report, folder.path)
    except (OSError, ValueError) as exc:
        raise TablineError(f"cannot read the finished dream run in {folder.path}: {exc}") from None


__all__ = ["DreamConfig", "DreamResult", "Dreamer", "NO_TARGET_NOTE"]
