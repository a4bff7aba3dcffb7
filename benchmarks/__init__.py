"""Side-by-side benchmark of tabline against peer synthesizers (not part of the package).

Run from the repository root as ``python -m benchmarks.run``; see benchmarks/README.md.
This package must stay importable with only the standard library and pandas: the
REaLTabFormer child process imports it from a separate venv.
"""
