"""kclf's one JSON rule, for every file it writes (summary.json, comparison.json, bench.json).

JSON has no NaN or infinity, and kclf's numbers have all three (a diverging run's loss is
+inf, an empty mean NaN). They are written as the strings "nan", "inf" and "-inf", kept
distinct, and :func:`number` reads them back as floats, so +inf on one backend never
"agrees" with −inf or NaN on another. NumPy arrays and scalars become lists and numbers, a
set becomes a sorted list; anything else that JSON cannot hold is an error naming where it
is, raised before a single file is written.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from kclf.errors import KclfError

NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class NotJsonable(KclfError):
    """A result that JSON cannot hold (an object, a set of mixed types)."""


def _float(value: float) -> float | str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def to_jsonable(value: Any, where: str = "") -> Any:
    """``value`` as JSON-ready Python: NaN, +inf, −inf → "nan", "inf", "-inf"."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return _float(float(value))
    if isinstance(value, dict):
        return {str(k): to_jsonable(v, f"{where}/{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        try:
            value = sorted(value)
        except TypeError:
            raise NotJsonable(f"{where or 'value'}: a set of mixed types cannot be written as JSON; "
                              "expected numbers, strings, lists or dicts") from None
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, f"{where}/{i}" if where else str(i)) for i, v in enumerate(value)]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist(), where)
    if hasattr(value, "numpy") or hasattr(value, "__array__"):
        return to_jsonable(np.asarray(value), where)
    raise NotJsonable(f"{where or 'value'}: a {type(value).__name__} cannot be written as JSON; "
                      "expected numbers, strings, lists or dicts")


def dumps(value: Any, **kwargs) -> str:
    """json.dumps under the rule (strict: never a bare NaN or Infinity)."""
    return json.dumps(to_jsonable(value), allow_nan=False, **kwargs)


def is_number(value: Any) -> bool:
    """A number as kclf writes it: int, float, "nan"/"inf"/"-inf", or None (NaN in older files)."""
    if isinstance(value, str):
        return value in NONFINITE
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def number(value: Any) -> float:
    """The float a number leaf stands for (see :func:`is_number`)."""
    if value is None:
        return math.nan
    return NONFINITE[value] if isinstance(value, str) else float(value)
