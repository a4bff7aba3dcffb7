"""What the line's nodes (`tabline.graphs.line`) work with: the fitted agents, the run folder, and the rows
kept in memory between nodes.

- `LineAgents` — everything `AssemblyLine.fit` made: team, schema, coordinator, one worker per plan
  component, judges, the QC chain and its extra stages, DATE's reflector and the TabGRAA step (optional).
- `LineRuntime` — one run: the agents, its `RunFolder`, and two caches the checkpoint never holds.
- The batch travels through the checkpointed state as Arrow IPC bytes (`frame_to_arrow`), one blob for the
  conditions and one per station. `BatchFrames` decodes each blob once per process: a node gets the frame
  the node before it already decoded (checked against the bytes in the state, so a re-run step never reads
  stale rows).
- `AcceptedPool` — row keys and diversity features of the accepted rows of batches 1..n (batch ids are
  consecutive and every batch writes its files, accepted rows or none), extended batch by batch and
  rebuilt from the batch files when the process does not hold them (a resumed run).

Decoded values are what the line has always carried: Python scalars in object columns, missing as None.

Example:
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"n": [1, 2], "x": [0.5, None], "c": ["a", None], "mixed": [1, "one"]})
    >>> back = frame_from_arrow(frame_to_arrow(frame))
    >>> back.to_dict("list")
    {'n': [1, 2], 'x': [0.5, None], 'c': ['a', None], 'mixed': [1, 'one']}
    >>> len(frame_from_arrow(frame_to_arrow(pd.DataFrame(index=range(3)))))  # rows without columns
    3
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa

from tabline.agents.coordinator import Coordinator
from tabline.agents.plan import Plan
from tabline.agents.reflection import Reflector
from tabline.agents.roles import FillContext, Judge, QCStage, Worker
from tabline.agents.team import Team
from tabline.qc.chain import QCChain
from tabline.qc.sanity import row_keys
from tabline.run_folder import RunFolder
from tabline.schema import Schema
from tabline.training.lm import TabularLM
from tabline.training.tabgraa import LineAlignment

_AS_JSON = {b"tabline": b"json"}  # a column Arrow cannot hold exactly (mixed types): one JSON text per value
_NUMPY_NATIVE = {np.dtype(t) for t in ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                                       "uint64", "float32", "float64")}


def seed_for(*parts: int) -> int:
    """A 31-bit seed from the run seed, the batch and the station: independent streams, reproducible.

    Example:
        >>> seed_for(0, 1, 2) == seed_for(0, 1, 2) != seed_for(0, 2, 1)
        True
    """
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0] & 0x7FFFFFFF)


# ---------------------------------------------------------------------- the batch as Arrow bytes
def frame_to_arrow(df: pd.DataFrame) -> bytes:
    """``df`` as Arrow IPC bytes (columns named as text, the index dropped, the row count kept)."""
    arrays, fields = [], []
    for i, name in enumerate(df.columns):
        array, as_json = _to_arrow(df.iloc[:, i])
        arrays.append(array)
        fields.append(pa.field(str(name), array.type, metadata=_AS_JSON if as_json else None))
    # A frame without columns still has rows (a batch conditioned on nothing): a dropped column keeps the count.
    table = (pa.Table.from_arrays(arrays, schema=pa.schema(fields)) if arrays else
             pa.Table.from_arrays([pa.nulls(len(df))], names=["rows"]).select([]))
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def frame_from_arrow(blob: bytes) -> pd.DataFrame:
    """The frame `frame_to_arrow` wrote: object columns of Python scalars (missing: None), a RangeIndex."""
    table = pa.ipc.open_stream(blob).read_all()
    columns: dict[int, Any] = {}
    for i, f in enumerate(table.schema):
        col = table.column(i)
        if f.metadata == _AS_JSON:
            columns[i] = [json.loads(v) for v in col.to_pylist()]
        elif col.null_count == 0 and (pa.types.is_integer(f.type) or pa.types.is_floating(f.type)
                                      or pa.types.is_boolean(f.type)):
            columns[i] = col.to_numpy().astype(object)  # numpy → object gives Python ints, floats, bools
        else:
            columns[i] = col.to_pylist()
    frame = pd.DataFrame(columns, index=pd.RangeIndex(table.num_rows), dtype=object)
    frame.columns = pd.Index(table.schema.names, dtype=object)
    return frame


def _to_arrow(s: pd.Series) -> tuple[pa.Array, bool]:
    """One column as an Arrow array holding exactly the Python values the line carries; True when they
    went in as JSON text because no single Arrow type holds them (ints beside text, say)."""
    if s.dtype in _NUMPY_NATIVE:
        return pa.array(s.to_numpy(), from_pandas=True), False  # NaN -> null, read back as None
    values = [_plain(v) for v in s.astype(object).where(s.notna(), None).tolist()]
    kinds = {type(v) for v in values if v is not None}
    if len(kinds) <= 1 and kinds <= {str, int, float, bool}:
        try:
            return pa.array(values), False
        except (pa.ArrowInvalid, OverflowError):  # an int beyond 64 bits
            pass
    return pa.array([json.dumps(v, default=_plain) for v in values], type=pa.string()), True


def _plain(v: Any) -> Any:
    """A value as JSON would carry it: numpy scalars as Python ones, anything else without a JSON form as text."""
    if v is None or isinstance(v, (bool, str, list, dict)):
        return v
    if isinstance(v, np.generic):
        return _plain(v.item())
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return float(v)
    if isinstance(v, tuple):
        return list(v)
    return str(v)


class BatchFrames:
    """The current batch's decoded blobs and the frame they make, so no node decodes what another did."""

    def __init__(self) -> None:
        self._batch_id: int | None = None
        self._parts: dict[str | None, tuple[bytes, pd.DataFrame]] = {}  # station (None: conditions) -> blob, frame
        self._joined: tuple[tuple[bytes, ...], pd.DataFrame] | None = None

    def batch(self, batch_id: int, conditions: bytes, parts: dict[str, bytes], names: list[str]) -> pd.DataFrame:
        """Conditions plus every station's columns so far, in ``names`` order, indexed by row position. The
        caller gets its own copy (an agent that edits its batch changes nothing for the next node)."""
        if batch_id != self._batch_id:
            self._batch_id, self._parts, self._joined = batch_id, {}, None
        keys = [None, *sorted(parts)]
        blobs = (conditions, *(parts[k] for k in keys[1:]))
        if self._joined is None or self._joined[0] != blobs:
            frames = [self._part(k, b) for k, b in zip(keys, blobs)]
            frame = pd.concat(frames, axis=1)
            frame = frame.loc[:, ~frame.columns.duplicated()]
            self._joined = (blobs, frame[[c for c in names if c in frame.columns]])
        return self._joined[1].copy()

    def _part(self, key: str | None, blob: bytes) -> pd.DataFrame:
        hit = self._parts.get(key)
        if hit is None or hit[0] != blob:
            hit = self._parts[key] = (blob, frame_from_arrow(blob))
        return hit[1]


