"""Loaded before any test or doctest of the repository (tests/ and tabline/ alike): none may reach the network.

The guard lives in tests/netguard, in its own folder because child Pythons load it from there as
`sitecustomize`; see tabline_netguard.py there.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "tests", "netguard"))
pytest_plugins = ["pytest_netguard"]
collect_ignore = ["tests/netguard/sitecustomize.py"]  # importing it would run it: it is for child interpreters
