"""The seed task types (TableDreamer §2), each a *maker* that picks a program for a table and a few English
phrasings of it. The instruction is always rendered from the program, so a rename or a new phrasing never
leaves the words and the ground truth apart.

Families (the paper's): numerical reasoning, structure understanding, fact verification, question answering,
data analysis. `make_program` raises `Unanswerable` with a reason when a table cannot carry a type (no key
column, one row, no numeric column …); `instruction` renders a program with phrasing ``template``.

Example:
    >>> import numpy as np, pandas as pd
    >>> from tabline.dream.table import DreamTable
    >>> t = DreamTable.from_frame(pd.DataFrame({"shop": ["a", "b", "c"], "sales": [10, 20, 60]}))
    >>> p = make_program("sum", t, np.random.default_rng(0))
    >>> p, instruction(p, t, 0)
    ({'op': 'sum', 'column': 'sales', 'where': []}, 'What is the total sales over all rows?')
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from tabline.dream.programs import Program, Unanswerable, execute, format_number
from tabline.dream.table import DreamTable, cell_text

# ---------------------------------------------------------------------- picking parts of a table
def _choice(rng: np.random.Generator, items: list, what: str) -> Any:
    if not items:
        raise Unanswerable(f"the table has no {what}")
    return items[int(rng.integers(len(items)))]


def _numeric(t: DreamTable, rng, exclude: tuple[str, ...] = ()) -> str:
    return _choice(rng, [c for c in t.numeric_columns() if c != t.key and c not in exclude], "numeric column")


def _key(t: DreamTable) -> str:
    if t.key is None:
        raise Unanswerable("no column names the rows (unique values, none missing)")
    return t.key


def _two_rows(t: DreamTable, rng) -> tuple[str, str]:
    if len(t.data) < 2:
        raise Unanswerable("the table has one row")
    a, b = rng.choice(len(t.data), size=2, replace=False)
    keys = t.data[_key(t)]
    return cell_text(keys.iloc[int(a)]), cell_text(keys.iloc[int(b)])


def _categories(t: DreamTable) -> list[str]:
    """Text columns that split rows into a few groups (2..12 distinct values, some value repeated)."""
    out = []
    for c in t.text_columns():
        n = t.data[c].dropna().nunique()
        if 2 <= n <= 12 and n < t.data[c].notna().sum():
            out.append(c)
    return out


def condition(t: DreamTable, rng, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """A condition rows can meet: a category equal to one of its values, or a number above/below its median."""
    cats = [c for c in _categories(t) if c not in exclude]
    nums = [c for c in t.numeric_columns() if c != t.key and c not in exclude]
    if cats and (not nums or rng.random() < 0.5):
        col = _choice(rng, cats, "category column")
        return {"column": col, "cmp": "==", "value": cell_text(_choice(rng, list(t.data[col].dropna().unique()), "value"))}
    col = _choice(rng, nums, "column to filter on")
    # the threshold is stored as it is shown (at most 4 decimals), so no row falls between the two
    return {"column": col, "cmp": str(rng.choice([">", "<"])), "value": float(format_number(t.data[col].median()))}


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


# ---------------------------------------------------------------------- makers
def _aggregate(op: str) -> Callable[[DreamTable, Any], Program]:
    return lambda t, rng: {"op": op, "column": _numeric(t, rng), "where": []}


def _pair(op: str) -> Callable[[DreamTable, Any], Program]:
    def make(t: DreamTable, rng) -> Program:
        a, b = _two_rows(t, rng)
        return {"op": op, "key": _key(t), "row": a, "row_b": b, "column": _numeric(t, rng)}
    return make


def _count_if(t, rng) -> Program:
    return {"op": "count", "where": [condition(t, rng)]}


def _cell(t, rng) -> Program:
    key = _key(t)
    col = _choice(rng, [c for c in t.data.columns if c != key], "column besides the key")
    present = t.data.index[t.data[col].notna()]
    row = t.data[key].iloc[int(_choice(rng, list(present), f"filled cell in {col!r}"))]
    return {"op": "cell", "key": key, "row": cell_text(row), "column": col}


def _claim_cell(t, rng) -> Program:
    p = _cell(t, rng)
    values = t.data[p["column"]].dropna()
    actual = values[t.data[p["key"]].map(cell_text) == p["row"]].iloc[0]
    others = [v for v in values.unique() if cell_text(v) != cell_text(actual)]
    claimed = actual if rng.random() < 0.5 or not others else _choice(rng, others, "other value")
    return {"op": "claim_cell", "key": p["key"], "row": p["row"], "column": p["column"], "value": _plain(claimed)}


def _claim_total(t, rng) -> Program:
    col, agg = _numeric(t, rng), str(rng.choice(["sum", "mean"]))
    actual = execute({"op": agg, "column": col}, t.data).value
    if rng.random() < 0.5:
        return {"op": "claim_total", "agg": agg, "column": col, "value": actual}
    # a false claim is off by 10-30 %: clearly wrong to anyone who computes, plausible to one who guesses;
    # stored as shown (4 decimals) and never equal to the truth, even when the truth is 0
    claimed = float(format_number(actual * float(rng.choice([0.7, 0.8, 0.9, 1.1, 1.2, 1.3])))) if actual else 1.0
    return {"op": "claim_total", "agg": agg, "column": col, "value": claimed}


def _lookup(t, rng) -> Program:
    p = _cell(t, rng)
    return {"op": "lookup", "match": p["key"], "value": p["row"], "column": p["column"]}


def _header(t, rng) -> Program:
    if t.kind == "horizontal":
        raise Unanswerable("a horizontal table's attributes head rows, not columns")
    return {"op": "header", "position": int(rng.integers(1, len(t.data.columns) + 1))}


def _corr(t, rng) -> Program:
    a = _numeric(t, rng)
    return {"op": "corr_sign", "column": a, "column_b": _numeric(t, rng, exclude=(a,))}


def _group_argmax(t, rng) -> Program:
    return {"op": "group_argmax", "group": _choice(rng, _categories(t), "category column"),
            "column": _numeric(t, rng), "agg": str(rng.choice(["mean", "sum"])), "largest": True}


MAKERS: dict[str, Callable[[DreamTable, Any], Program]] = {
    "sum": _aggregate("sum"), "mean": _aggregate("mean"), "max": _aggregate("max"), "min": _aggregate("min"),
    "range": _aggregate("range"), "difference": _pair("difference"), "ratio": _pair("ratio"),
    "percentage_change": _pair("pct_change"), "count_if": _count_if,
    "row_count": lambda t, rng: {"op": "n_rows"}, "column_count": lambda t, rng: {"op": "n_columns"},
    "header_name": _header, "cell_lookup": _cell,
    "column_type": lambda t, rng: {"op": "column_type", "column": _choice(rng, list(t.data.columns), "column")},
    "distinct_count": lambda t, rng: {"op": "distinct", "column": _choice(rng, t.text_columns() or list(t.data.columns), "column")},
    "claim_cell": _claim_cell,
    "claim_compare": lambda t, rng: {**_pair("claim_compare")(t, rng), "cmp": str(rng.choice([">", "<"]))},
    "claim_total": _claim_total,
    "argmax": lambda t, rng: {"op": "argmax", "key": _key(t), "column": _numeric(t, rng), "where": []},
    "argmin": lambda t, rng: {"op": "argmin", "key": _key(t), "column": _numeric(t, rng), "where": []},
    "lookup": _lookup, "correlation_sign": _corr,
    "top_k": lambda t, rng: {"op": "top_k", "key": _key(t), "column": _numeric(t, rng),
                             "k": int(rng.integers(2, 4)), "order": "desc"},
    "group_argmax": _group_argmax, "trend": lambda t, rng: {"op": "trend", "column": _numeric(t, rng)},
}
FAMILIES: dict[str, tuple[str, ...]] = {
    "numerical reasoning": ("sum", "mean", "max", "min", "range", "difference", "ratio", "percentage_change",
                            "count_if"),
    "structure understanding": ("row_count", "column_count", "header_name", "cell_lookup", "column_type",
                                "distinct_count"),
    "fact verification": ("claim_cell", "claim_compare", "claim_total"),
    "question answering": ("argmax", "argmin", "lookup"),
    "data analysis": ("correlation_sign", "top_k", "group_argmax", "trend"),
}
TASK_TYPES: tuple[str, ...] = tuple(t for types in FAMILIES.values() for t in types)


def family_of(task_type: str) -> str:
    """The paper's family of a task type ("composite" for evolved compositions).

    Example:
        >>> family_of("claim_total"), family_of("compare")
        ('fact verification', 'composite')
    """
    return next((f for f, types in FAMILIES.items() if task_type in types), "composite")


def make_program(task_type: str, table: DreamTable, rng: np.random.Generator) -> Program:
    """A program of ``task_type`` for ``table`` (seeded by ``rng``); `Unanswerable` when the table cannot
    carry the type."""
    if task_type not in MAKERS:
        raise Unanswerable(f"unknown task type {task_type!r}")
    return MAKERS[task_type](table, rng)


# ---------------------------------------------------------------------- phrasing
@dataclass(frozen=True)
class Words:
    """How the table's parts are called: a horizontal table's records are columns, its attributes rows."""

    row: str
    rows: str
    col: str
    cols: str

    @classmethod
    def of(cls, table: DreamTable) -> "Words":
        if table.kind == "horizontal":
            return cls("entry", "entries (columns after the first)", "attribute", "attributes (rows, counting the header row)")
        return cls("row", "rows", "column", "columns")


_CMP_WORDS = {"==": "is", "!=": "is not", ">": "is above", "<": "is below", ">=": "is at least", "<=": "is at most"}


def _value(v: Any) -> str:
    return format_number(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else cell_text(v)


def conditions_text(where: list[dict[str, Any]], w: Words) -> str:
    """Rows' conditions in words.

    Example:
        >>> conditions_text([{"column": "area", "cmp": "==", "value": "N"}, {"column": "x", "cmp": ">", "value": 2.0}],
        ...                 Words("row", "rows", "column", "columns"))
        'the rows where area is N and x is above 2'
    """
    if not where:
        return f"all {w.rows.split(' (')[0]}"
    parts = [f"{c['column']} {_CMP_WORDS[c['cmp']]} {_value(c['value'])}" for c in where]
    return f"the {w.rows.split(' (')[0]} where " + " and ".join(parts)


_AGG_NOUN = {"sum": "total", "mean": "average", "max": "largest", "min": "smallest", "median": "median",
             "range": "range (largest minus smallest) of"}


def noun_phrase(p: Program, w: Words) -> str:
    """A number-valued program as a noun phrase, so compositions read as one sentence.

    Example:
        >>> noun_phrase({"op": "mean", "column": "price", "where": []}, Words("row", "rows", "column", "columns"))
        'the average price over all rows'
    """
    op = p["op"]
    if op in _AGG_NOUN:
        return f"the {_AGG_NOUN[op]} {p['column']} over {conditions_text(p.get('where', []), w)}"
    if op == "count":
        return f"the number of {conditions_text(p.get('where', []), w).removeprefix('the ')}"
    if op == "cell":
        return f"the {p['column']} of {p['row']}"
    if op == "arith":
        word = {"-": "minus", "+": "plus", "/": "divided by"}[p["fn"]]
        return f"({noun_phrase(p['left'], w)} {word} {noun_phrase(p['right'], w)})"
    if op == "difference":
        return f"the {p['column']} of {p['row']} minus that of {p['row_b']}"
    raise Unanswerable(f"operation {op!r} has no noun phrase")


TEMPLATES: dict[str, tuple[str, ...]] = {
    "aggregate": ("What is {np}?", "Compute {np}.", "Using the table, find {np}."),
    "count": ("How many {rows} are there where {cond}?", "Count the {rows} where {cond}.",
              "What is the number of {rows} for which {cond}?"),
    "difference": ("What is the {column} of {row} minus the {column} of {row_b}?",
                   "By how much does the {column} of {row} exceed that of {row_b}? (Give a negative number if it is lower.)",
                   "Subtract the {column} of {row_b} from the {column} of {row}."),
    "ratio": ("What is the {column} of {row} divided by the {column} of {row_b}?",
              "Give the ratio of {row}'s {column} to {row_b}'s {column}.",
              "How many times the {column} of {row_b} is the {column} of {row}?"),
    "pct_change": ("What is the percentage change in {column} from {row} to {row_b}?",
                   "By what percent does {column} change going from {row} to {row_b}? (Negative for a fall.)",
                   "Taking {row} as the base, what is the percentage change of {column} at {row_b}?"),
    "n_rows": ("How many {rows} does the table have (not counting headers)?", "Count the {rows} of data in the table.",
               "What is the number of {rows} in this table, headers excluded?"),
    "n_columns": ("How many {cols} does the table have?", "Count the table's {cols}.",
                  "What is the number of {cols} in the table?"),
    "header": ("What is the header of column {position}?", "Which name heads column {position} (counting from 1)?",
               "Give the name of the table's column number {position}."),
    "column_type": ("Does the {column} {col} hold numbers, text or booleans? Answer number, text or boolean.",
                    "What type of values is in {column}: number, text or boolean?",
                    "Classify the values of {column} as number, text or boolean."),
    "distinct": ("How many distinct values does {column} take?", "Count the different values in {column}.",
                 "What is the number of unique {column} values (empty cells excluded)?"),
    "cell": ("What is the {column} of {row}?", "Look up the {column} for {row}.",
             "For {row}, what value does the table give under {column}?"),
    "lookup": ("What is the {column} where {match} is {value}?", "Find the {column} of the {row} with {match} = {value}.",
               "For {match} {value}, give the {column}."),
    "claim_cell": ("True or false: the {column} of {row} is {value}.", "Is it true that {row} has {column} {value}? Answer True or False.",
                   "Verify the claim: \"{row}'s {column} is {value}.\" Answer True or False."),
    "claim_compare": ("True or false: {row} has a {cmpword} {column} than {row_b}.",
                      "Is the {column} of {row} {cmpword} than that of {row_b}? Answer True or False.",
                      "Verify: \"{row} beats {row_b} on {column} by being {cmpword}.\" Answer True or False."),
    "claim_total": ("True or false: the {aggword} {column} over all {rows} is {value}.",
                    "Is the {aggword} of {column} equal to {value}? Answer True or False.",
                    "Verify the claim: \"{column} has a {aggword} of {value}.\" Answer True or False."),
    "argmax": ("Which {row} has the highest {column}? Give its {key}.", "Name the {key} with the largest {column}.",
               "Among the {rows}, whose {column} is greatest? Answer with the {key}."),
    "argmin": ("Which {row} has the lowest {column}? Give its {key}.", "Name the {key} with the smallest {column}.",
               "Among the {rows}, whose {column} is least? Answer with the {key}."),
    "corr_sign": ("Across the {rows}, do {column} and {column_b} correlate positively or negatively?",
                  "Is the correlation between {column} and {column_b} positive or negative?",
                  "When {column} goes up, does {column_b} tend to go up (positive) or down (negative)?"),
    "top_k": ("List the {k} {rows} with the highest {column}, by {key}, separated by commas.",
              "Which {k} {key} values have the largest {column}? Give them as a comma-separated list.",
              "Name the top {k} by {column} (answer with their {key}, comma-separated)."),
    "group_argmax": ("Which {group} has the highest {aggword} {column}?",
                     "Grouping the {rows} by {group}, which group's {aggword} {column} is largest?",
                     "Among the values of {group}, which has the greatest {aggword} of {column}?"),
    "trend": ("Reading the {rows} in order, is {column} increasing, decreasing or neither?",
              "From the first {row} to the last, does {column} strictly increase, strictly decrease, or neither?",
              "Describe the trend of {column} down the {rows}: increasing, decreasing or neither."),
    "compare": ("True or false: {left} is {cmpword} than {right}.", "Is {left} {cmpword} than {right}? Answer True or False.",
                "Compare {left} with {right}: is the first {cmpword}? Answer True or False."),
    "arith": ("What is {np}?", "Compute {np}.", "Using the table, work out {np}."),
}


def template_key(op: str) -> str:
    return "aggregate" if op in _AGG_NOUN else op


def instruction(program: Program, table: DreamTable, template: int) -> str:
    """``program`` in English with phrasing number ``template`` (taken modulo the number of phrasings)."""
    w = Words.of(table)
    p, op = program, program["op"]
    phrasings = TEMPLATES[template_key(op)]
    fields: dict[str, Any] = {k: _value(v) for k, v in p.items() if not isinstance(v, (dict, list))}
    fields.update(row=w.row, rows=w.rows.split(" (")[0] if op not in ("n_rows",) else w.rows, col=w.col, cols=w.cols)
    fields.update({k: cell_text(p[k]) for k in ("row", "row_b") if k in p})
    if op in _AGG_NOUN or op == "arith":
        fields["np"] = noun_phrase(p, w)
    if op == "count":
        fields["cond"] = " and ".join(f"{c['column']} {_CMP_WORDS[c['cmp']]} {_value(c['value'])}" for c in p["where"])
    if op in ("claim_compare", "compare"):
        fields["cmpword"] = "higher" if p["cmp"] == ">" else "lower"
        if op == "compare":
            fields.update(left=noun_phrase(p["left"], w), right=noun_phrase(p["right"], w),
                          cmpword="greater" if p["cmp"] == ">" else "smaller")
    if op in ("claim_total", "group_argmax"):
        fields["aggword"] = {"sum": "total", "mean": "average"}[p["agg"]]
    text = phrasings[template % len(phrasings)].format(**fields)
    if op in ("argmax", "argmin", "top_k") and p.get("where"):
        text += f" Consider only {conditions_text(p['where'], w)}."
    return text


def phrasings(program: Program) -> int:
    """How many phrasings a program's type has."""
    return len(TEMPLATES[template_key(program["op"])])


__all__ = ["FAMILIES", "MAKERS", "TASK_TYPES", "TEMPLATES", "Words", "condition", "conditions_text", "family_of",
           "instruction", "make_program", "noun_phrase", "phrasings", "template_key"]
