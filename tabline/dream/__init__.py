"""TableDreamer's offline core: tables with the paper's attributes, tasks as executable programs, evolution in
three directions, answer checking, and chat-format training rows. Pure and seeded; no LLM needed.

- `tabline.dream.table` — `DreamTable` (kind, title, key, derived formulas), canonical cells
- `tabline.dream.formats` — Markdown / HTML / JSON / CSV, rendered and parsed back
- `tabline.dream.programs` — task programs and `execute` (the reference answer)
- `tabline.dream.tasks` — the seed task types, their makers and phrasings
- `tabline.dream.items` — `DreamItem` and the JSONL rows
- `tabline.dream.evolve` — the three evolution directions
- `tabline.dream.answers` — parsing and checking a model's answer
- `tabline.dream.making` — sub-tables of a user's table and seed items

Example:
    >>> import numpy as np
    >>> from tabline.demo import load_demo_table
    >>> tables = sub_tables(load_demo_table(), 2, TableSpec(), np.random.default_rng(0), source="diamonds")
    >>> seeds = seed_items(tables, 6, np.random.default_rng(0)).items
    >>> len(seeds), all(s.answer is not None for s in seeds)
    (6, True)
"""
from tabline.dream.answers import Check, check
from tabline.dream.evolve import DIRECTIONS, evolve
from tabline.dream.formats import FORMATS, parse, render
from tabline.dream.items import DreamItem, build_item, counts, write_jsonl
from tabline.dream.making import SeedResult, TableSpec, seed_items, sub_tables
from tabline.dream.programs import Answer, Unanswerable, execute
from tabline.dream.table import DreamTable
from tabline.dream.tasks import FAMILIES, TASK_TYPES

__all__ = ["Answer", "Check", "DIRECTIONS", "DreamItem", "DreamTable", "FAMILIES", "FORMATS", "SeedResult",
           "TASK_TYPES", "TableSpec", "Unanswerable", "build_item", "check", "counts", "evolve", "execute", "parse",
           "render", "seed_items", "sub_tables", "write_jsonl"]