class AcceptedPool:
    """Row keys and diversity features of the accepted rows of batches 1..n (see the module docstring)."""

    def __init__(self, schema: Schema, qc: QCChain, folder: RunFolder):
        self.schema, self.qc, self.folder = schema, qc, folder
        self._batches: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # batch id -> (keys, features)
        self._stack: tuple[int, set[int], np.ndarray] | None = None  # (n, all keys, all features)

    def upto(self, n: int) -> tuple[set[int], np.ndarray]:
        """Keys and features (rows, F) of the accepted rows of batches 1..n."""
        if self._stack is not None and self._stack[0] == n:
            return self._stack[1], self._stack[2]
        if self._stack is not None and self._stack[0] == n - 1 and n in self._batches:
            keys, x = self._stack[1], self._stack[2]  # one more batch: extend in place instead of rebuilding
            new_keys, new_x = self._batches[n]
            keys.update(new_keys.tolist())
            x = np.vstack([x, new_x]) if len(new_x) else x
        else:
            ids = range(1, n + 1)
            for b, frame in self.folder.read_batches("accepted", [b for b in ids if b not in self._batches]):
                self.remember(b, frame)
            keys = set()
            for b in ids:
                keys.update(self._batches[b][0].tolist())
            xs = [self._batches[b][1] for b in ids if len(self._batches[b][1])]
            x = np.vstack(xs) if xs else np.empty((0, 0)) if not self.qc.needs_features else \
                self.qc.features(pd.DataFrame(columns=self.schema.names))
        for stale in [b for b in self._batches if b > n]:
            del self._batches[stale]  # written by a step the checkpoint does not know (a killed run)
        self._stack = (n, keys, x)
        return keys, x

    def remember(self, batch_id: int, frame: pd.DataFrame) -> None:
        """The accepted rows of one batch, as the diversity node wrote them."""
        if len(frame):
            x = self.qc.features(frame) if self.qc.needs_features else np.empty((len(frame), 0))
            self._batches[batch_id] = (row_keys(frame, self.schema).to_numpy(), x)
        else:
            self._batches[batch_id] = (np.empty(0, dtype=np.uint64), np.empty((0, 0)))


