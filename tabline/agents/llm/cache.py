"""LangChain's response cache, kept in one SQLite file that survives runs and processes.

A `BaseCache` (LangChain's interface), so any chat model takes it as ``cache=``. The key is a SHA-256 of
the prompt and the model's settings string (LangChain serialises secrets as references, and only the hash
is stored anyway); the value is LangChain's own serialisation of the generations. Hits are marked in the
message's ``response_metadata["cache_hit"]`` so token accounting counts them as saved, not spent.

By default only temperature-0 calls are cached (`LLMSettings.cache`): a sampling call should draw anew.

Example:
    >>> import tempfile, os
    >>> from langchain_core.outputs import ChatGeneration
    >>> from langchain_core.messages import AIMessage
    >>> cache = SQLiteChatCache(os.path.join(tempfile.mkdtemp(), "c.sqlite"))
    >>> cache.update("prompt", "model", [ChatGeneration(message=AIMessage("hi"))])
    >>> hit = cache.lookup("prompt", "model")
    >>> hit[0].message.content, hit[0].message.response_metadata["cache_hit"], cache.lookup("other", "model")
    ('hi', True, None)
"""
from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from langchain_core.caches import RETURN_VAL_TYPE, BaseCache
from langchain_core.load import dumps, loads
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, Generation


class SQLiteChatCache(BaseCache):
    """Generations by (prompt, model settings) in SQLite (WAL, one short connection per call)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._connect() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS generations (key TEXT PRIMARY KEY, value TEXT NOT NULL, "
                         "created REAL NOT NULL)")

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        return conn

    @staticmethod
    def _key(prompt: str, llm_string: str) -> str:
        return hashlib.sha256(f"{llm_string}\x00{prompt}".encode()).hexdigest()

    def lookup(self, prompt: str, llm_string: str) -> RETURN_VAL_TYPE | None:
        with self._lock, self._connect() as conn:
            row = conn.execute("SELECT value FROM generations WHERE key = ?", (self._key(prompt, llm_string),)).fetchone()
        if row is None:
            return None
        try:
            with warnings.catch_warnings():  # `loads` is marked beta; the format is LangChain's own
                warnings.simplefilter("ignore")
                generations = loads(row[0], allowed_objects=[ChatGeneration, Generation, AIMessage])
        except Exception:  # written by another LangChain version: treat as a miss, it is rewritten
            return None
        for gen in generations:
            message = getattr(gen, "message", None)
            if message is not None:
                message.response_metadata = {**message.response_metadata, "cache_hit": True}
        return generations

    def update(self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE) -> None:
        value = dumps(list(return_val))
        with self._lock, self._connect() as conn:
            conn.execute("INSERT OR REPLACE INTO generations (key, value, created) VALUES (?, ?, ?)",
                         (self._key(prompt, llm_string), value, time.time()))

    def clear(self, **kwargs: Any) -> None:
        with self._lock, self._connect() as conn:
            conn.execute("DELETE FROM generations")

    def __len__(self) -> int:
        with self._lock, self._connect() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM generations").fetchone()[0])

    def __reduce__(self):
        return (SQLiteChatCache, (str(self.path),))
