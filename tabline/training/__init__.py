"""The embedded backbone and its learning: table tokenizer, `TabularLM`, and (later) rewards and losses."""
from tabline.training.lm import TabularLM, TabularLMConfig, TrainingLog
from tabline.training.tokenizer import TableTokenizer

__all__ = ["TabularLM", "TabularLMConfig", "TableTokenizer", "TrainingLog"]
