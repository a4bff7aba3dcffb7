"""The wrappers that make your function, class or LangChain ``Runnable`` an agent of the line: each gives it
its role's method (`tabline.agents.roles`) and checks what it returns. A crash, the wrong number of rows or
the wrong columns become an `AgentError` naming the agent and what it returned; values the table cannot
take go on to the QC stages, which reject those rows with stage and reason. See `tabline.agents.custom`
for what each role may return.

Example:
    >>> import pandas as pd
    >>> PythonWorker(lambda batch: batch.x * 2, name="double", columns=["y"]).fill(pd.DataFrame({"x": [1, 2]})).frame
       y
    0  2
    1  4
"""
from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, Callable

import numpy as np
import pandas as pd

from tabline.agents.refs import module_file, where_raised
from tabline.agents.roles import AgentError, FillContext, Filled, Judgement, Proposal

RUNNABLE_CONCURRENCY = 8  # rows a Runnable works on at once (Runnable.batch's max_concurrency)


def is_runnable(obj: Any) -> bool:
    """True for a LangChain ``Runnable`` (a chain, a chat model, a compiled LangGraph graph)."""
    try:
        from langchain_core.runnables import Runnable
    except ImportError:  # pragma: no cover - langchain-core is a dependency
        return False
    return isinstance(obj, Runnable)


def takes_keyword(fn: Callable, name: str) -> bool:
    """True when ``fn`` accepts a keyword argument ``name`` (by name or through ``**kwargs``)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # some builtins have no signature
        return False
    return any(p.name == name and p.kind != p.POSITIONAL_ONLY or p.kind == p.VAR_KEYWORD for p in params)


def describe(value: Any) -> str:
    """A few words on what an agent returned, for an error message."""
    if isinstance(value, pd.DataFrame):
        return f"a DataFrame of {len(value)} rows with columns {list(value.columns)}"
    if isinstance(value, pd.Series):
        return f"a Series of {len(value)} values"
    text = repr(value)
    return f"{type(value).__name__} {text[:60] + '…' if len(text) > 60 else text}"


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (so a message shows 3, not np.int64(3))."""
    return value.item() if isinstance(value, np.generic) else value


def _source_file(obj: Any) -> str | None:
    for candidate in (obj, type(obj)):
        try:
            return inspect.getsourcefile(candidate)
        except TypeError:  # built-ins and objects without source
            continue
    return None


