"""The reference a user would otherwise pick: a plain PyTorch eager GPT of identical shape.

Same architecture as `lab.models.GPT` (pre-norm, biases everywhere, causal attention through
`scaled_dot_product_attention`, 4x tanh-GELU MLP, learned positions, untied head), the same
parameter count (checked by the benchmark), AdamW with gradient clipping, random windows
of the same byte corpus as batches. PyTorch is a benchmark dependency only.
"""

import time

import numpy as np


def build(width: int, depth: int, heads: int, context: int, vocab: int = 256):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
            self.qkv, self.out = nn.Linear(width, 3 * width), nn.Linear(width, width)
            self.up, self.down = nn.Linear(width, 4 * width), nn.Linear(4 * width, width)

        def forward(self, x):
            b, t, d = x.shape
            q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = x + self.out(a.transpose(1, 2).reshape(b, t, d))
            return x + self.down(F.gelu(self.up(self.ln2(x)), approximate="tanh"))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok, self.pos = nn.Embedding(vocab, width), nn.Embedding(context, width)
            self.blocks = nn.ModuleList(Block() for _ in range(depth))
            self.ln_f = nn.LayerNorm(width)
            self.head = nn.Linear(width, vocab, bias=False)

        def forward(self, idx):
            x = self.tok(idx) + self.pos(torch.arange(idx.shape[1]))
            for blk in self.blocks:
                x = blk(x)
            return self.head(self.ln_f(x))

    return GPT()


def throughput(width, depth, heads, context, batch, tokens: np.ndarray, *, steps: int, threads: int | None = None,
               seed: int = 0) -> dict:
    """Steady-state training tokens/s of the eager model (the first step, warm-up, excluded)."""
    import torch
    import torch.nn.functional as F
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    model = build(width, depth, heads, context)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0.1)
    data = torch.from_numpy(tokens.astype(np.int64))
    gen = torch.Generator().manual_seed(seed)

    def step():
        starts = torch.randint(0, len(data) - context - 1, (batch,), generator=gen)
        win = data[starts[:, None] + torch.arange(context + 1)[None, :]]
        logits = model(win[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), win[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    t0 = time.perf_counter()
    step()
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    dt = time.perf_counter() - t0
    n_params = sum(p.numel() for p in model.parameters())
    return {"tokens_per_s": steps * batch * context / dt, "first_step_s": first, "params": n_params,
            "threads": torch.get_num_threads()}
