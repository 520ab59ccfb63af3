"""The Chalice app module loaded fresh, as a new process (a Lambda instance) would load it."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from iraas.config import CHALICE_PROJECT


def load_app_module(name: str = "iraas_chalice_web_app") -> ModuleType:
    """``chalice_web/app.py`` and its ``chalicelib`` imported anew: no settings cached from before."""
    for module in [m for m in sys.modules if m == "chalicelib" or m.startswith("chalicelib.")]:
        del sys.modules[module]
    if str(CHALICE_PROJECT) not in sys.path:
        sys.path.insert(0, str(CHALICE_PROJECT))  # what chalice does for its project folder
    spec = importlib.util.spec_from_file_location(name, CHALICE_PROJECT / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
