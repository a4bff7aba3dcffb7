"""Import paths of your own code: ``"package.module:name"`` in a team, the object it names at run time.

A team names your agents by import path only, so nothing of your code is ever pickled into a run folder: a
resumed run imports the same path again. Where Python's own path does not find the module, the folders in
``search`` are tried after it (the team file's folder, the folder the run started from); a run records
them in its ``run.json`` so that ``--resume`` looks in the same places.

Example:
    >>> import_ref("os.path:join") is __import__("os").path.join
    True
    >>> ref_of(__import__("json").dumps)
    'json:dumps'
    >>> import_ref("json:dump_s")
    Traceback (most recent call last):
    tabline.agents.refs.RefError: module 'json' has no name 'dump_s' (did you mean 'dumps'?)
"""
from __future__ import annotations

import difflib
import importlib
import inspect
import os
import re
import sys
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from tabline.errors import TablineError

REF = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


class RefError(TablineError):
    """An import path that does not name an importable object."""


def check_ref_text(ref: str) -> str:
    """``ref`` if it looks like ``package.module:name``; a `RefError` saying so otherwise."""
    if not isinstance(ref, str) or not REF.match(ref):
        raise RefError(f"{ref!r} is not an import path; write it as 'package.module:name', e.g. 'my_agents:bmi'")
    return ref


def import_ref(ref: str, search: Sequence[str | os.PathLike] = ()) -> Any:
    """The object ``ref`` names. ``search``: folders tried after Python's own path when the module is not
    found there (they stay on the path afterwards, so the module's own imports of its neighbours work)."""
    module_name, _, attr = check_ref_text(ref).partition(":")
    module = _import_module(module_name, search)
    obj: Any = module
    for i, part in enumerate(attr.split(".")):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            owner = module_name if i == 0 else f"{module_name}:{'.'.join(attr.split('.')[:i])}"
            names = [n for n in dir(obj) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise RefError(f"module {owner!r} has no name {part!r}{hint}") from None
    return obj


def _import_module(name: str, search: Sequence[str | os.PathLike]):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if not _is_the_module(exc, name):
            raise RefError(f"importing {name!r} failed: {exc}") from exc
    except Exception as exc:  # the user's module raised while it was imported
        raise RefError(f"importing {name!r} raised {type(exc).__name__}: {exc}{where_raised(exc)}") from exc
    folders = [str(Path(p).resolve()) for p in search]
    added = [p for p in dict.fromkeys(folders) if p not in sys.path]
    sys.path.extend(added)  # after Python's own path: an installed package of the same name wins
    importlib.invalidate_caches()
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if not _is_the_module(exc, name):
            raise RefError(f"importing {name!r} failed: {exc}") from exc
        where = ", ".join(dict.fromkeys(folders)) or "no other folder"
        raise RefError(f"no module named {name!r} on the Python path nor in {where}; put the file there or "
                       "install it") from None
    except Exception as exc:
        raise RefError(f"importing {name!r} raised {type(exc).__name__}: {exc}{where_raised(exc)}") from exc


def _is_the_module(exc: ModuleNotFoundError, name: str) -> bool:
    """True when the missing module is ``name`` (or a package above it), not something it imports."""
    missing = exc.name or ""
    return missing == name or name.startswith(missing + ".")


def where_raised(exc: BaseException, files: Collection[str] = ()) -> str:
    """`` (file.py:12 in fn)`` for the deepest frame of ``exc``'s traceback in one of ``files`` (the user's
    module: a bug is rarely in the pandas call it broke), else the innermost frame; "" without a traceback."""
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    if not frames:
        return ""
    wanted = {str(Path(f).resolve()) for f in files if f}
    ours = [t for t in frames if str(Path(t.tb_frame.f_code.co_filename).resolve()) in wanted]
    tb = (ours or frames)[-1]
    code = tb.tb_frame.f_code
    return f" ({Path(code.co_filename).name}:{tb.tb_lineno} in {code.co_name})"


def ref_of(obj: Any) -> str:
    """The import path of a function or class defined at the top level of an importable module — what a
    team stores so that a resumed run can import it again.

    Example:
        >>> ref_of(Path) == f"{Path.__module__}:Path"
        True
        >>> ref_of(lambda batch: batch)
        Traceback (most recent call last):
        tabline.agents.refs.RefError: a lambda has no import path; define it with def at the top level of a module and name it there
    """
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not (inspect.isfunction(obj) or inspect.isclass(obj) or inspect.isbuiltin(obj)) or not module or not qualname:
        raise RefError(f"a {type(obj).__name__} object has no import path of its own; name it with a string "
                       "'package.module:name' (the module-level variable that holds it)")
    if qualname.endswith("<lambda>"):
        raise RefError("a lambda has no import path; define it with def at the top level of a module and name it there")
    if "<locals>" in qualname:
        raise RefError(f"{qualname} is defined inside a function; move it to the top level of a module so that a "
                       "resumed run can import it again")
    if module == "__main__":
        raise RefError(f"{qualname} is defined in the script being run (__main__), which a resumed run cannot "
                       "import; move it into a module beside the script and import it from there")
    ref = f"{module}:{qualname}"
    try:
        found = import_ref(ref)
    except RefError:
        found = None
    if found is not obj:
        raise RefError(f"{qualname} is not reachable as {ref!r}; define it at the top level of an importable module")
    return ref


def module_file(ref: str) -> str | None:
    """Where the module of an imported ``ref`` was loaded from (None for built-ins and namespace packages)."""
    module = sys.modules.get(ref.partition(":")[0])
    path = getattr(module, "__file__", None)
    return str(Path(path).resolve()) if path else None


__all__ = ["RefError", "check_ref_text", "import_ref", "module_file", "ref_of", "where_raised"]
