"""Deprecated: the response store moved to :mod:`dbnb.llm.store` (also exported by :mod:`dbnb.llm`).

This module re-exports its public names for one release and warns when imported.
"""

import warnings

from .llm.store import (
    OPTIONAL_FIELDS,
    REQUIRED_FIELDS,
    JsonlStore,
    MemoryStore,
    Store,
    compact,
    make_key,
    sanitize_params,
)

warnings.warn("dbnb.store is deprecated; import from dbnb.llm (or dbnb.llm.store) instead",
              DeprecationWarning, stacklevel=2)

__all__ = ["Store", "MemoryStore", "JsonlStore", "make_key", "sanitize_params", "compact",
           "REQUIRED_FIELDS", "OPTIONAL_FIELDS"]
