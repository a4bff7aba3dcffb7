"""The training rows: chat-format JSONL that `datasets` loads and trl's SFTTrainer trains on unchanged."""
from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from datasets import load_dataset

from tabline.dream.evolve import DIRECTIONS, evolve
from tabline.dream.formats import parse
from tabline.dream.items import DreamItem, build_item, counts, write_jsonl
from tabline.dream.making import TableSpec, seed_items, sub_tables
from tabline.dream.programs import execute
from tabline.dream.table import DreamTable

_LLM_TESTS = str(Path(__file__).resolve().parents[1] / "agents" / "llm")
if _LLM_TESTS not in sys.path:
    sys.path.insert(0, _LLM_TESTS)
from tiny_hf import make_tiny_chat_model  # noqa: E402


def _items(diamonds) -> list[DreamItem]:
    rng = np.random.default_rng(0)
    seeds = seed_items(sub_tables(diamonds, 3, TableSpec(rows=(4, 6)), rng, source="diamonds"), 12, rng).items
    return seeds + [evolve(s, d, rng) for s in seeds[:4] for d in DIRECTIONS]


def test_a_row_holds_the_instruction_the_table_and_the_answer():
    table = DreamTable.from_frame(pd.DataFrame({"shop": ["a", "b"], "sales": [3, 5]}), title="Shops")
    row = build_item(table, "csv", "sum", {"op": "sum", "column": "sales", "where": []}, 1).chat_row()
    system, user, assistant = row["messages"]
    assert user["content"] == "Compute the total sales over all rows.\n\nTable: Shops\nshop,sales\na,3\nb,5"
    assert assistant == {"role": "assistant", "content": "8"}
    assert json.loads(row["program"]) == {"column": "sales", "op": "sum", "where": []}
    assert (row["task_type"], row["family"], row["direction"], row["format"]) == ("sum", "numerical reasoning",
                                                                                 "seed", "csv")


def test_rows_load_with_datasets_and_reexecute(diamonds, tmp_path):
    items = _items(diamonds)
    path = tmp_path / "dream.jsonl"
    assert write_jsonl(items, path) == len(items)
    ds = load_dataset("json", data_files=str(path), split="train")
    assert len(ds) == len(items)
    assert {"messages", "task_type", "direction", "program", "provenance"} <= set(ds.column_names)
    assert counts(items, "direction") == dict(sorted(pd.Series(ds["direction"]).value_counts().items()))
    # an independent re-execution: the program on the table as it appears in the user turn gives the answer
    for row, item in zip(ds, items):
        table_text = row["messages"][1]["content"].split("\n\n", 1)[1].split("\n", 1)[1]
        table = parse(table_text, row["format"], kind=row["table_kind"])
        assert execute(json.loads(row["program"]), table.data).text() == row["messages"][2]["content"]


def test_sft_trainer_takes_the_rows_unchanged(diamonds, tmp_path):
    from trl import SFTConfig, SFTTrainer
    from transformers import AutoTokenizer, GPT2LMHeadModel

    path = tmp_path / "dream.jsonl"
    write_jsonl(_items(diamonds)[:8], path)
    model_dir = make_tiny_chat_model(tmp_path / "tiny")
    model = GPT2LMHeadModel.from_pretrained(model_dir)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    args = SFTConfig(output_dir=str(tmp_path / "out"), max_steps=2, per_device_train_batch_size=2, learning_rate=1e-3,
                     report_to=[], save_strategy="no", use_cpu=True, dataloader_num_workers=0, disable_tqdm=True,
                     max_length=512, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = SFTTrainer(model=model, args=args, processing_class=AutoTokenizer.from_pretrained(model_dir),
                             train_dataset=load_dataset("json", data_files=str(path), split="train"))
        result = trainer.train()
    assert np.isfinite(result.training_loss)
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed  # two steps moved the weights


def test_sft_chat_model_saves_changed_weights(diamonds, tmp_path):
    from safetensors.torch import load_file

    from tabline.training.chat_sft import ChatSFTConfig, sft_chat_model

    path = tmp_path / "dream.jsonl"
    write_jsonl(_items(diamonds)[:6], path)
    model_dir = make_tiny_chat_model(tmp_path / "tiny")
    done = sft_chat_model(model_dir, path, tmp_path / "tuned", ChatSFTConfig(steps=2, batch_size=2,
                                                                             learning_rate=1e-3, max_length=512))
    before, after = (load_file(d / "model.safetensors") for d in (model_dir, tmp_path / "tuned"))
    assert done["steps"] == 2 and np.isfinite(done["loss"]) and done["rows"] == 6
    assert any(not torch.equal(before[k], after[k]) for k in before)
    assert (tmp_path / "tuned" / "tokenizer_config.json").exists()


def test_sft_needs_an_hf_target(tmp_path):
    from typer.testing import CliRunner

    from tabline.cli import app

    r = CliRunner().invoke(app, ["dream", "--sft", str(tmp_path / "m"), "-o", str(tmp_path / "run")])
    assert r.exit_code == 2 and "--sft fine-tunes a local target model" in r.output
    assert not (tmp_path / "run").exists()