class _Custom:
    """What every wrapper shares: the agent, its name and ref, its settings, and how faults are worded."""

    role = "agent"

    def __init__(self, agent: Any, *, name: str, ref: str = "", settings: dict[str, Any] | None = None,
                 method: str = "", schema: Any = None):
        self.agent, self.name, self.ref, self.settings = agent, name, ref, dict(settings or {})
        self.schema = schema
        self._files = [f for f in (module_file(ref) if ref else None, _source_file(agent)) if f]
        if is_runnable(agent):
            self.mode = "runnable"
        elif method and callable(getattr(agent, method, None)):
            self.mode = "method"
        elif callable(agent):
            self.mode = "call"
        else:
            raise self.fault(f"is a {type(agent).__name__}, which is neither callable nor has a {method}() method")

    def typed(self, batch: pd.DataFrame) -> pd.DataFrame:
        """A copy of ``batch`` with each column in its kind's dtype: the line carries a batch as plain values
        (numbers may be objects), and your code should get numbers as numbers (``batch.x.round(2)`` works)."""
        if self.schema is None:
            return batch.infer_objects()
        typed = self.schema.coerce(batch)
        return typed.join(batch[[c for c in batch.columns if c not in typed.columns]])

    def fault(self, what: str) -> AgentError:
        return AgentError(f"({self.ref}) {what}" if self.ref else what, agent=self.name, role=self.role)

    def _run(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # the user's code: whatever it raises stops the run, named
            raise self.fault(f"raised {type(exc).__name__}: {exc}{where_raised(exc, self._files)}") from exc

    def _ask_rows(self, batch: pd.DataFrame) -> list[Any]:
        """A Runnable's answer for every row of ``batch`` (each row a dict; messages become their text)."""
        batch = self.typed(batch)
        rows = batch.astype(object).where(batch.notna(), None).to_dict("records")
        answers = self._run(self.agent.batch, rows, config={"max_concurrency": RUNNABLE_CONCURRENCY})
        if not isinstance(answers, list) or len(answers) != len(rows):
            raise self.fault(f"answered {describe(answers)} for {len(rows)} rows")
        from langchain_core.messages import BaseMessage

        return [a.content if isinstance(a, BaseMessage) else a for a in answers]

    def _per_row(self, out: Any, batch: pd.DataFrame) -> Any:
        """``out`` with the batch's row labels, after checking it has one entry per row."""
        if isinstance(out, (list, tuple, np.ndarray)) and np.ndim(out) == 1:
            out = pd.Series(list(out))
        if not isinstance(out, (pd.Series, pd.DataFrame)):
            return out
        if len(out) != len(batch):
            raise self.fault(f"returned {len(out)} rows for a batch of {len(batch)}")
        if out.index.equals(batch.index):
            return out
        if isinstance(out.index, pd.RangeIndex):  # built from positions (a list, numpy): same order
            return out.set_axis(batch.index)
        raise self.fault(f"returned rows labelled {out.index[:3].tolist()}…, not the batch's rows "
                         f"{batch.index[:3].tolist()}…; keep the batch's index")


class PythonWorker(_Custom):
    """Your function, class or Runnable as the `Worker` of its ``columns``. A class's ``fill(batch, *, seed)``
    returns the columns (or a `Filled`, to report rows it could not fill and its LLM calls)."""

    role = "worker"

    def __init__(self, agent: Any, *, name: str, columns: list[str], ref: str = "",
                 settings: dict[str, Any] | None = None, depends_on: list[str] | None = None, schema: Any = None):
        super().__init__(agent, name=name, ref=ref, settings=settings, method="fill", schema=schema)
        self.columns = list(columns)
        self.depends_on = None if depends_on is None else list(depends_on)
        self._seeded = self.mode == "call" and takes_keyword(agent, "seed")

    def fill(self, batch: pd.DataFrame, *, seed: int = 0, context: FillContext | None = None) -> Filled:
        if self.mode == "runnable":
            return Filled(self._from_answers(self._ask_rows(batch), batch))
        if self.mode == "method":
            out = self._run(self.agent.fill, self.typed(batch), seed=seed)
        else:
            out = self._run(self.agent, self.typed(batch), **self.settings, **({"seed": seed} if self._seeded else {}))
        if isinstance(out, Filled):
            out.frame = self._own_columns(out.frame, batch)
            return out
        return Filled(self._own_columns(out, batch))

    def _own_columns(self, out: Any, batch: pd.DataFrame) -> pd.DataFrame:
        out = self._per_row(out, batch)
        if isinstance(out, pd.Series):
            if len(self.columns) != 1:
                raise self.fault(f"returned one Series but fills {len(self.columns)} columns {self.columns}; "
                                 "return a DataFrame with those columns")
            out = out.to_frame(self.columns[0])
        if not isinstance(out, pd.DataFrame):
            raise self.fault(f"returned {describe(out)}; a worker returns a pandas Series or DataFrame of its "
                             f"column(s) {self.columns}, one row per row of the batch")
        missing = [c for c in self.columns if c not in out.columns]
        unknown = [c for c in out.columns if c not in self.columns and c not in batch.columns]
        if missing or unknown:
            raise self.fault(f"returned columns {list(map(str, out.columns))} but fills {self.columns}"
                             + (f" (missing {missing})" if missing else "")
                             + (f" ({unknown} belong to no one here)" if unknown else ""))
        return out[self.columns]

    def _from_answers(self, answers: list[Any], batch: pd.DataFrame) -> pd.DataFrame:
        values: dict[str, list[Any]] = {c: [] for c in self.columns}
        for i, answer in enumerate(answers):
            if isinstance(answer, Mapping):
                missing = [c for c in self.columns if c not in answer]
                if missing:
                    raise self.fault(f"answered {describe(dict(answer))} for row {i}, without {missing}")
                for c in self.columns:
                    values[c].append(answer[c])
            elif len(self.columns) == 1:
                values[self.columns[0]].append(answer)
            else:
                raise self.fault(f"answered {describe(answer)} for row {i}; it fills {self.columns}, so each "
                                 "answer must be a mapping holding them")
        return pd.DataFrame(values, index=batch.index)


class PythonJudge(_Custom):
    """Your function, class (with ``score``) or Runnable as a `Judge` whose score is named ``name``.

    Example:
        >>> rows = pd.DataFrame({"x": [5.0, 6.0], "y": [5.0, 6.6]})
        >>> judge = PythonJudge(lambda b, tol=0.2: 1 - (b.x - b.y).abs() / tol, name="round")
        >>> judge.judge(rows).scores["round"].round(2).tolist()
        [1.0, -2.0]

    (The second row's score is outside [0, 1]: the objective stage rejects that row, naming the judge.)
    """

    role = "judge"

    def __init__(self, agent: Any, *, name: str, ref: str = "", settings: dict[str, Any] | None = None,
                 schema: Any = None):
        full = callable(getattr(agent, "judge", None)) and not is_runnable(agent)
        super().__init__(agent, name=name, ref=ref, settings=settings, method="judge" if full else "score",
                         schema=schema)
        self._full = full

    def judge(self, batch: pd.DataFrame) -> Judgement:
        if self.mode == "runnable":
            answers = [a.get("score") if isinstance(a, Mapping) else a for a in self._ask_rows(batch)]
            return Judgement({self.name: self._scores(pd.Series(answers, index=batch.index, dtype=object), batch)})
        if self.mode == "call":
            return Judgement({self.name: self._scores(self._run(self.agent, self.typed(batch), **self.settings), batch)})
        if not self._full:
            return Judgement({self.name: self._scores(self._run(self.agent.score, self.typed(batch)), batch)})
        verdict = self._run(self.agent.judge, self.typed(batch))
        if not isinstance(verdict, Judgement) or self.name not in verdict.scores:
            raise self.fault(f"returned {describe(verdict)}; the Judge protocol returns a Judgement whose scores "
                             f"include {self.name!r}")
        verdict.scores = {k: self._scores(v, batch) for k, v in verdict.scores.items()}
        return verdict

    def _scores(self, raw: Any, batch: pd.DataFrame) -> pd.Series:
        if isinstance(raw, pd.DataFrame) and raw.shape[1] == 1:
            raw = raw.iloc[:, 0]
        raw = self._per_row(raw, batch)
        if not isinstance(raw, pd.Series):
            raise self.fault(f"returned {describe(raw)}; a judge returns one score in [0, 1] per row (a Series)")
        if raw.dtype == bool:
            return raw.astype(float)
        numbers = pd.to_numeric(raw.map(lambda v: float(v) if isinstance(v, (bool, np.bool_)) else v),
                                errors="coerce")
        wrong = numbers.isna() & raw.notna()
        if wrong.any():
            raise self.fault(f"returned values that are not numbers (first: {_plain(raw[wrong].iloc[0])!r}); a score is a "
                             "number in [0, 1]")
        # NaN and scores outside [0, 1] go on: the objective stage rejects those rows, naming the judge
        return numbers.astype(float)


class PythonEvolver(_Custom):
    """Your function or class (with ``propose``) as an `Evolver`; proposals are checked against the schema.
    A class's ``propose`` may also return a `Proposal` (to report its LLM calls).

    Example:
        >>> from tabline.agents.evolvers import Turn
        >>> from tabline.schema import Schema
        >>> real = pd.DataFrame({"cut": ["Fair", "Ideal", "Ideal"]})
        >>> ev = PythonEvolver(lambda turn: {"cut": "Fair"}, name="fair", schema=Schema.infer(real))
        >>> ev.propose(Turn(batch_id=1, rows=2, arm_rows=real)).conditions.cut.tolist()
        ['Fair', 'Fair']
    """

    role = "evolver"
    watches: list[str] = []

    def __init__(self, agent: Any, *, name: str, schema: Any, ref: str = "",
                 settings: dict[str, Any] | None = None):
        super().__init__(agent, name=name, ref=ref, settings=settings, method="propose", schema=schema)
        if self.mode == "runnable":
            raise self.fault("is a Runnable; an evolver is a function of the turn (or a class with propose)")

    def propose(self, turn: Any) -> Proposal:
        raw = (self._run(self.agent.propose, turn) if self.mode == "method"
               else self._run(self.agent, turn, **self.settings))
        if isinstance(raw, Proposal):
            return Proposal(self._conditions(raw.conditions, turn), calls=raw.calls, usage=raw.usage)
        return Proposal(self._conditions(raw, turn))

    def _conditions(self, raw: Any, turn: Any) -> pd.DataFrame | None:
        if raw is None:
            return None
        if isinstance(raw, Mapping):
            scalar = all(np.ndim(v) == 0 for v in raw.values())
            try:
                raw = pd.DataFrame({k: [v] * turn.rows for k, v in raw.items()} if scalar else dict(raw))
            except ValueError as exc:
                raise self.fault(f"returned a mapping that is not a table: {exc}") from None
        if not isinstance(raw, pd.DataFrame):
            raise self.fault(f"returned {describe(raw)}; an evolver returns a DataFrame of starting values (one row "
                             "per row to make), a mapping column -> value, or None to pass")
        if not len(raw):
            raise self.fault("proposed no rows; return None to pass")
        unknown = [c for c in raw.columns if c not in self.schema.names]
        if unknown:
            raise self.fault(f"proposed column(s) {unknown} the table does not have; its columns are {self.schema.names}")
        cells = self.schema.check(raw)[list(raw.columns)]
        bad = ~cells
        if bad.any().any():
            col = bad.any().idxmax()
            value = _plain(raw.loc[bad[col], col].iloc[0])
            raise self.fault(f"proposed values the schema rejects: column {col!r} = {value!r} in "
                             f"{int(bad.any(axis=1).sum())} of {len(raw)} rows")
        return raw.reset_index(drop=True)


class PythonStage(_Custom):
    """Your function or class (with ``check``) as an extra `QCStage`: reasons come back prefixed with its name.

    Example:
        >>> rows = pd.DataFrame({"table": [57.0, 71.0]})
        >>> PythonStage(lambda b: b.table < 70, name="table_top").check(rows).tolist()
        ['', 'table_top: rejected']
    """

    role = "QC stage"

    def __init__(self, agent: Any, *, name: str, ref: str = "", settings: dict[str, Any] | None = None,
                 schema: Any = None):
        super().__init__(agent, name=name, ref=ref, settings=settings, method="check", schema=schema)
        if self.mode == "runnable":
            raise self.fault("is a Runnable; a QC stage is a function of the batch (or a class with check)")

    def check(self, batch: pd.DataFrame) -> pd.Series:
        raw = (self._run(self.agent.check, self.typed(batch)) if self.mode == "method"
               else self._run(self.agent, self.typed(batch), **self.settings))
        raw = self._per_row(raw, batch)
        if not isinstance(raw, pd.Series):
            raise self.fault(f"returned {describe(raw)}; a QC stage returns per row a reason to reject it (\"\" to "
                             "keep it) or a boolean (True to keep it), as a Series")
        if raw.map(lambda v: isinstance(v, (bool, np.bool_))).all():
            return pd.Series(np.where(raw.astype(bool), "", f"{self.name}: rejected"), index=batch.index, dtype=object)
        text = raw.map(lambda v: "" if v is None or (isinstance(v, float) and np.isnan(v)) else v)
        wrong = ~text.map(lambda v: isinstance(v, str))
        if wrong.any():
            raise self.fault(f"returned {_plain(text[wrong].iloc[0])!r} for a row; give a reason (text, \"\" to keep the "
                             "row) or a boolean for every row")
        return text.where(text.eq(""), f"{self.name}: " + text).astype(object)


__all__ = ["PythonEvolver", "PythonJudge", "PythonStage", "PythonWorker", "describe", "is_runnable", "takes_keyword"]
