"""policetrial: run a cluster randomised trial of police training from sketch to report.

The root holds the version and `lazy_names`, with which a package (protocol, outcomes,
survey, audit) loads its public names from their modules on first use (PEP 562), so that
importing one light submodule does not load the heavy libraries its siblings need.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "lazy_names"]


def lazy_names(
    package: str, home: Mapping[str, str], namespace: dict[str, Any]
) -> Callable[[str], Any]:
    """A module `__getattr__` for `package`: a name in `home` from its module (kept in the
    package's `namespace` once loaded), any other name as a submodule (as
    `policetrial.protocol.schema` after `import policetrial.protocol`)."""

    def getattr_(name: str) -> Any:
        module = home.get(name)
        if module is None:
            if name.startswith("_"):
                raise AttributeError(f"module {package!r} has no attribute {name!r}")
            try:
                return importlib.import_module(f"{package}.{name}")
            except ModuleNotFoundError as exc:
                if exc.name != f"{package}.{name}":
                    raise
                raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    return getattr_
