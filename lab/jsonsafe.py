"""The one NaN-to-null JSON cleaner (run store, run results, `fit --json`)."""

import math


def json_safe(value):
    """A JSON-safe copy of `value`: dicts (keys as str), lists and tuples (as lists) recursively;
    numpy scalars to Python numbers; non-finite floats (NaN, +-inf) to None (null), since NaN is not JSON."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
        value = value.item()                      # np.float32, np.int64, np.bool_ ... to float, int, bool
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
