"""Corpora as tokens: two built-in corpora, synthetic Markov sources, text files, HF datasets.

Every source becomes a `Dataset`: tokens split into a training part and a held-out validation
part, with the numbers a lesson needs to judge a loss: the unigram baseline (what a model that
ignores context reaches) and, for synthetic sources, the exact entropy rate (what a perfect
model reaches).

Tokens are UTF-8 bytes (vocabulary 256) unless the data asks for characters
(`DataConfig.tokenizer = "chars"`): then each of the model.vocab - 1 most frequent characters of
the training split (ties by code point) is a token, and token 0 stands for every other
character. A Chinese character is one token instead of three bytes, and a context holds three
times as many. Everything is counted as for bytes (parameters and FLOPs from model.vocab,
D in tokens); bits per byte divide by the held-out text's UTF-8 bytes per token.

The two built-in corpora ship with every CPython, so nothing is downloaded:
- "stdlib" (the default): the standard library's own Python source, about 11 MB, big
  enough for a CPU scaling ladder up to a million parameters at 20 tokens per parameter
  (under 2 epochs). Blocks of about 4 KB go to validation by a hash of their file and index,
  so the held-out part is drawn from the same distribution as the training part (not a tail
  of other files).
- "builtin": the prose of Python's reference documentation, 0.46 MB: quick lessons.
"""

import functools
import hashlib
import math
import os
import sys
import sysconfig
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

from lab.config import ConfigError, DataConfig
from lab.i18n import N_
from lab.schema import Fix, Name, Say

VOCAB = 256
MIN_FILE_BYTES = 2_000            # below this no train/validation split is meaningful
MAX_FILE_BYTES = 1 << 30          # 1 GiB: the tokens live in memory (and on the device)


OTHER = "\u25a1"     # □: how decoded text shows token 0 of character tokens, a character outside the table


@dataclass(frozen=True)
class Tokenizer:
    """Text to tokens and back: UTF-8 bytes (`chars` None), or characters, token i + 1 being
    `chars[i]` and token 0 any character outside the table."""
    chars: str | None = None

    @property
    def kind(self) -> str:
        return "bytes" if self.chars is None else "chars"

    def encode(self, text: str) -> np.ndarray:
        """`text` as tokens (int32)."""
        if self.chars is None:
            return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int32)
        return _char_tokens(_code_points(text), _lookup(self.chars)).astype(np.int32)

    def decode(self, tokens) -> str:
        """Tokens as text. Bytes that make no whole UTF-8 character (one cut at the end of a sample,
        or a sequence the model made up) are left out, so the text never shows the replacement
        character �; with characters, token 0 (a character outside the table) is shown as □."""
        tokens = [int(t) for t in tokens]
        if self.chars is None:
            return bytes(t for t in tokens if 0 <= t < 256).decode("utf-8", errors="ignore")
        return "".join(self.chars[t - 1] if 0 < t <= len(self.chars) else OTHER for t in tokens)


BYTES = Tokenizer()


@dataclass(frozen=True, eq=False)
class Dataset:
    name: str
    train: np.ndarray             # tokens (uint8 bytes; uint16 or int32 characters)
    val: np.ndarray               # tokens held out (a tail, or blocks by hash for "stdlib")
    vocab: int
    unigram_loss: float           # nats/token: cross-entropy of the training unigram on validation
    entropy_rate: float | None    # nats/token: exact floor for synthetic sources, else None
    fingerprint: str              # sha256 of all tokens (and the character table), to tell corpora apart
    description: str
    tokenizer: Tokenizer = BYTES  # text <-> tokens
    bytes_per_token: float = 1.0  # UTF-8 bytes per token of the held-out text (1 for bytes)
    coverage: float = 1.0         # share of the held-out characters that have a token of their own

    def check_fits(self, context: int) -> None:
        """Raise ConfigError unless both splits hold at least one (context + 1) window."""
        for split, arr in ((N_("training split"), self.train), (N_("validation split"), self.val)):
            if len(arr) < context + 1:
                raise ConfigError(Say(N_("the {split} of {name} has {n} tokens, fewer than one context of "
                                         "{context} + 1; use a shorter {setting} or a larger text"), split=Say(split),
                                      name=self.name, n=len(arr), context=context, setting=Name("model.context")))




