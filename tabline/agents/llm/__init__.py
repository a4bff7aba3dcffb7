"""LLM backends for every agent role: any LangChain chat model, or a shorthand (``openai:MODEL``,
``openai-compatible:URL:MODEL``, ``hf:PATH``, ``embedded``), called with structured output, bounded
retries, backoff, a SQLite cache and token accounting. See docs/llm.md."""
