"""Language models in Equinox, each a pure function of (config, key).

- `GPT`: a decoder-only Transformer (pre-norm, causal multi-head attention, 4x GELU MLP,
  learned or rotary positions, untied output head), in the style of GPT-2 / nanoGPT.
- `LSTM`: a stacked LSTM language model, the baseline of Kaplan et al. (2020, fig. 7).
- `CNN`: a causal convolutional language model (WaveNet / ByteNet-style dilations): the
  Transformer's block with attention replaced by a causal, dilated, depthwise convolution.

The Transformer has two parameterisations (`ModelConfig.param`):
- "standard": GPT-2's (every weight drawn with std 0.02, residual projections scaled by
  1/sqrt(2·depth), attention logits by 1/sqrt(head size), one learning rate for all).
- "mup": the maximal update parameterisation for Adam (Yang et al. 2022, Tensor Programs V,
  table 3; microsoft/mup), relative to `base_width` where it equals the standard one. With
  m = width / base_width: hidden matrices are drawn with std 0.02/sqrt(m) and learn at lr/m
  (`lr_multipliers`); the output logits are multiplied by 1/m (the head learns at lr);
  attention logits are scaled by 1/head size (times sqrt of the base head size); embeddings,
  biases and layer norms are unchanged. Every layer's activations then move by the same
  amount per step at every width, so a learning rate tuned on a small model holds on a big one.

Models take a batch of token ids (`batch seq`) or one sequence (`seq`). Unlike the usual
Equinox habit (act on one example, `vmap` at the call site), the Transformer flattens the
batch into one (batch·seq, width) matrix itself: XLA on CPU turns the vmapped form's weight
gradients into contractions over two axes, and the flat form trained 15-30 % faster here
(bench/README.md). Attention alone needs the (batch, seq) structure.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, Int

from lab.config import ModelConfig
from lab.counting import conv_dilations, conv_kernel

INIT_STD = 0.02  # GPT-2's initialisation scale


def _normal(key, shape, std):
    return std * jr.normal(key, shape, dtype=jnp.float32)


class LayerNorm(eqx.Module):
    scale: Float[Array, " width"]
    bias: Float[Array, " width"]

    def __init__(self, width: int):
        self.scale = jnp.ones(width)
        self.bias = jnp.zeros(width)

    def __call__(self, x: Float[Array, "tokens width"]) -> Float[Array, "tokens width"]:
        x32 = x.astype(jnp.float32)
        mean = x32.mean(-1, keepdims=True)
        var = jnp.square(x32 - mean).mean(-1, keepdims=True)
        y = (x32 - mean) * jax.lax.rsqrt(var + 1e-5)
        return (y * self.scale.astype(jnp.float32) + self.bias.astype(jnp.float32)).astype(x.dtype)


def rotary(x: Float[Array, "seq heads hd"]) -> Float[Array, "seq heads hd"]:
    """Rotary position embedding (Su et al. 2021) on the last axis, split in two halves."""
    seq, _, hd = x.shape
    half = hd // 2
    freqs = 1.0 / (10_000 ** (jnp.arange(half, dtype=jnp.float32) / half))
    angles = jnp.arange(seq, dtype=jnp.float32)[:, None] * freqs[None, :]
    cos, sin = jnp.cos(angles)[:, None, :].astype(x.dtype), jnp.sin(angles)[:, None, :].astype(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return jnp.concatenate([x1 * cos - x2 * sin, x1 * sin + x2 * cos], axis=-1)


def _attend(q, k, v, mask, scale):
    scores = (q @ jnp.swapaxes(k, -1, -2)).astype(jnp.float32) * scale
    probs = jax.nn.softmax(jnp.where(mask, scores, -jnp.inf), axis=-1).astype(v.dtype)
    return probs @ v


def query_block(seq: int) -> int:
    """Queries per block of causal attention. Sequences that are multiples of 32 go in at most
    8 blocks of at least 32 queries (fewer, larger blocks waste more on the masked triangle;
    more, smaller ones make the matmuls too small to run fast: measured on CPU, bench/README.md);
    other even sequences of 64 or more in halves; the rest whole."""
    if seq >= 64 and seq % 32 == 0:
        return max(32, seq // 8)
    return seq // 2 if seq >= 64 and seq % 2 == 0 else seq


def causal_attention(q: Float[Array, "batch seq heads hd"], k: Float[Array, "batch seq heads hd"],
                     v: Float[Array, "batch seq heads hd"], scale: float | None = None) -> Float[Array, "batch seq heads hd"]:
    """softmax(q kᵀ · scale + causal mask) v (scale 1/√hd unless given), with heads moved next to the batch so that both
    products are plain batched matmuls. Written out rather than `jax.nn.dot_product_attention`
    (its XLA path): forward + backward ran 1.8x faster this way on CPU (bench/README.md), and
    XLA fuses it on GPU and TPU alike. Queries go in blocks (`query_block`), each attending
    only to the keys up to its last position: the fully masked blocks above the diagonal are
    never computed (8 blocks compute 56 % of the full product)."""
    seq = q.shape[1]
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    q, k, v = (t.transpose(0, 2, 1, 3) for t in (q, k, v))            # batch heads seq hd
    c = query_block(seq)
    outs = []
    for start in range(0, seq, c):
        end = start + c
        mask = jnp.tril(jnp.ones((c, end), bool), k=start)
        outs.append(_attend(q[..., start:end, :], k[..., :end, :], v[..., :end, :], mask, scale))
    out = outs[0] if len(outs) == 1 else jnp.concatenate(outs, axis=2)
    return out.transpose(0, 2, 1, 3)


def sum_leading(x: Float[Array, "n *rest"]) -> Float[Array, "*rest"]:
    """x.sum(0) as a tree of elementwise adds (halves added pairwise). XLA on CPU ran a sum
    over a short leading axis 10-50x slower than this when the rest is large (16 x 256 x 384:
    9.6 ms vs 0.3 ms), and a product with a vector of ones drew a whole backward pass into one
    slow fusion at small widths (bench/README.md)."""
    while x.shape[0] > 1:
        h = x.shape[0] // 2
        pairs = x[:h] + x[h:2 * h]
        x = pairs if x.shape[0] % 2 == 0 else pairs.at[0].add(x[-1])
    return x[0]


@jax.custom_vjp
def add_positions(x: Float[Array, "batch seq width"], pos: Float[Array, "seq width"]) -> Float[Array, "batch seq width"]:
    """x + pos, broadcast over the batch; the gradient for `pos` (a sum over the batch) goes
    through `sum_leading`."""
    return x + pos


def _add_positions_fwd(x, pos):
    return x + pos, None


def _add_positions_bwd(_, g):
    return g, sum_leading(g)


add_positions.defvjp(_add_positions_fwd, _add_positions_bwd)


class MLP(eqx.Module):
    """The residual 4x GELU MLP of every block, the Transformer's and the convolutional one's:
    x + W_down·gelu(W_up·LN(x) + b_up) + b_down, on a flat (tokens, width) matrix. The last field
    of each block, so a block's leaves keep the order its weights are stored in."""
    ln: LayerNorm
    w_up: Float[Array, "width 4*width"]
    b_up: Float[Array, " 4*width"]
    w_down: Float[Array, "4*width width"]
    b_down: Float[Array, " width"]

    def __init__(self, width: int, std: float, resid_std: float, *, key_up, key_down):
        self.ln = LayerNorm(width)
        self.w_up, self.b_up = _normal(key_up, (width, 4 * width), std), jnp.zeros(4 * width)
        self.w_down, self.b_down = _normal(key_down, (4 * width, width), resid_std), jnp.zeros(width)

    def __call__(self, x: Float[Array, "tokens width"]) -> Float[Array, "tokens width"]:
        h = jax.nn.gelu(self.ln(x) @ self.w_up + self.b_up)
        return x + h @ self.w_down + self.b_down