def builtin_text() -> str:
    """The built-in corpus: the prose of Python's own reference documentation.

    `pydoc_data.topics` ships with every CPython installation (it backs `help()`), holds
    about 460 kB of human-written English from docs.python.org, and needs no download.
    Topics are joined in sorted order, so the corpus is deterministic for a Python version.
    """
    from pydoc_data.topics import topics
    return "\n\n".join(topics[k].strip() for k in sorted(topics))


# Folders of the standard library left out of the "stdlib" corpus: test suites (generated and
# repetitive data files), installed third-party packages, and the documentation topics that
# are the "builtin" corpus already.
STDLIB_SKIP = frozenset({"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__", "pydoc_data"})


def stdlib_files(root: str | None = None) -> list[tuple[str, bytes]]:
    """(path relative to the standard library, UTF-8 bytes) of every `.py` file of this Python's
    standard library outside `STDLIB_SKIP`, in sorted order: deterministic for a Python version."""
    root = root or sysconfig.get_paths()["stdlib"]
    files = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in STDLIB_SKIP)
        for name in sorted(names):
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                raw = f.read()
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                continue
            files.append((os.path.relpath(path, root).replace(os.sep, "/"), raw))
    return sorted(files)


BLOCK_BYTES = 4096      # held-out pieces of the "stdlib" corpus: this long, cut at a line end


def held_out(name: str, val_fraction: float) -> bool:
    """Whether the piece called `name` goes to validation: a hash of its name, uniform in [0, 1),
    below the fraction. Independent of order and size, so both parts are the same kind of text."""
    return int(hashlib.sha256(name.encode()).hexdigest()[:12], 16) / 16 ** 12 < val_fraction


def blocks(raw: bytes, size: int = BLOCK_BYTES) -> list[bytes]:
    """`raw` cut into pieces of at least `size` bytes, each ending at a line end (the last may be shorter)."""
    out, start = [], 0
    while start < len(raw):
        end = raw.find(b"\n", start + size)
        end = len(raw) if end < 0 else end + 1
        out.append(raw[start:end])
        start = end
    return out


