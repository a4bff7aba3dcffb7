"""Starts the network guard in every Python whose PYTHONPATH holds this folder and whose environment has
``TABLINE_TEST_NO_NETWORK=1``: the child processes tests start (see tabline_netguard.py).

Python imports only the first ``sitecustomize`` on sys.path, so this one runs any other it shadows.
"""
import importlib.machinery
import importlib.util
import os
import sys

import tabline_netguard

tabline_netguard.install_if_asked()


def _run_shadowed_sitecustomize() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)


_run_shadowed_sitecustomize()
