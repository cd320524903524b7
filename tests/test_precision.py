"""bf16 matmuls (the default on GPU and TPU) learn what fp32 learns: on a small model the two
precisions' loss curves agree within the spread of seeds (issue 15: checked on CPU, where
XLA also runs bf16, so the check is ready before an accelerator is)."""

import numpy as np

from conftest import tiny
from lab import train_seeds


def test_bf16_loss_curve_agrees_with_fp32_within_seed_noise():
    cfg = tiny(tokens=8 * 32 * 64, evals=4)
    seeds = [0, 1, 2]
    fp32 = train_seeds(cfg.replace(precision="fp32"), seeds)
    bf16 = train_seeds(cfg.replace(precision="bf16"), seeds)
    assert all(r.status == "done" for r in fp32 + bf16)
    a, b = np.array([r.eval_loss for r in fp32]), np.array([r.eval_loss for r in bf16])
    spread = max(np.ptp(a), 0.01)
    assert abs(a.mean() - b.mean()) < 2 * spread, (a, b)
    # the curves agree along the way too, not only at the end
    ca = np.array([[e["train/loss"] for e in r.curve] for r in fp32]).mean(0)
    cb = np.array([[e["train/loss"] for e in r.curve] for r in bf16]).mean(0)
    assert np.max(np.abs(ca - cb) / ca) < 0.05, (ca, cb)