def stdlib_split(val_fraction: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Training and validation tokens of the "stdlib" corpus, and its number of files.

    Every file is cut into blocks of about 4 KB at line ends, and each block goes to
    validation by a hash of its file's path and its index: the held-out text is a sample of
    the whole library. (Holding out whole files instead left validation 3 % easier than
    training: a property of the few dozen files the hash happened to pick.)"""
    files = stdlib_files()
    if not files:
        raise ConfigError(f"no Python source found under {sysconfig.get_paths()['stdlib']!r}; this Python install "
                          "has no standard library sources: use ", Fix("data.source", "builtin"), " or a text file")
    parts: dict[bool, list[bytes]] = {False: [], True: []}
    for name, raw in files:
        for i, block in enumerate(blocks(raw)):
            parts[held_out(f"{name}:{i}", val_fraction)].append(block)
    join = lambda chunks: np.frombuffer(b"".join(chunks), dtype=np.uint8).copy()
    return join(parts[False]), join(parts[True]), len(files)


def _split(tokens: np.ndarray, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    n_val = max(1, int(round(len(tokens) * val_fraction)))
    return tokens[:-n_val], tokens[-n_val:]


def unigram_loss(train: np.ndarray, val: np.ndarray, vocab: int = VOCAB) -> float:
    """Cross-entropy (nats) on `val` of the add-one smoothed byte frequencies of `train`."""
    counts = np.bincount(train, minlength=vocab).astype(np.float64) + 1.0
    logp = np.log(counts / counts.sum())
    return float(-logp[val].mean())


def _make(name: str, tokens: np.ndarray, cfg: DataConfig, description: str, entropy_rate=None) -> Dataset:
    return _dataset(name, *_split(tokens, cfg.val_fraction), description, entropy_rate)


def _dataset(name: str, train: np.ndarray, val: np.ndarray, description: str, entropy_rate=None) -> Dataset:
    digest = hashlib.sha256(train.tobytes())
    digest.update(val.tobytes())
    return Dataset(name=name, train=train, val=val, vocab=VOCAB, unigram_loss=unigram_loss(train, val),
                   entropy_rate=entropy_rate, fingerprint=digest.hexdigest()[:16], description=description)


def _encode_text(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).copy()


# --- character tokens ------------------------------------------------------------------------

def _code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def char_table(text: str, vocab: int) -> str:
    """The `vocab - 1` most frequent characters of `text`, most frequent first, ties broken by code
    point (fewer when the text has fewer distinct characters): token i + 1 is the i-th."""
    counts = np.bincount(_code_points(text))
    seen = np.flatnonzero(counts)
    order = seen[np.lexsort((seen, -counts[seen]))][: vocab - 1]
    return "".join(map(chr, order))


def _lookup(chars: str) -> np.ndarray:
    """Code point -> token: 1 + the character's place in the table, 0 for any other."""
    cps = _code_points(chars)
    lut = np.zeros(int(cps.max()) + 1 if len(cps) else 1, np.int32)
    lut[cps] = np.arange(1, len(cps) + 1)
    return lut


def _char_tokens(cps: np.ndarray, lut: np.ndarray) -> np.ndarray:
    inside = cps < len(lut)
    tokens = np.where(inside, lut[np.where(inside, cps, 0)], 0)
    return tokens.astype(np.uint16 if len(lut) and lut.max() < 1 << 16 else np.int32)


def _char_dataset(name: str, train: str, val: str, vocab: int, description: str) -> Dataset:
    """A dataset of character tokens: the training split's `vocab - 1` most frequent characters."""
    chars = char_table(train, vocab)
    lut = _lookup(chars)
    t, v = _char_tokens(_code_points(train), lut), _char_tokens(_code_points(val), lut)
    digest = hashlib.sha256(t.tobytes())
    digest.update(v.tobytes())
    digest.update(chars.encode("utf-8"))
    bpt = len(val.encode("utf-8")) / max(1, len(v))
    coverage = float(np.mean(v > 0)) if len(v) else 1.0
    words = (f"{description}; character tokens: {len(chars):,} characters and one for the rest "
             f"({coverage:.2%} of the held-out text has its own), {bpt:.2f} bytes per token")
    return Dataset(name=name, train=t, val=v, vocab=vocab, unigram_loss=unigram_loss(t, v, vocab), entropy_rate=None,
                   fingerprint=digest.hexdigest()[:16], description=words, tokenizer=Tokenizer(chars),
                   bytes_per_token=bpt, coverage=coverage)


def _from_text(name: str, text: str, cfg: DataConfig, vocab: int, description: str) -> Dataset:
    """A text as the config's tokens; validation is its tail (the same share of bytes, or of characters)."""
    if cfg.tokenizer == "chars":
        n_val = max(1, int(round(len(text) * cfg.val_fraction)))
        return _char_dataset(name, text[:-n_val], text[-n_val:], vocab, description)
    return _make(name, _encode_text(text), cfg, description)


# --- synthetic Markov sources --------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class MarkovChain:
    order: int
    symbols: int
    probs: np.ndarray             # (symbols**order, symbols): next-symbol distribution per context
    stationary: np.ndarray        # (symbols**order,): stationary distribution over contexts

    @property
    def entropy_rate(self) -> float:
        """H = sum_c pi(c) H(p(.|c)) in nats per symbol: the loss of the perfect predictor."""
        p = self.probs
        h = -np.sum(np.where(p > 0, p * np.log(p), 0.0), axis=1)
        return float(self.stationary @ h)


def markov_chain(order: int, symbols: int, zipf: float, seed: int) -> MarkovChain:
    """A random order-k chain whose next-symbol probabilities follow a Zipf law 1/rank**zipf,
    with a random ranking per context; all probabilities are positive, so the chain is
    irreducible and aperiodic and its stationary distribution is unique."""
    rng = np.random.default_rng(seed)
    n_ctx = symbols ** order
    weights = 1.0 / np.arange(1, symbols + 1) ** zipf
    ranks = np.argsort(rng.random((n_ctx, symbols)), axis=1)       # a random permutation per context
    probs = weights[ranks]
    probs /= probs.sum(axis=1, keepdims=True)
    nxt = (np.arange(n_ctx)[:, None] * symbols + np.arange(symbols)[None, :]) % n_ctx
    pi = np.full(n_ctx, 1.0 / n_ctx)
    for _ in range(10_000):
        new = np.bincount(nxt.ravel(), weights=(pi[:, None] * probs).ravel(), minlength=n_ctx)
        if np.abs(new - pi).sum() < 1e-13:
            pi = new
            break
        pi = new
    return MarkovChain(order=order, symbols=symbols, probs=probs, stationary=pi / pi.sum())


def sample_markov(chain: MarkovChain, length: int, seed: int) -> np.ndarray:
    """`length` symbols from the chain, started from its stationary distribution."""
    rng = np.random.default_rng(seed + 1)
    n_ctx = chain.symbols ** chain.order
    start = int(rng.choice(n_ctx, p=chain.stationary))
    cdf = jnp.asarray(np.cumsum(chain.probs, axis=1), dtype=jnp.float32)
    u = jnp.asarray(rng.random(length), dtype=jnp.float32)

    def step(ctx, ui):
        x = jnp.minimum(jnp.searchsorted(cdf[ctx], ui, side="right"), chain.symbols - 1)
        return (ctx * chain.symbols + x) % n_ctx, x

    _, xs = jax.jit(lambda c, u: jax.lax.scan(step, c, u))(jnp.int32(start), u)
    return np.asarray(xs, dtype=np.int64)


# --- loading ---------------------------------------------------------------------------------

def _read_text_file(path: str) -> str:
    if not os.path.exists(path):
        raise ConfigError(Say(N_("data file {path} does not exist; pass an existing UTF-8 text file as the {setting}"),
                              path=repr(path), setting=Name("data.source")))
    if os.path.isdir(path):
        raise ConfigError(Say(N_("data file {path} is a folder; pass a UTF-8 text file as the {setting}"),
                              path=repr(path), setting=Name("data.source")))
    size = os.path.getsize(path)
    if size == 0:
        raise ConfigError(Say(N_("data file {path} is empty; pass a UTF-8 text file of at least {n} bytes"),
                              path=repr(path), n=MIN_FILE_BYTES))
    if size > MAX_FILE_BYTES:
        raise ConfigError(Say(N_("data file {path} is {size} GiB, over the {limit} GiB limit; use a smaller excerpt"),
                              path=repr(path), size=f"{size / 2**30:.1f}", limit=MAX_FILE_BYTES >> 30))
    with open(path, "rb") as f:
        raw = f.read()
    if b"\x00" in raw[:1 << 20]:
        raise ConfigError(Say(N_("data file {path} looks binary (it holds NUL bytes); pass a UTF-8 text file"),
                              path=repr(path)))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(Say(N_("data file {path} is not valid UTF-8 (byte {at}: {byte}); re-save it as UTF-8 text"),
                              path=repr(path), at=e.start, byte=repr(raw[e.start:e.start + 1]))) from None
    if len(raw) < MIN_FILE_BYTES:
        raise ConfigError(Say(N_("data file {path} has {n} bytes, too small to train and validate on; use at least "
                                 "{least} bytes of text"), path=repr(path), n=len(raw), least=MIN_FILE_BYTES))
    return text


def _load_hf(cfg: DataConfig) -> str:
    try:
        import datasets
    except ImportError:
        raise ConfigError("loading a Hugging Face dataset needs the `datasets` package: pip install datasets") from None
    try:
        if os.path.exists(cfg.path):
            ds = datasets.load_dataset("text", data_files=cfg.path, split=cfg.hf_split)
        else:
            ds = datasets.load_dataset(cfg.path, split=cfg.hf_split)
    except Exception as e:  # network, missing dataset, bad split: all the user's to fix
        raise ConfigError(f"could not load Hugging Face dataset {cfg.path!r} (split {cfg.hf_split!r}): {e}") from None
    if cfg.hf_field not in ds.column_names:
        raise ConfigError(f"dataset {cfg.path!r} has no field {cfg.hf_field!r}; fields: {', '.join(ds.column_names)}")
    return "\n\n".join(t for t in ds[cfg.hf_field] if t)


@functools.lru_cache(maxsize=8)
def _load_cached(cfg: DataConfig, stamp, vocab: int) -> Dataset:
    if cfg.source == "stdlib":
        train, val, n_files = stdlib_split(cfg.val_fraction)
        version = ".".join(map(str, sys.version_info[:3]))
        words = (f"Python {version} standard library source, {n_files} files, "
                 f"{(len(train) + len(val)) / 1e6:.1f} MB; 4 KB blocks held out by a hash of their file and index")
        if cfg.tokenizer == "chars":      # the blocks end at line ends, so each split is whole characters
            return _char_dataset("stdlib", train.tobytes().decode("utf-8"), val.tobytes().decode("utf-8"), vocab, words)
        return _dataset("stdlib", train, val, words)
    if cfg.source == "builtin":
        text = builtin_text()
        return _from_text("builtin", text, cfg, vocab,
                          f"Python reference documentation (pydoc_data.topics), {len(text):,} characters")
    if cfg.source == "markov":
        chain = markov_chain(cfg.markov_order, cfg.markov_symbols, cfg.markov_zipf, cfg.markov_seed)
        symbols = sample_markov(chain, cfg.markov_tokens, cfg.markov_seed)
        tokens = ((symbols + 97) % VOCAB).astype(np.uint8)      # symbols as the bytes 'a', 'b', ...
        name = f"markov(order={cfg.markov_order}, symbols={cfg.markov_symbols}, zipf={cfg.markov_zipf:g})"
        return _make(name, tokens, cfg, f"synthetic {name}, entropy rate {chain.entropy_rate:.4f} nats/token",
                     entropy_rate=chain.entropy_rate)
    if cfg.source == "file":
        text = _read_text_file(cfg.path)
        return _from_text(os.path.basename(cfg.path), text, cfg, vocab, f"{cfg.path}, {len(text):,} characters")
    text = _load_hf(cfg)
    if len(text.encode("utf-8")) < MIN_FILE_BYTES:
        raise ConfigError(f"dataset {cfg.path!r} holds too little text ({len(text)} characters)")
    return _from_text(cfg.path, text, cfg, vocab, f"Hugging Face {cfg.path} [{cfg.hf_split}]")


def load_dataset(cfg: DataConfig, vocab: int = VOCAB) -> Dataset:
    """The dataset a config names, as tokens of a vocabulary of `vocab` (the model's: with character
    tokens, the table's size plus one); cached, and reloaded when a data file changes on disk.
    `load_dataset(run_config.data, run_config.model.vocab)` is the data a run trains on."""
    stamp = None
    if cfg.source == "file" and os.path.isfile(cfg.path):
        st = os.stat(cfg.path)
        stamp = (st.st_size, st.st_mtime_ns)
    return _load_cached(cfg, stamp, vocab if cfg.tokenizer == "chars" else VOCAB)


def tokenizer_of(config) -> Tokenizer:
    """How a `RunConfig`'s text becomes tokens: bytes, or the character table of its training text
    (which loads its data)."""
    return BYTES if config.data.tokenizer == "bytes" else load_dataset(config.data, config.model.vocab).tokenizer


# --- batches (pure functions, used inside the compiled training step) -------------------------

def sample_batch(tokens: jax.Array, key: jax.Array, batch: int, context: int) -> tuple[jax.Array, jax.Array]:
    """`batch` random windows of `context + 1` tokens: inputs and next-token targets."""
    starts = jr.randint(key, (batch,), 0, tokens.shape[0] - context)
    idx = starts[:, None] + jnp.arange(context + 1)[None, :]
    windows = tokens[idx].astype(jnp.int32)
    return windows[:, :-1], windows[:, 1:]


def eval_windows(val: np.ndarray, eval_tokens: int, context: int) -> np.ndarray:
    """Non-overlapping validation windows (n, context + 1), spread evenly over the whole of
    `val` (consecutive when it holds no more than `eval_tokens`): a sample of the held-out text
    rather than its first few files."""
    n = max(1, min(eval_tokens // context, (len(val) - 1) // context))
    starts = (np.arange(n) * ((len(val) - 1 - context) // n if n > 1 else 0)).astype(np.int64)
    starts = np.maximum(starts, np.arange(n) * context)      # never overlapping
    idx = starts[:, None] + np.arange(context + 1)[None, :]
    return val[idx].astype(np.int32)


def epochs(tokens_trained: int, dataset: Dataset) -> float:
    """How many times the training split was seen: D / |train| (data repeats past 1)."""
    return tokens_trained / len(dataset.train)


def bits_per_byte(nats_per_token: float, bytes_per_token: float = 1.0) -> float:
    """Bits per UTF-8 byte of text: nats/token / ln 2 / bytes per token (1 with byte tokens; a
    dataset's `bytes_per_token` with characters), so byte and character models compare."""
    return nats_per_token / math.log(2) / bytes_per_token
