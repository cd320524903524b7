"""Text from a stored model: `sample(store, run_id, prompt)` and `scaling-lab sample RUN_ID`."""

import math
import os

import numpy as np

from lab.config import ConfigError
from lab.i18n import _
from lab.store import RunStore


def check_sample_args(length, temperature) -> None:
    """Refuse a bad length or temperature (before any model is loaded)."""
    if isinstance(length, bool) or not isinstance(length, int) or not 0 <= length <= 100_000:
        raise ConfigError(_("length must be a whole number of tokens between 0 and 100000, got {value}").format(
            value=repr(length)))
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not (
            math.isfinite(temperature) and temperature >= 0):
        raise ConfigError(_("temperature must be a number >= 0 (0: greedy), got {value}").format(
            value=repr(temperature)))


def _stored_model(store, run_id: str):
    """(config, model, tokenizer) of a stored run: the store, a run id or a unique prefix of one."""
    from lab.data import tokenizer_of
    store = store if isinstance(store, RunStore) else RunStore(store)
    run_id = store.resolve(run_id)
    config = store.record(run_id).config
    return config, store.load_model(run_id), tokenizer_of(config)


def sample(store: RunStore | str | os.PathLike | None, run_id: str, prompt: str = "", *, length: int = 200,
           temperature: float = 0.8, seed: int = 0) -> str:
    """The text a stored model writes after `prompt` (the continuation only).

    Args:
        store: a RunStore or its folder (None: the default store).
        run_id: a run id, or a unique prefix of one (4+ hex digits).
        prompt: text to continue, as the run's tokens (UTF-8 bytes, or its characters); only the last
            context's worth is seen.
        length: tokens to generate (bytes or characters; a character cut at the end, or bytes that
            are no UTF-8 character, are left out of the text: `lab.data.Tokenizer.decode`).
        temperature: 0 is greedy; 1 samples the model's own distribution.
        seed: the sampling key, so the same call gives the same text.

    Raises:
        ConfigError: an unknown run id (the message says how to list them), a run without
            weights, or a bad length / temperature.
    """
    check_sample_args(length, temperature)
    import jax.numpy as jnp
    import jax.random as jr

    from lab.models import generate
    config, model, tok = _stored_model(store, run_id)
    out = generate(model, jnp.asarray(tok.encode(prompt)), length, config.model.context,
                   temperature=float(temperature), key=jr.PRNGKey(seed), start=int(tok.encode("\n")[0]))
    return tok.decode(np.asarray(out).tolist())



def next_token_probabilities(store: RunStore | str | os.PathLike | None, run_id: str, prompt: str) -> dict[str, float]:
    """The stored model's distribution over its next token after `prompt` (temperature 1): {the
    token's text: probability}, most likely first. Bytes that are no whole character alone (UTF-8
    continuation and lead bytes) are summed under ""; the sampler draws from exactly this
    distribution, sharpened as softmax(logits / temperature)."""
    import jax
    import jax.numpy as jnp

    config, model, tok = _stored_model(store, run_id)
    tokens = tok.encode(prompt)[-config.model.context:]
    if not len(tokens):
        raise ConfigError(_("the prompt is empty; give the model some text to continue"))
    window = np.zeros(config.model.context, np.int32)
    window[:len(tokens)] = tokens
    probs = np.asarray(jax.nn.softmax(model(jnp.asarray(window))[len(tokens) - 1].astype(jnp.float32)))
    out: dict[str, float] = {}
    for t, p in enumerate(probs.tolist()):
        text = tok.decode([t])
        out[text] = out.get(text, 0.0) + p
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))
