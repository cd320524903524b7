"""The weights file of a run: one JSON header line (format, run id, config), then the Equinox
leaves (`eqx.tree_serialise_leaves`); never pickle. Equinox and JAX load on first use."""

import io
import json

from lab.config import ConfigError, RunConfig

WEIGHTS_FORMAT = "scaling-lab/weights"


class WeightsError(ConfigError):
    """Bytes that are not a scaling-lab weights file."""


def weights_bytes(config: RunConfig, model) -> bytes:
    """A weights file: one JSON header line (format, run id, config), then the Equinox leaves."""
    import equinox as eqx
    buf = io.BytesIO()
    header = {"format": WEIGHTS_FORMAT, "version": 1, "run_id": config.run_id, "config": config.to_dict()}
    buf.write(json.dumps(header, sort_keys=True).encode() + b"\n")
    eqx.tree_serialise_leaves(buf, model)
    return buf.getvalue()


def read_header(f) -> dict:
    """The header of an open weights file (binary), checked; the file is left after it."""
    try:
        header = json.loads(f.readline(1 << 20))
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != WEIGHTS_FORMAT or "config" not in header:
        raise WeightsError("not a scaling-lab weights file (its first line is not the JSON header)")
    return header


def read_weights(data: bytes | io.BufferedIOBase):
    """(config, model) from a weights file's bytes or an open binary file."""
    import equinox as eqx
    import jax.random as jr
    from lab.models import make_model
    f = io.BytesIO(data) if isinstance(data, bytes) else data
    config = RunConfig.from_dict(read_header(f)["config"])
    like = eqx.filter_eval_shape(make_model, config.model, key=jr.PRNGKey(0))
    return config, eqx.tree_deserialise_leaves(f, like)
