"""``hf:PATH`` end to end: a tiny random-weight transformers model saved to a temp directory backs a worker.

Random weights cannot write JSON, so this checks the failure path for real: every attempt is made, the
model's raw text is kept with the failed rows, and the tokens it used are counted.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tiny_hf import make_tiny_chat_model
from tabline.agents.llm.backends import BackendError, LLMSettings, ModelRef
from tabline.agents.llm.local_hf import LocalHFChatModel
from tabline.agents.llm.worker import LLMWorker
from tabline.errors import ModelDirError
from tabline.schema import Schema


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_chat_model(tmp_path_factory.mktemp("tiny") / "model", n_positions=4096)


def test_hf_worker_keeps_raw_text_of_every_failed_attempt(model_dir):
    # Setup
    rng = np.random.default_rng(0)
    real = pd.DataFrame({"x": rng.integers(0, 9, 50), "y": rng.choice(["a", "b"], 50)})
    ref = ModelRef(f"hf:{model_dir}", temperature=0.0,
                   settings=LLMSettings(cache=False, attempts=2, max_tokens=24))
    assert ref.structured == "prompt" and isinstance(ref.get(), LocalHFChatModel)
    worker = LLMWorker(ref, ["y"], Schema.infer(real), real=real, rows_per_call=2, examples=3)
    # Run
    filled = worker.fill(real[["x"]].head(3), seed=0)
    # Assert: nothing filled, nothing lost
    assert filled.frame.y.isna().all() and set(filled.failures) == {0, 1, 2}
    assert all(len(c["raw"]) == 2 and all(isinstance(t, str) and t for t in c["raw"]) for c in filled.calls)
    usage = filled.usage
    assert usage["calls"] == 4 and usage["repairs"] == 2 and 0 < usage["output_tokens"] <= 4 * 24


def test_a_prompt_longer_than_the_context_is_a_clear_error(tmp_path):
    small = make_tiny_chat_model(tmp_path / "small", n_positions=64)
    real = pd.DataFrame({"x": range(30), "y": ["a", "b"] * 15})
    worker = LLMWorker(ModelRef(f"hf:{small}", settings=LLMSettings(cache=False)), ["y"], Schema.infer(real), real=real)
    with pytest.raises(BackendError, match=r"the prompt has \d+ tokens; the model at .* reads at most 64"):
        worker.fill(real[["x"]].head(2))


def test_hf_paths_are_checked_when_the_team_is_fitted(tmp_path):
    with pytest.raises(ModelDirError, match="config.json"):
        ModelRef(f"hf:{tmp_path}")
    assert issubclass(ModelDirError, Exception) and not issubclass(BackendError, ModelDirError)
