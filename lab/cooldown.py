"""WSD cooldowns: several data sizes from one run.

A warmup-stable-decay run holds its peak learning rate until its final decay. Every shorter WSD
run with the same warmup repeats its steps exactly up to its own decay (the same weights, the
same batches: a batch's key is the seed folded with the step), so one long run per size can be
branched at each shorter run's decay start and cooled down from there (Hägele et al. 2024,
"Scaling Laws and Compute-Optimal Training Beyond Fixed Training Durations"; marin's WSD-S): the
shorter runs cost only their decays.

A cooldown is a config of its own (`RunConfig.cooldown_of`: the tokens of the run it branches
from; its warmup is that run's), so it is stored, fitted and reproduced as any run: trained alone
it gives what the branch gives. `train_cooldowns` trains a long run and its cooldowns together,
skipping what the store already holds.
"""

from collections.abc import Sequence

from lab.config import ConfigError, RunConfig
from lab.i18n import N_
from lab.schema import Fix, Say


def cooldown_configs(config: RunConfig, tokens: Sequence[int]) -> list[RunConfig]:
    """The cooldowns of the WSD run `config` at each of `tokens` (all shorter than it): the same
    config with those tokens and `cooldown_of` its own. Refused (ConfigError) when `config` is not
    a WSD run, or a length is not shorter, or its decay would start inside the warmup."""
    if config.optim.schedule != "wsd":
        raise ConfigError(Say(N_("cooldowns branch from a WSD run; got schedule {schedule}: use {fix}"),
                              schedule=repr(config.optim.schedule), fix=Fix("optim.schedule", "wsd")))
    if config.cooldown_of or config.tokens_per_param:
        raise ConfigError("the run to branch from must be a plain WSD run of a fixed number of tokens (no "
                          "cooldown_of, no tokens_per_param); give its tokens")
    out = []
    for t in sorted(set(int(t) for t in tokens)):
        if t >= config.tokens:
            raise ConfigError(Say(N_("a cooldown must be shorter than the run it branches from ({of} tokens), got "
                                     "{tokens}"), of=f"{config.tokens:,}", tokens=f"{t:,}"))
        out.append(config.replace(tokens=t, cooldown_of=config.tokens))
    return out


def train_cooldowns(config: RunConfig, tokens: Sequence[int], *, seeds: Sequence[int] | None = None, store=None,
                    trackers=(), cancel=None) -> dict[int, list]:
    """Train the WSD run `config` once, branching a cooldown at each of `tokens` (see the module).

    Args:
        config: the long WSD run; its `seed` is replaced by each of `seeds` (default: its own).
        tokens: the shorter lengths, each trained as `cooldown_configs` describes.
        store: a `RunStore` (or None: nothing stored): runs it holds finished are taken from it,
            not trained; when the long run is among them, its cooldowns train alone (the same
            result, without the saving).
        trackers: extra trackers for every run.

    Returns:
        {tokens: [RunResult per seed]} for the long run and every cooldown.
    """
    from lab.training import train_seeds
    seeds = list(seeds) if seeds is not None else [config.seed]
    shorts = cooldown_configs(config, tokens)
    groups = [config, *shorts]
    every = [c.replace(seed=s) for c in groups for s in seeds]
    results: dict[int, list] = {}
    branches = {}

    def run(c: RunConfig, extra_trackers, **kwargs):
        return train_seeds(c, seeds, trackers=[*extra_trackers, *trackers], cancel=cancel, **kwargs)

    if store is None:
        results[config.tokens] = run(config, (), branch_at=[s.decay_start for s in shorts],
                                     on_branch=lambda b: branches.__setitem__(b.step, b))
        for s in shorts:
            results[s.tokens] = run(s, (), resume=branches.get(s.decay_start))
        return results

    from lab.store import StoreTracker
    with store.claims(every) as held:
        if held.busy:
            raise ConfigError(f"{len(held.busy)} of these runs are being trained by another process; wait for it "
                              "(`scaling-lab runs`)")
        claimed = {c.run_id for c in held.claimed}
        todo = [c for c in groups if any(c.replace(seed=s).run_id in claimed for s in seeds)]

        def stored(c):
            return [held.finished[c.replace(seed=s).run_id].result for s in seeds]

        for c in groups:
            if c not in todo:
                results[c.tokens] = stored(c)
                continue
            if any(c.replace(seed=s).run_id not in claimed for s in seeds):
                raise ConfigError("some seeds of one length are stored and some not; train them with "
                                  "`scaling-lab train` first")
            kwargs = {}
            if c is config:
                kwargs = dict(branch_at=[s.decay_start for s in shorts if s in todo],
                              on_branch=lambda b: branches.__setitem__(b.step, b))
            elif c.decay_start in branches:
                kwargs = dict(resume=branches[c.decay_start])
            results[c.tokens] = run(c, [StoreTracker(store)], **kwargs)
            held.claimed = [k for k in held.claimed if k.tokens != c.tokens]      # committed by the tracker
    return results


def run_cooldowns(plan, store, *, trackers=(), cancel=None) -> list:
    """Train a plan of long WSD runs and their cooldowns (`lab.plans.cooldown_plan`), each long run
    once with its cooldowns branched from it (`train_cooldowns`), into `store`; what the store holds
    finished is kept, so a plan resumes, and seeds added later train beside the stored ones (the
    seeds whose runs the store holds alike train together). Returns the RunResults in the plan's order."""
    from lab.store import FINISHED
    groups: dict[str, tuple[RunConfig, set, list]] = {}
    for c in plan.configs:
        long = c.replace(tokens=c.cooldown_of or c.tokens, cooldown_of=0, seed=plan.configs[0].seed)
        _cfg, lengths, seeds = groups.setdefault(long.run_id, (long, set(), []))
        if c.cooldown_of:
            lengths.add(c.tokens)
        if c.seed not in seeds:
            seeds.append(c.seed)
    by_id = {}
    for long, lengths, seeds in groups.values():
        runs = [long, *cooldown_configs(long, sorted(lengths))]
        alike: dict[tuple, list] = {}                 # seeds by which of their runs the store holds finished
        for s in seeds:
            held = tuple((r := store.record(c.replace(seed=s).run_id)) is not None and r.status in FINISHED
                         for c in runs)
            alike.setdefault(held, []).append(s)
        for group in alike.values():
            for got in train_cooldowns(long, sorted(lengths), seeds=group, store=store, trackers=trackers,
                                       cancel=cancel).values():
                by_id.update((r.run_id, r) for r in got)
    return [by_id[c.run_id] for c in plan.configs if c.run_id in by_id]
