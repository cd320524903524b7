"""Stop at a target (issue 13): `target_loss` and `patience` end a run early, recorded as done with its step and why."""

import json

from conftest import tiny
from lab.cli import main
from lab.config import RunConfig
from lab.store import RunStore, result_from_dict
from lab.training import train, train_seeds


def test_a_target_loss_stops_the_run_at_a_recorded_step():
    cfg = tiny(target_loss=100.0, evals=6)          # any loss beats 100 nats: the first scheduled evaluation stops it
    r = train(cfg)
    assert r.status == "done"
    assert r.stopped == "target"
    assert 0 < r.steps < cfg.steps
    assert r.tokens == r.steps * cfg.tokens_per_step
    assert r.eval_loss <= cfg.target_loss
    assert r.curve[-1]["step"] == r.steps
    assert "eval/loss" in r.curve[-1]
    plain = train(tiny(evals=6))                     # off (0): all the planned steps, nothing recorded
    assert plain.stopped is None
    assert plain.steps == cfg.steps


def test_patience_stops_a_run_that_does_not_learn():
    cfg = tiny(optim__lr=1e-12, patience=2, evals=8)
    r = train(cfg)
    assert r.status == "done"
    assert r.stopped == "patience"
    assert r.steps < cfg.steps
    evals = [p["eval/loss"] for p in r.curve if "eval/loss" in p]
    assert len(evals) == 3                           # the first sets the best; two more without improvement


def test_each_seed_stops_on_its_own_and_old_results_read_back(tmp_path):
    cfg = tiny(target_loss=100.0, evals=6)
    results = train_seeds(cfg, [0, 1])
    assert [r.stopped for r in results] == ["target", "target"]
    assert all(r.steps < cfg.steps for r in results)
    store = RunStore(tmp_path / "store")
    store.commit(results[0], save_weights=False)
    assert store.get(results[0].run_id).stopped == "target"
    assert store.record(results[0].run_id).to_dict()["stopped"] == "target"
    old = results[0].to_dict()
    del old["stopped"]                               # a result stored before the setting existed
    assert result_from_dict(old, results[0].config).stopped is None


def test_one_seed_stops_while_the_other_trains_on(monkeypatch):
    from lab import training
    update = training._Stopper.update

    def first_seed_only(self, eval_loss, alive, step):    # as if only seed 0 had met its target
        now = update(self, eval_loss, alive, step)
        now[1:] = False
        self.why[1:] = self.step[1:] = [None] * (len(self.why) - 1)
        return now

    monkeypatch.setattr(training._Stopper, "update", first_seed_only)
    cfg = tiny(target_loss=100.0, evals=6)
    a, b = train_seeds(cfg, [0, 1])
    assert (a.status, a.stopped, b.status, b.stopped) == ("done", "target", "done", None)
    assert a.steps < b.steps == cfg.steps
    assert a.curve[-1]["step"] == a.steps
    assert b.curve[-1]["step"] == cfg.steps


def test_the_stop_rules_per_seed():
    import numpy as np

    from lab.training import _Stopper
    s = _Stopper(tiny(target_loss=2.0, patience=2), 3)
    alive = np.ones(3, bool)
    assert list(s.update(np.array([2.5, 1.9, 3.0]), alive, 10)) == [False, True, False]
    assert list(s.update(np.array([2.2, 9.9, 3.0]), alive, 20)) == [False, False, False]   # seed 2: 1 without gain
    assert list(s.update(np.array([2.1, 9.9, 3.0]), alive, 30)) == [False, False, True]
    assert s.why == [None, "target", "patience"]
    assert s.step == [None, 10, 30]


def test_the_settings_keep_old_run_ids_and_change_new_ones():
    assert tiny(target_loss=0.0, patience=0).run_id == tiny().run_id
    assert tiny(target_loss=3.0).run_id != tiny().run_id
    assert tiny(patience=3).run_id != tiny().run_id
    assert tiny(patience=3).shape_id == tiny().shape_id            # the same compiled program
    assert RunConfig.from_dict(json.loads(tiny(target_loss=3.0).to_json())).target_loss == 3.0


def test_train_flags_stop_early_and_json_says_why(capsys):
    args = ["train", "--width", "32", "--depth", "1", "--heads", "2", "--context", "32", "--batch", "8", "--data",
            "builtin", "--tokens", str(8 * 32 * 24), "--eval-tokens", "2048", "--evals", "6", "--lr", "1e-2",
            "--target-loss", "100", "--json", "--no-store", "--quiet"]
    assert main(args) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["status"] == "done"
    assert row["stopped"] == "target"
    assert row["steps"] < 24
    assert main(["train", "--no-store", "--patience", "-1"]) == 2
    assert "patience must be between 0 and 10000, got -1; try --patience 0" in capsys.readouterr().err


def test_the_app_form_has_both_settings(monkeypatch):
    monkeypatch.setenv("SCALING_LAB_QUICK", "1")
    monkeypatch.delenv("QUERY_STRING", raising=False)
    from widgets import Lab
    app = Lab(query="?target_loss=2.5&patience=3")
    assert app.form.inputs["target_loss"].value == 2.5
    assert app.form.inputs["patience"].value == 3
    assert "Target loss" == app.form.inputs["target_loss"].description
    assert app.form.inputs["patience"].tooltip
    cfg = app.controller.form.build_config()
    assert (cfg.target_loss, cfg.patience) == (2.5, 3)
    assert "patience=3" in app.state.share