class Block(eqx.Module):
    ln1: LayerNorm
    w_qkv: Float[Array, "width 3*width"]
    b_qkv: Float[Array, " 3*width"]
    w_out: Float[Array, "width width"]
    b_out: Float[Array, " width"]
    mlp: MLP
    heads: int = eqx.field(static=True)
    use_rotary: bool = eqx.field(static=True)
    attn_scale: float = eqx.field(static=True)

    def __init__(self, width: int, heads: int, depth: int, use_rotary: bool, *, key, mult: float = 1.0,
                 attn_scale: float | None = None):
        k1, k2, k3, k4 = jr.split(key, 4)
        std = INIT_STD / math.sqrt(mult)               # μP: hidden weights' std falls as 1/sqrt(fan-in)
        resid_std = std / math.sqrt(2 * depth)         # GPT-2: scale residual projections by depth
        self.ln1 = LayerNorm(width)
        self.w_qkv, self.b_qkv = _normal(k1, (width, 3 * width), std), jnp.zeros(3 * width)
        self.w_out, self.b_out = _normal(k2, (width, width), resid_std), jnp.zeros(width)
        self.mlp = MLP(width, std, resid_std, key_up=k3, key_down=k4)
        self.heads, self.use_rotary = heads, use_rotary
        self.attn_scale = (width // heads) ** -0.5 if attn_scale is None else attn_scale

    def __call__(self, x: Float[Array, "tokens width"], batch: int) -> Float[Array, "tokens width"]:
        n, width = x.shape
        seq = n // batch
        h = self.ln1(x)
        qkv = h @ self.w_qkv + self.b_qkv
        q, k, v = jnp.split(qkv.reshape(batch, seq, 3 * self.heads, width // self.heads), 3, axis=2)
        if self.use_rotary:
            q, k = jax.vmap(rotary)(q), jax.vmap(rotary)(k)
        att = causal_attention(q, k, v, self.attn_scale)
        x = x + att.reshape(n, width) @ self.w_out + self.b_out
        return self.mlp(x)


class GPT(eqx.Module):
    tok_emb: Float[Array, "vocab width"]
    pos_emb: Float[Array, "context width"] | None
    blocks: tuple[Block, ...]
    ln_f: LayerNorm
    head: Float[Array, "width vocab"]
    out_mult: float = eqx.field(static=True)

    def __init__(self, cfg: ModelConfig, *, key):
        kt, kp, kh, kb = jr.split(key, 4)
        mult = width_mult(cfg)
        attn_scale = None
        if cfg.param == "mup":   # 1/head size, equal to 1/sqrt(head size) at the base width
            base_head = cfg.head_dim or max(cfg.base_width // cfg.heads, 1)
            attn_scale = math.sqrt(base_head) / (cfg.width // cfg.heads)
        self.tok_emb = _normal(kt, (cfg.vocab, cfg.width), INIT_STD)
        self.pos_emb = _normal(kp, (cfg.context, cfg.width), INIT_STD) if cfg.positions == "learned" else None
        self.blocks = tuple(Block(cfg.width, cfg.heads, cfg.depth, cfg.positions == "rotary", key=k, mult=mult,
                                  attn_scale=attn_scale)
                            for k in jr.split(kb, cfg.depth))
        self.ln_f = LayerNorm(cfg.width)
        self.head = _normal(kh, (cfg.width, cfg.vocab), INIT_STD)
        self.out_mult = 1.0 / mult

    def __call__(self, tokens: Int[Array, "*batch seq"]) -> Float[Array, "*batch seq vocab"]:
        lead, seq = tokens.shape[:-1], tokens.shape[-1]
        tokens = tokens.reshape(-1, seq)
        batch = tokens.shape[0]
        x = self.tok_emb[tokens]
        if self.pos_emb is not None:
            x = add_positions(x, self.pos_emb[:seq].astype(x.dtype))
        x = x.reshape(batch * seq, -1)
        for block in self.blocks:
            x = block(x, batch)
        logits = self.ln_f(x) @ self.head
        if self.out_mult != 1.0:
            logits = logits * self.out_mult
        return logits.reshape(*lead, seq, -1)


class LSTM(eqx.Module):
    """Stacked LSTM language model: embedding -> depth x LSTMCell -> linear head."""

    tok_emb: Float[Array, "vocab width"]
    cells: tuple[eqx.nn.LSTMCell, ...]
    head: Float[Array, "width vocab"]
    head_bias: Float[Array, " vocab"]

    def __init__(self, cfg: ModelConfig, *, key):
        kt, kh, kc = jr.split(key, 3)
        self.tok_emb = _normal(kt, (cfg.vocab, cfg.width), INIT_STD)
        self.cells = tuple(eqx.nn.LSTMCell(cfg.width, cfg.width, key=k) for k in jr.split(kc, cfg.depth))
        self.head = _normal(kh, (cfg.width, cfg.vocab), INIT_STD)
        self.head_bias = jnp.zeros(cfg.vocab)

    def __call__(self, tokens: Int[Array, "*batch seq"]) -> Float[Array, "*batch seq vocab"]:
        if tokens.ndim > 1:
            return jax.vmap(self)(tokens)
        x = self.tok_emb[tokens]
        for cell in self.cells:
            zeros = jnp.zeros(cell.hidden_size, x.dtype)

            def step(carry, xt, cell=cell):
                h, c = cell(xt, carry)
                return (h, c), h

            _, x = jax.lax.scan(step, (zeros, zeros), x)
        return x @ self.head + self.head_bias


CONV_MATRIX_TAPS = 8           # more live taps than this: the convolution as a per-channel matrix (measured, below)
CONV_MATRIX_MAX = 1 << 24      # ... when that matrix (seq x seq x width values) is at most this big


def conv_as_matrix(kernel: int, dilation: int, seq: int, width: int) -> bool:
    """Whether `causal_conv` multiplies by a (seq, seq) matrix per channel instead of adding shifted
    copies. The shifted sum costs one pass over the activations per tap; the matrix is one batched
    matmul that also multiplies the zeros above and off its diagonals. Training tokens/s on this
    2-core CPU (busy, so rough), summed vs matrix: 32 taps (width 32, depth 1, context 32) 66k vs
    144k; 22 taps (64, 2, 64) 21k vs 38k; 10 taps (64, 3, 64) 12k vs 19k; 6 taps (128, 4, 64) 5.0k
    vs 6.6k; 2 taps at dilations 1..32 (64, 6, 64) 18k vs 5k. Long contexts keep the sum: the
    matrix grows as seq²·width."""
    live = min(kernel, -(-seq // dilation))             # taps that reach inside the window
    return live > CONV_MATRIX_TAPS and seq * seq * width <= CONV_MATRIX_MAX


def causal_conv(x: Float[Array, "batch seq width"], w: Float[Array, "kernel width"],
                dilation: int) -> Float[Array, "batch seq width"]:
    """Depthwise causal convolution: y[t] = Σ_j w[j] ⊙ x[t - j·dilation], with zeros before the
    first token (left padding), so position t never sees a later one. Taps that only ever reach
    the padding are skipped. Written out rather than `lax.conv_general_dilated` with feature
    groups: on CPU its forward + backward was never faster than the better form here and up to
    28x slower (2 taps at dilations 1..32)."""
    batch, seq, width = x.shape
    kernel = w.shape[0]
    w = w.astype(x.dtype)
    if conv_as_matrix(kernel, dilation, seq, width):
        lag = jnp.arange(seq)[:, None] - jnp.arange(seq)[None, :]          # t - s
        tap = lag // dilation
        live = (lag >= 0) & (lag % dilation == 0) & (tap < kernel)
        m = jnp.where(live[:, :, None], w[jnp.clip(tap, 0, kernel - 1)], 0)  # seq seq width: m[t, s] = w[(t-s)/dil]
        return jnp.einsum("tsc,bsc->btc", m, x)
    y = x * w[0]
    for j in range(1, kernel):
        shift = j * dilation
        if shift >= seq:
            break
        y = y + jnp.pad(x[:, :seq - shift], ((0, 0), (shift, 0), (0, 0))) * w[j]
    return y


class ConvBlock(eqx.Module):
    """Pre-norm residual block: x + conv(LN(x)), then x + MLP(LN(x)) with the Transformer's 4x GELU MLP."""

    ln1: LayerNorm
    w_conv: Float[Array, "kernel width"]       # tap j multiplies the input j·dilation tokens back
    b_conv: Float[Array, " width"]
    mlp: MLP
    dilation: int = eqx.field(static=True)

    def __init__(self, width: int, kernel: int, dilation: int, depth: int, *, key):
        k1, k2, k3 = jr.split(key, 3)
        resid_std = INIT_STD / math.sqrt(2 * depth)   # GPT-2: branches writing into the residual stream
        self.ln1 = LayerNorm(width)
        # the taps write into the residual stream as attention's output projection does: GPT-2's scaled std
        # (drawn with 1/sqrt(2·depth·kernel) instead, a fan-in rule, the validation loss after 300k tokens at
        # width 64, depth 2 was 1.78 against 1.61 with this, two seeds each)
        self.w_conv, self.b_conv = _normal(k1, (kernel, width), resid_std), jnp.zeros(width)
        self.mlp = MLP(width, INIT_STD, resid_std, key_up=k2, key_down=k3)
        self.dilation = dilation

    def __call__(self, x: Float[Array, "batch seq width"]) -> Float[Array, "batch seq width"]:
        batch, seq, width = x.shape
        x = x + causal_conv(self.ln1(x), self.w_conv, self.dilation) + self.b_conv
        return self.mlp(x.reshape(batch * seq, width)).reshape(batch, seq, width)


class CNN(eqx.Module):
    """Causal convolutional language model: byte embedding -> depth x ConvBlock (dilations 1, 2,
    4, ..., `lab.counting.conv_dilations`) -> layer norm -> linear head, as the Transformer's.
    No position table: the taps are relative positions. Receptive field 1 + (k-1)·Σ dilations
    (`lab.counting.receptive_field`); by default k is the smallest that covers the context."""

    tok_emb: Float[Array, "vocab width"]
    blocks: tuple[ConvBlock, ...]
    ln_f: LayerNorm
    head: Float[Array, "width vocab"]

    def __init__(self, cfg: ModelConfig, *, key):
        kt, kh, kb = jr.split(key, 3)
        kernel = conv_kernel(cfg)
        self.tok_emb = _normal(kt, (cfg.vocab, cfg.width), INIT_STD)
        self.blocks = tuple(ConvBlock(cfg.width, kernel, dilation, cfg.depth, key=k)
                            for k, dilation in zip(jr.split(kb, cfg.depth), conv_dilations(cfg)))
        self.ln_f = LayerNorm(cfg.width)
        self.head = _normal(kh, (cfg.width, cfg.vocab), INIT_STD)

    def __call__(self, tokens: Int[Array, "*batch seq"]) -> Float[Array, "*batch seq vocab"]:
        lead, seq = tokens.shape[:-1], tokens.shape[-1]
        tokens = tokens.reshape(-1, seq)
        x = self.tok_emb[tokens]
        for block in self.blocks:
            x = block(x)
        logits = self.ln_f(x.reshape(-1, x.shape[-1])) @ self.head
        return logits.reshape(*lead, seq, -1)


def width_mult(cfg: ModelConfig) -> float:
    """μP's width multiplier m = width / base_width; 1 for the standard parameterisation."""
    return cfg.width / cfg.base_width if cfg.param == "mup" else 1.0


def lr_multipliers(m: float, params):
    """Per-leaf learning-rate factors for one model's `params` (a tree shaped like its arrays)
    at width multiplier `m` (`width_mult`): μP's 1/m for the hidden matrices (the blocks' 2-D
    weights), 1 elsewhere. Multiplying an Adam-type update by it is the same as giving that
    layer its own learning rate (decoupled weight decay, which optax multiplies by the rate,
    follows it)."""

    def factor(path, leaf):
        hidden = any(getattr(k, "name", None) == "blocks" for k in path) and getattr(leaf, "ndim", 0) == 2
        return 1.0 / m if hidden else 1.0

    return jax.tree_util.tree_map_with_path(factor, params)


def make_model(cfg: ModelConfig, *, key) -> GPT | LSTM | CNN:
    """The model a config describes, initialised from `key`."""
    return {"gpt": GPT, "lstm": LSTM, "cnn": CNN}[cfg.arch](cfg, key=key)


@eqx.filter_jit
def _next_token(model, buf, pos, key, temperature):
    """One step of `generate`: the next token after the window `buf` holding `pos` tokens, and the
    window with it appended (shifted once full). Compiled once per model shape and context."""
    context = buf.shape[0]
    logits = model(buf)[jnp.maximum(pos - 1, 0)]
    nxt = jnp.where(temperature > 0, jr.categorical(key, logits / jnp.maximum(temperature, 1e-6)),
                    jnp.argmax(logits))
    full = pos >= context
    buf = jnp.where(full, jnp.roll(buf, -1).at[-1].set(nxt), buf.at[jnp.minimum(pos, context - 1)].set(nxt))
    return buf, jnp.minimum(pos + 1, context), nxt


def generate(model, prompt: Int[Array, " n"], length: int, context: int, *, temperature: float, key,
             start: int = 10) -> Int[Array, " m"]:
    """Sample `length` tokens after `prompt` (temperature 0: greedy; no prompt: after the token
    `start`, a newline). Each token reads the whole window again (no cache of keys and values),
    which is fine for the few hundred tokens a lesson reads; the step is compiled once per model
    shape, so a second call starts at once."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    buf = jnp.zeros(context, jnp.int32)
    n = min(prompt.shape[0], context)
    buf = buf.at[:n].set(prompt[-n:]) if n else buf
    out = []
    pos = jnp.int32(n)
    if n == 0:  # no prompt: start from a newline
        buf, pos = buf.at[0].set(start), jnp.int32(1)
    temperature = jnp.float32(temperature)
    for k in jr.split(key, length):
        buf, pos, nxt = _next_token(model, buf, pos, k, temperature)
        out.append(nxt)
    return jnp.stack(out) if out else jnp.zeros(0, jnp.int32)
