"""Lazy package exports (PEP 562): a stage's public names are imported on first use.

``import neuromodmap.trials`` (and so ``neuromodmap --help``) then costs almost nothing;
scipy, nilearn, DuckDB, pandas and matplotlib load when a command first needs them.
"""

from __future__ import annotations

import importlib
import sys
import types

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: dict[str, tuple[str, ...]]):
    """The ``__getattr__`` and ``__dir__`` for ``package`` whose ``exports`` map submodule -> names.

    A name listed under its own submodule is the object of that name in it (``trials.classify``,
    the function), or the submodule itself when it has none (``evidence.datasets``). The
    function stays the function once its submodule is imported, as it was when the package
    imported it eagerly: the import system's ``setattr`` of the submodule onto the package is
    ignored for those names.
    """
    where = {name: module for module, names in exports.items() for name in names}
    module = sys.modules[package]

    def __getattr__(name: str):
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        sub = importlib.import_module(f"{package}.{where[name]}")
        value = getattr(sub, name) if hasattr(sub, name) or name != where[name] else sub
        module.__dict__[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(module.__dict__) | set(where))

    shadowed = frozenset(name for name in where if name in exports)
    if shadowed:
        class _Package(types.ModuleType):
            def __setattr__(self, name, value):
                if name in shadowed and isinstance(value, types.ModuleType) and hasattr(value, name):
                    return
                super().__setattr__(name, value)

        module.__class__ = _Package
    return __getattr__, __dir__