# ---------------------------------------------------------------------- agents and run
@dataclass
class LineAgents:
    """The fitted line: team, schema, coordinator, one worker per plan component, judges and the QC chain.
    ``stages``: your extra QC stages by name, in the order they run after sanity; ``reflective``: the
    components whose workers are shown DATE's negative examples (``reflector`` makes them); ``alignment``:
    TabGRAA every k batches; ``lm``: the embedded TabularLM the LM workers share (None when none does)."""

    team: Team
    schema: Schema
    coordinator: Coordinator
    workers: dict[str, Worker]
    judges: list[Judge]
    qc: QCChain
    id_tops: dict[str, Any]  # id column -> the largest real id (None: text ids)
    stages: dict[str, QCStage] = field(default_factory=dict)
    reflective: frozenset[str] = frozenset()
    reflector: Reflector | None = None
    alignment: LineAlignment | None = None
    lm: TabularLM | None = None

    @property
    def plan(self) -> Plan:
        return self.coordinator.plan


class Lookahead(Protocol):
    """Who can start a station's fill before the line asks for it (`tabline.cluster.stations.RayStations`).
    It must give the same answer as the worker would, whenever the batch really asked for is the expected one."""

    depth: int  # how many batches ahead to expect

    def expect(self, component: str, batch: pd.DataFrame, seed: int, context: FillContext) -> None: ...


class LineRuntime:
    """One run of the line: its agents, its run folder, and what the nodes keep in memory between them.
    ``ahead``: where the stations' next fills may start early (None: this process fills as asked)."""

    def __init__(self, agents: LineAgents, folder: RunFolder, ahead: Lookahead | None = None):
        self.agents, self.folder, self.ahead = agents, folder, ahead
        self.frames = BatchFrames()
        self.pool = AcceptedPool(agents.schema, agents.qc, folder)
        self._arm_rows: dict[int, pd.DataFrame] = {}
        self._components = [c.name for c in agents.plan.components]

    def batch(self, state: dict[str, Any]) -> pd.DataFrame:
        """The current batch (see `BatchFrames.batch`): row labels are positions, the keys of ``failed``."""
        return self.frames.batch(state["batch_id"], state["conditions"], state.get("parts", {}),
                                 self.agents.schema.names)

    def arm_rows(self, arm: int) -> pd.DataFrame:
        """The real rows of ``arm`` (fixed once the line is fitted)."""
        if arm not in self._arm_rows:
            self._arm_rows[arm] = self.agents.coordinator.arm_rows(arm)
        return self._arm_rows[arm]

    def component_index(self, name: str) -> int:
        """The component's position in the plan: its station's seed stream."""
        return self._components.index(name)

    def look_ahead(self, component: str, state: dict[str, Any], batch: pd.DataFrame, context: FillContext) -> None:
        """Tell ``ahead`` the fills of this station's next batches when they cannot depend on anything the
        line has yet to decide: one arm, no evolvers (so no conditions), a station that starts from empty
        rows, no DATE reflection and no TabGRAA step — the next batch is then ``len(batch)`` empty rows
        with the next batch's seed, unless the run nears its end and asks for fewer."""
        agents = self.agents
        if (self.ahead is None or len(agents.plan.arms) != 1 or agents.coordinator.evolvers or len(batch.columns)
                or component in agents.reflective or agents.alignment is not None
                or len(batch) != agents.team.rows_per_batch(1)):
            return
        index, batch_id = self.component_index(component), state["batch_id"]
        for k in range(1, self.ahead.depth + 1):
            self.ahead.expect(component, batch, seed_for(agents.team.seed, batch_id + k, index), context)


__all__ = ["AcceptedPool", "BatchFrames", "LineAgents", "LineRuntime", "Lookahead", "frame_from_arrow", "frame_to_arrow",
           "seed_for"]
