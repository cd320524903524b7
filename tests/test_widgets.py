"""The app, headless: through the controller (a click swallows exceptions), plus one click per button.

Pages never train: they ask the training service's queue and follow the store. Here the service
runs in this process (`SCALING_LAB_SERVICE=thread`, one worker thread), so a page's Train is
trained by the same code a class server's workers run. Every run here has one shape (quick
mode: width 16, depth 1, context 32, batch 8), so the module compiles one training program;
runs differ in tokens and seeds, which are data.
"""

import asyncio
import dataclasses
import datetime
import re

import numpy as np
import pytest

from lab.store import RunStore


pytestmark = pytest.mark.usefixtures("app_env")


@pytest.fixture
def app():
    from widgets import Lab
    return Lab()


def run(coro):
    return asyncio.run(coro)


async def _click_and_wait(button, controller):
    button.click()
    assert controller.task is not None
    return await controller.task


def test_app_builds_with_labelled_controls_readouts_and_one_figure(app):
    st = app.state
    assert st.form["width"] == 16
    assert not st.config_error
    assert not st.error
    for key in ("params", "flops", "tokens_per_param", "time", "memory"):
        assert st.readouts[key]
    for w in app.form.inputs.values():
        assert w.description
        assert w.tooltip   # a label and a tooltip a student can read
    assert "parameters" in app.form.readouts.value
    assert not app.form.train.disabled
    assert app.form.stop.disabled
    figures = [w for w in _walk(app) if type(w).__name__ in ("FigureWidget", "LivePlot")]
    assert figures == [app.plots.view]                # one figure for the whole app
    assert app.plots.view.figure_data
    assert app.plots.view.figure_layout["xaxis"]["title"]["text"]   # as JSON
    assert st.share.startswith("?")
    assert "width=16" in st.share


def _walk(w):
    yield w
    for child in getattr(w, "children", ()):
        yield from _walk(child)


def test_readouts_follow_the_width(app):
    before = dict(app.state.readouts)
    app.form.inputs["width"].value = 64
    assert app.state.form["width"] == 64
    assert app.state.readouts["params"] != before["params"]
    assert app.state.readouts["flops"] != before["flops"]
    assert "width=64" in app.state.share
    assert "width=64" in app.share.text.value


def test_an_impossible_config_disables_train_and_says_why(app):
    app.form.inputs["width"].value = 48
    app.form.inputs["heads"].value = 5
    assert "divisible by heads" in app.state.config_error
    assert "--" not in app.state.config_error
    assert app.state.config_error.endswith("try Heads = 1")       # the fix names the form's control
    assert app.form.train.disabled
    assert "divisible by heads" in app.form.problem.value
    assert app.controller.train.start() is None
    assert "divisible" in app.state.error
    assert not app.state.job
    app.form.inputs["heads"].value = 4
    assert not app.state.config_error
    assert not app.form.train.disabled
    app.controller.form.set_values(width=2048, depth=48, context=1024, batch=512, seeds=8, tokens=10**9)   # far too big
    assert "memory" in app.state.config_error
    assert app.form.train.disabled


def test_training_draws_live_curves_stores_the_run_and_survives_a_restart(app):
    app.controller.form.set_values(tokens=8 * 32 * 64 * 3)          # 192 steps: chunks of 16 (MAX_CHUNK)
    out = run(_click_and_wait(app.form.train, app.controller))  # the Train button's one click
    assert [r.status for r in out] == ["done"]
    assert not app.state.error
    assert not app.state.job
    assert app.plots.points("curves") >= 4
    assert app.plots.points("runs") == 1
    row = app.state.runs[0]
    assert row["status"] == "done"
    assert len(row["curve"]) >= 3
    assert row["run_id"] in app.runs.table.value[:10_000] + \
        "".join(o[1] for o in app.runs.select.options)
    assert app.state.progress["fraction"] == 1.0
    assert "done" in app.state.notice
    assert [r.run_id for r in RunStore(None).records()] == [row["run_id"]]
    from widgets import Lab                                     # a new kernel: the runs come back from the store
    again = Lab()
    assert [r["run_id"] for r in again.state.runs] == [row["run_id"]]
    assert again.plots.points("curves") >= 4
    assert again.controller.runs.sample(row["run_id"], "The ", 16, 0.0) is None    # no event loop: sampled at once
    text = again.state.sample_text
    assert not again.state.error
    from lab.sample import sample
    assert text
    assert text == sample(None, row["run_id"], "The ", length=16, temperature=0.0)   # greedy: the model's own
    assert again.sample.run.value == row["run_id"]             # the newest run is chosen
    again.sample.go.click()
    assert again.state.sample_text
    assert "<pre" in again.sample.out.value


def test_stop_ends_the_run_within_a_chunk_and_keeps_it_cancelled(app):
    c = app.controller
    c.form.set_values(tokens=8 * 32 * 64 * 40)

    async def go():
        task = c.train.start()
        assert app.form.stop.disabled is False
        assert app.form.train.disabled
        while not any(v["points"] for v in app.state.live.values()):
            await asyncio.sleep(0.05)
            assert not task.done(), app.state.error
        app.form.stop.click()                                   # the Stop button's one click
        return await task

    (result,) = run(go())
    assert result.status == "cancelled"
    assert result.steps < result.config.steps
    assert app.state.runs[0]["status"] == "cancelled"
    assert "cancelled" in app.state.progress["text"]
    assert not app.state.job
    assert app.form.stop.disabled
    assert not app.form.train.disabled


def test_a_link_sets_the_controls_and_bad_values_are_reported():
    from widgets import Lab
    app = Lab(query="?width=32&depth=2&optimizer=adam&seed=3&tokens=20k&lr=1e-3")
    f = app.form.inputs
    assert (f["width"].value, f["depth"].value, f["optimizer"].value, f["seed"].value) == (32, 2, "adam", 3)
    assert app.state.form["tokens"] == 20_000
    assert app.state.form["lr"] == 1e-3
    assert not app.state.error
    assert "width=32" in app.state.share
    assert "optimizer=adam" in app.state.share
    app.controller.form.apply_query("?width=abc&depth=999&optimizer=sgdd&colour=red&seed=7")
    err = app.state.error
    assert "width" in err
    assert "depth" in err
    assert "optimizer" in err
    assert "colour" in err
    assert app.state.form["seed"] == 7
    assert f["seed"].value == 7
    assert f["width"].value == 32   # good ones still apply
    assert "Problem" in app.messages.error.value
    assert app.messages.error_box.layout.display == ""


@pytest.mark.parametrize("query, name, value", [("?lr=2", "lr", 2.0), ("?width=4096", "width", 4096),
                                               ("?tokens=5e9", "tokens", 5_000_000_000)])
def test_a_link_takes_what_the_config_accepts_beyond_the_sliders(query, name, value):
    """Links are checked against the config's bounds, as flags are (`--lr 2`): the control widens to show it."""
    from widgets import Lab, fields
    f = fields.BY_NAME[name]
    assert not f.low <= value <= f.high                          # beyond the slider's suggested range
    app = Lab(query=query)
    assert not app.state.error
    assert app.state.form[name] == pytest.approx(value)             # a log slider holds 10**x: to its last bit
    assert app.form.inputs[name].value == pytest.approx(value)
    assert app.controller.form.build_config().value(f.path) == value


def test_a_link_refuses_what_the_config_refuses():
    from widgets import fields
    link = fields.parse_link("?lr=200&lr2=1&depth=0&seeds=0")
    assert "lr='200' must be above 0 and at most 100" in " ".join(link.errors)
    assert "depth='0' must be at least 1 and at most 256" in " ".join(link.errors)
    assert "seeds='0' must be at least 1" in " ".join(link.errors)
    assert "lr" not in link.values


def test_a_sweep_of_three_runs_then_a_fit_shows_the_law(app):
    c = app.controller
    assert app.sweep.mode.value == "ladder"                      # the default plan is a scaling ladder
    app.sweep.mode.value = "grid"
    assert app.sweep.grid_box.layout.display == ""
    assert app.sweep.ladder_box.layout.display == "none"
    app.sweep.tokens.value = "2048,4096,8192"
    app.sweep.widths.value = "16"
    assert app.state.sweep_plan["runs"] == 3
    assert "3 runs" in app.sweep.plan.value
    report = run(_click_and_wait(app.sweep.run, c))              # the Run sweep button's one click
    assert report.ok
    assert len(app.state.runs) == 3
    assert "sweep finished" in app.state.notice
    # a diverged run is left out of the fit, and the app says so
    store = RunStore(None)
    done = store.get(app.state.runs[0]["run_id"])
    cfg = done.config.replace(seed=99)
    store.commit(dataclasses.replace(done, run_id=cfg.run_id, config=cfg, status="diverged", eval_loss=9.0,
                                     diverged_step=3), save_weights=False)
    c.runs.refresh()
    app.scaling.variable.value = "D"
    app.scaling.fit.click()                                     # the Fit button's one click
    fit = app.state.fit
    assert fit["equation"].startswith("L(D) = ")
    assert fit["equation"] in app.scaling.equation.value
    assert any("1 diverged" in n for n in fit["notes"])
    assert "1 diverged" in app.scaling.equation.value
    assert app.plots.points("fit") > 10
    assert app.plots.points("runs") == 3
    assert app.plots.points("left_out") == 1
    app.scaling.width.value, app.scaling.depth.value = 16, 1
    app.controller.form.set_values(tokens=16_384)
    app.scaling.predict.click()                                 # extrapolate to 16k tokens
    assert app.state.prediction["loss"] > 0
    assert "predicted loss" in app.scaling.prediction.value
    assert app.plots.points("predicted") == 1
    run(_click_and_wait(app.scaling.check, c))                  # Train it: then predicted vs measured
    assert app.state.prediction["actual"] > 0
    assert "measured" in app.state.prediction["text"]
    app.scaling.budget.value = "1e12"
    app.scaling.calc.click()                                    # no Chinchilla fit and x is D: says what it needs
    assert "Chinchilla" in app.state.error
    assert not app.state.budget_text


def test_errors_land_in_the_error_area(app, tmp_path):
    c = app.controller
    app.runs.delete.click()
    assert "select runs" in app.state.error
    assert "select runs" in app.messages.error.value
    app.messages.dismiss.click()
    assert not app.state.error
    assert app.messages.error_box.layout.display == "none"
    app.sample.go.click()
    assert "choose a run" in app.state.error
    app.scaling.fit.click()
    assert "3 or more distinct" in app.state.error
    app.scaling.predict.click()
    assert "fit a law first" in app.state.error
    app.scaling.check.click()
    assert "make a prediction first" in app.state.error
    app.form.train.click()                                       # outside an event loop: said, not raised
    assert "event loop" in app.state.error
    c.form.upload("big.txt", b"x" * (21 << 20))
    assert "over the" in app.state.error
    c.form.upload("image.txt", b"\xff\xfe\x00binary")
    assert "not UTF-8" in app.state.error
    c.report(RuntimeError("boom"))
    assert app.state.error.startswith("RuntimeError: boom")
    c.runs.set_view(x_axis="furlongs")
    assert "x axis" in app.state.error

    async def failing():                                         # an engine error inside the job
        c.form.upload("notes.txt", b"tiny")                          # too small to train on: lab says so
        assert app.state.form["data"] == "file"
        return await c.train.run()

    assert run(failing()) == []                                  # the run failed in the service, and says why
    assert "training failed" in app.state.error
    assert "bytes" in app.state.error
    assert not c.state.job
    assert [r["status"] for r in app.state.runs] == ["failed"]


def test_runs_table_select_compare_export_delete_and_toggles(app):
    c = app.controller
    c.form.set_values(tokens=2048)
    run(c.train.run())
    c.form.set_values(seed=1)
    run(c.train.run())
    ids = [r["run_id"] for r in app.state.runs]
    assert len(ids) == 2
    assert app.runs.table.value.count("<tr>") == 3
    app.runs.select.value = (ids[0],)
    assert app.state.selected == [ids[0]]
    app.runs.compare.value = True
    curve = app.state.runs[0]["curve"]
    assert app.plots.points("curves") == len(curve) + sum("eval/loss" in p for p in curve)   # only the selected run
    app.runs.export.click()
    assert "data:text/csv;base64," in app.runs.download.value
    assert len(list(RunStore(None).path.glob("runs-*.csv"))) == 1
    app.toolbar.x_axis.value = "flops"
    app.toolbar.log_scale.value = False
    assert app.plots.fig.layout.xaxis.type == "linear"
    assert "FLOPs" in app.plots.fig.layout.xaxis.title.text
    app.runs.refresh.click()
    app.runs.delete.click()
    assert [r["run_id"] for r in app.state.runs] == ids[1:]
    assert "deleted 1" in app.state.notice
    app.form.stop.click()                                        # nothing running: nothing happens
    app.sweep.stop.click()
    assert not app.state.error


def test_uploaded_text_becomes_the_dataset(app):
    text = ("A small corpus about scaling laws. " * 200).encode()
    now = datetime.datetime.now(datetime.timezone.utc)
    app.form.upload.value = ({"name": "my notes.txt", "type": "text/plain", "size": len(text),
                              "content": memoryview(text), "last_modified": now},)
    path = app.state.data_path
    assert app.state.form["data"] == "file"
    assert path.endswith(".txt")
    assert "uploads" in path
    assert open(path, "rb").read() == text
    assert app.controller.form.build_config().data.path == path
    assert "data=" not in app.state.share                        # a file cannot travel in a link


def test_voila_hands_the_link_to_the_kernel(monkeypatch):
    from widgets import Lab
    monkeypatch.setenv("QUERY_STRING", "width=24&heads=3&optimizer=lion")
    app = Lab()
    assert (app.state.form["width"], app.state.form["heads"], app.state.form["optimizer"]) == (24, 3, "lion")
    assert "settings from the link" in app.state.notice
    assert not app.state.error


def test_a_preheated_kernel_waits_for_the_page_then_reloads_the_runs(monkeypatch):
    """Voila's preheat runs the notebook before any page asks: the link comes later, and runs
    stored meanwhile (by another page's kernel) must show when the page opens."""
    import threading

    import voila.utils
    from widgets import Lab
    page_asks = threading.Event()
    monkeypatch.setenv("VOILA_PREHEAT", "True")
    monkeypatch.setattr(voila.utils, "get_query_string", lambda: page_asks.wait(30) and "?width=40&heads=4")

    async def go():
        app = Lab()
        assert app.state.form["width"] == 16
        assert app.state.runs == []
        other = Lab(query="")                      # another kernel trains meanwhile
        await other.controller.train.run()
        assert app.state.runs == []
        page_asks.set()
        for _ in range(200):
            await asyncio.sleep(0.05)
            if app.state.form["width"] == 40:
                break
        return app

    app = run(go())
    assert app.form.inputs["width"].value == 40
    assert len(app.state.runs) == 1
    assert app.plots.points("curves") >= 1


def _store_result(store, cfg, loss, status="done", epochs=0.1, budget=None, curve=None):
    """A finished run written straight to the store (no training): the fits only read numbers."""
    from lab.counting import flops_per_token, param_counts
    from lab.trackers import RunResult
    counts, fpt = param_counts(cfg.model), flops_per_token(cfg.model)
    curve = curve or ({"step": cfg.steps, "tokens_seen": cfg.tokens_trained,
                       "flops_seen": float(fpt * cfg.tokens_trained), "train/loss": loss, "eval/loss": loss},)
    store.commit(RunResult(
        run_id=cfg.run_id, config=cfg, status=status, train_loss=loss, eval_loss=loss, eval_bpb=loss / 0.693,
        tokens=cfg.tokens_trained, steps=cfg.steps, flops=float(fpt * cfg.tokens_trained), flops_per_token=fpt,
        params_total=counts.total, params_embedding=counts.embedding, params_non_embedding=counts.non_embedding,
        epochs=epochs, wall_s=1.0, first_step_s=0.5, tokens_per_s=1e5, device="cpu:test", diverged_step=None,
        unigram_loss=5.0, entropy_rate=None, dataset="builtin", curve=curve), save_weights=False, budget=budget)


def test_chinchilla_fit_frontier_and_budget_calculator(app):
    """Runs that vary both N and D (as an IsoFLOP sweep gives) whose losses follow a known law."""
    from lab.counting import param_counts
    store, base = RunStore(None), app.controller.form.build_config()
    E, A, B, alpha, beta = 1.5, 400.0, 600.0, 0.34, 0.28
    for width in (16, 32, 64, 128):
        for tokens in (4096, 16384, 65536):
            cfg = base.replace(model__width=width, tokens=tokens)
            N, D = param_counts(cfg.model).total, cfg.tokens_trained
            _store_result(store, cfg, E + A / N ** alpha + B / D ** beta)
    app.runs.refresh.click()
    app.scaling.variable.value = "C"
    fit = app.state.fit
    assert fit["equation"].startswith("L(C) = ")
    assert fit["chinchilla"].startswith("L(N, D) = ")
    assert "Chinchilla" in app.scaling.equation.value
    assert app.plots.points("frontier") > 10
    app.scaling.budget.value = "1e13"
    app.scaling.calc.click()
    assert "With C = 1e+13 FLOPs train N ≈" in app.state.budget_text
    assert "predicted loss" in app.scaling.budget_out.value
    app.sweep.mode.value = "isoflop"
    app.sweep.budgets.value = "1e11, 1e12"
    app.sweep.sizes.value = "16,32"
    assert "IsoFLOP" in app.state.sweep_plan["text"]
    assert app.state.sweep_plan["runs"] == 4
    assert app.sweep.grid_box.layout.display == "none"
    assert "budget C=1e+11" in app.sweep.plan.value


def test_isoflop_runs_draw_their_valleys_and_minima(app):
    """Runs planned at 4 budgets whose losses follow a known law: the Scaling tab draws each budget's
    parabola and its minimum, states the compute-optimal tokens per parameter with its interval and
    approach 3 beside it, and the budget calculator spends C in the lab's FLOP count."""
    from lab.allocation import flops_curve
    from lab.counting import flops_per_token, param_counts
    from lab.plans import isoflop
    store, base = RunStore(None), app.controller.form.build_config()
    E, A, B, alpha, beta = 1.0, 60.0, 300.0, 0.35, 0.40
    plan = isoflop(base.replace(tokens_per_param=0.0), [1e10, 2e10, 4e10, 8e10], n_sizes=6, span=3)
    rng = np.random.default_rng(0)
    for cfg, c in zip(plan.configs, plan.budgets):
        N, D = param_counts(cfg.model).total, cfg.tokens_trained
        _store_result(store, cfg, E + A / N ** alpha + B / D ** beta + 0.002 * rng.standard_normal(), budget=c)
    app.runs.refresh.click()
    app.scaling.variable.value = "C"
    assert not app.plots.points("minima")                 # a valley is drawn against N only
    app.scaling.variable.value = "N"
    fit = app.state.fit
    assert len(fit["minima"]) == 4, fit["notes"]
    assert all(m["low"] < m["N_opt"] < m["high"] for m in fit["minima"])
    assert app.plots.points("minima") == 4
    assert app.plots.points("valley") == 4 * 31          # 30 points per parabola, a gap between them
    words = " ".join(fit["notes"])
    assert "tokens per parameter (95% interval" in words and "approach 3 on the same runs" in words
    app.scaling.budget.value = "1e11"
    app.scaling.calc.click()
    text = app.state.budget_text
    assert "the lab's count" in text
    units = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    n, d = (float(v) * units[u] for v, u in re.findall(r"≈ ([0-9.]+) ?([kMGT]?) (?:parameters|tokens)", text))
    configs = plan.configs
    curve = flops_curve([param_counts(c.model).total for c in configs], [flops_per_token(c.model) for c in configs])
    assert d * float(curve(n)) == pytest.approx(1e11, rel=0.02)    # the words round N and D to 3 figures


def test_a_live_run_draws_its_forecast_final_loss(app):
    """Finished runs of the family whose curves share one shape: the live run's panel draws a dashed
    forecast to its last token at the final loss they imply, with its interval in words."""
    import math

    from lab import family as lfamily
    from lab.counting import param_counts
    store, base = RunStore(None), app.controller.form.build_config()
    law = lambda N: 0.9 + 60 * N ** -0.3

    def points(cfg, upto=1.0):
        N, D = param_counts(cfg.model).total, cfg.tokens_trained
        return [{"step": k, "tokens_seen": k / 20 * D, "flops_seen": k / 20 * D * 6 * N, "train/loss":
                 law(N) * math.exp(0.3 * (1 - k / 20) ** 1.5)} for k in range(1, 21) if k / 20 <= upto + 1e-9]
    for width in (16, 24, 32, 48):
        cfg = base.replace(model__width=width)
        _store_result(store, cfg, law(param_counts(cfg.model).total), curve=tuple(points(cfg)))
    app.runs.refresh.click()
    cfg = base.replace(model__width=64)
    N = param_counts(cfg.model).total
    app.state.live = {cfg.run_id: {"label": "training", "params": N, "points": points(cfg, 0.5), "steps": cfg.steps,
                                   "tokens": cfg.tokens_trained, "family": lfamily.family_key(cfg)}}
    live, fc = app.plots.forecast()
    assert fc.loss == pytest.approx(law(N), rel=1e-6) and fc.runs == 4
    assert app.plots.points("forecast") == 2
    trace = app.plots.fig.data[app.plots._fixed["forecast"]]
    assert "forecast final loss" in trace.text[0] and trace.x[1] == pytest.approx(cfg.tokens_trained)


def test_widgets_never_import_jax_and_use_the_house_import_names():
    from pathlib import Path
    for path in (Path(__file__).resolve().parents[1] / "widgets").glob("*.py"):
        text = path.read_text()
        assert "import jax" not in text, path
        assert "from jax" not in text, path
        assert "import ipywidgets as widgets" not in text, path


def test_character_tokens_show_the_vocabulary_and_count_it_in_the_readouts(app):
    from lab.counting import param_counts
    text = ("尺度定律告诉我们，模型越大、数据越多，损失越低。" * 120).encode()
    now = datetime.datetime.now(datetime.timezone.utc)
    app.form.upload.value = ({"name": "中文.txt", "type": "text/plain", "size": len(text),
                              "content": memoryview(text), "last_modified": now},)
    inputs, c = app.form.inputs, app.controller
    assert inputs["vocab"].layout.display == "none"                         # bytes: always 256
    inputs["vocab"].value = 1024                                            # hidden, so not used
    assert c.form.build_config().model.vocab == 256
    size_in_bytes = app.state.readouts["params"]
    inputs["tokenizer"].value = "chars"
    assert inputs["vocab"].layout.display == "" and "tokenizer=chars" in app.state.share
    cfg = c.form.build_config()
    assert (cfg.data.tokenizer, cfg.model.vocab) == ("chars", 1024)
    grown = param_counts(cfg.model).total - param_counts(dataclasses.replace(cfg.model, vocab=256)).total
    assert grown == 2 * (1024 - 256) * cfg.model.width and app.state.readouts["params"] != size_in_bytes
    inputs["tokenizer"].value = "bytes"
    assert inputs["vocab"].layout.display == "none" and c.form.build_config().model.vocab == 256


def test_the_form_offers_the_corpora_mup_and_tokens_per_parameter(app, monkeypatch):
    from lab.counting import param_counts
    from widgets import fields
    c, inputs = app.controller, app.form.inputs
    assert fields.BY_NAME["data"].default == "stdlib"
    assert app.state.form["data"] == "builtin"   # quick: the small one
    labels = dict((v, k) for k, v in inputs["data"].options)
    assert labels["stdlib"] == "Python source (built in, 11 MB)"
    assert "Python docs" in labels["builtin"]
    assert "μP" in inputs["param"].tooltip
    assert "transfers" in inputs["param"].tooltip
    assert "Chinchilla" in inputs["tokens_per_param"].tooltip
    assert "Data (tokens)" in inputs["tokens_per_param"].tooltip
    inputs["param"].value = "mup"
    inputs["tokens_per_param"].value = 20
    cfg = c.form.build_config()
    assert cfg.model.param == "mup"
    assert cfg.tokens_per_param == 20
    assert cfg.tokens == round(20 * param_counts(cfg.model).total)          # the data follows the model's size
    assert "D = 20 x N" in app.state.readouts["tokens_per_param"]
    assert "param=mup" in app.state.share
    inputs["optimizer"].value = "sgd"                                      # μP's rules are Adam-type ones
    assert "μP" in app.state.config_error
    assert app.form.train.disabled
    monkeypatch.delenv("SCALING_LAB_QUICK")
    assert fields.defaults()["data"] == "stdlib"


def test_the_ladder_is_the_default_sweep_and_states_its_cost(app, monkeypatch):
    from lab.family import family_key
    from lab.plans import LADDER_WIDTHS
    from widgets.controller import Controller
    from widgets.training import QUICK_LADDER_WIDTHS
    from widgets.state import AppState
    sw, c = app.sweep, app.controller
    assert sw.mode.value == "ladder"
    assert sw.mode.options[0] == ("Ladder", "ladder")
    assert sw.ladder_box.layout.display == ""
    assert sw.grid_box.layout.display == "none"
    assert sw.ladder_widths.value == ",".join(map(str, QUICK_LADDER_WIDTHS))
    assert sw.tokens_per_param.value == "20"
    for w in (sw.ladder_widths, sw.ladder_depths, sw.tokens_per_param, sw.ladder_seeds, sw.mode):
        assert w.description
        assert w.tooltip
    plan = app.state.sweep_plan
    assert plan["runs"] == 6
    assert not plan["error"]
    for words in ("ladder:", "6 runs", "FLOPs", "estimated time", "D = 20 x N", "sizes: 8x1"):
        assert words in plan["text"]
        assert words in sw.plan.value
    built = c.sweep.build_plan()
    assert all(cfg.tokens_per_param == 20 for cfg in built)
    assert len({family_key(cfg) for cfg in built}) == 1
    from lab.plans import LADDER_LR, LADDER_PARAM                     # the tuned ladder settings, by default
    assert {(cfg.model.param, cfg.optim.lr) for cfg in built} == {(LADDER_PARAM, LADDER_LR)}
    assert "μP" in plan["text"]
    assert sw.ladder_tuned.value
    assert sw.ladder_tuned.tooltip
    sw.ladder_tuned.value = False                                    # off: the form as it is
    assert {cfg.model.param for cfg in c.sweep.build_plan()} == {"standard"}
    assert "standard parameterisation" in app.state.sweep_plan["text"]
    sw.ladder_tuned.value = True
    sw.ladder_seeds.value = 2
    sw.tokens_per_param.value = "10"
    assert app.state.sweep_plan["runs"] == 12
    assert "D = 10 x N" in app.state.sweep_plan["text"]
    sw.tokens_per_param.value = "lots"
    assert app.state.sweep_plan["runs"] == 0
    assert "Cannot plan" in sw.plan.value
    assert "number" in sw.plan.value
    assert sw.run.disabled
    sw.tokens_per_param.value = "20"
    assert not sw.run.disabled
    c.form.set_values(tokens_per_param=20)                                # a grid cannot sweep tokens that are derived
    sw.mode.value = "grid"
    sw.tokens.value = "2048,4096"
    assert "Tokens per parameter" in app.state.sweep_plan["error"]
    c.form.set_values(tokens_per_param=0)                             # a one-rung ladder at 1 token per parameter runs
    sw.mode.value = "ladder"
    sw.ladder_widths.value, sw.tokens_per_param.value, sw.ladder_seeds.value = "16", "1", 1
    assert app.state.sweep_plan["runs"] == 1
    report = run(_click_and_wait(sw.run, c))
    assert report.ok
    assert "sweep finished" in app.state.notice
    assert not app.state.error
    (row,) = app.state.runs
    assert row["config"]["tokens_per_param"] == 1
    assert app.state.family == row["family"]   # Scaling turns to it
    monkeypatch.delenv("SCALING_LAB_QUICK")                       # the full app: the README's ladder
    assert Controller(AppState()).sweep.values["ladder_widths"] == ",".join(map(str, LADDER_WIDTHS))


def _ladder(store, base, widths, *, tokens_per_param=20.0, seeds=(0,), law=(1.2, 60.0, 0.4), noise=0.0,
            epochs=None):
    """A ladder's finished runs written straight to the store, their losses on a known law."""
    import numpy as np
    from lab.counting import param_counts
    from lab.plans import ladder
    E, A, alpha = law
    rng = np.random.default_rng(0)
    plan = ladder(base, widths=widths, tokens_per_param=tokens_per_param, seeds=list(seeds))
    for cfg in plan:
        n = param_counts(cfg.model).total
        _store_result(store, cfg, (E + A * n ** -alpha) * (1 + noise * rng.normal()),
                      epochs=(epochs or {}).get(cfg.model.width, 0.5))
    return plan


def test_a_ladder_family_is_fitted_on_its_smaller_sizes_and_checked_on_the_largest(app):
    from lab.family import family_key
    store, c = RunStore(None), app.controller
    base = c.form.build_config()
    plan = _ladder(store, base, [8, 12, 16, 20, 24, 32], seeds=(0, 1), noise=0.004, epochs={32: 6.5})
    app.runs.refresh.click()
    key = family_key(plan.configs[0])
    fams = app.state.families
    assert [f["key"] for f in fams] == [key]
    assert fams[0]["sizes"] == 6
    assert fams[0]["runs"] == 12
    assert app.state.family == key
    assert app.scaling.family.value == key
    assert "6 sizes, 12 runs" in \
        app.scaling.family.options[0][0]
    assert app.state.holdout == 2
    assert app.scaling.holdout.value == 2
    assert not app.scaling.holdout.disabled
    for w in (app.scaling.family, app.scaling.holdout):
        assert w.description
        assert w.tooltip
    app.scaling.fit.click()
    fit = app.state.fit
    assert not app.state.error
    assert fit["law"] == "family"
    assert fit["equation"].startswith("L(N) = ")
    assert [(p["width"], p["depth"]) for p in fit["held_out"]] == [(24, 1), (32, 1)]
    for p in fit["held_out"]:
        assert p["low"] <= p["predicted"] <= p["high"]
        assert p["seeds"] == 2
        assert p["sd"] > 0
        assert abs(p["rel_error"]) < 0.05
    table = app.scaling.held_out.value
    assert "lab-heldout" in table
    assert table.count("<tr>") == 3
    assert "%" in table
    assert "width 32, depth 1" in table
    warnings = fit["warnings"]
    assert any("6.5 epochs" in w for w in warnings)
    assert "Reasons to doubt" in app.scaling.warnings.value
    assert "6.5 epochs" in app.scaling.warnings.value
    assert app.plots.points("held_out") == 2
    assert app.plots.points("runs") == 12
    assert app.plots.points("fit") > 10
    # the run that repeated its data is flagged where runs are listed
    flagged = [r for r in app.state.runs if r["width"] == 32]
    assert all("⚠ 6.5 epochs" in r["label"] for r in flagged)
    assert "⚠ 6.5 epochs" in app.runs.table.value
    assert not any("epochs" in r["label"] for r in app.state.runs if r["width"] != 32)
    # hold out none, then too many: the engine's reason lands in the message area
    app.scaling.holdout.value = 0
    assert app.state.fit["held_out"] == []
    assert app.state.fit["equation"]
    assert not app.state.error
    app.scaling.holdout.value = 3
    assert "at least 4 model sizes" in app.state.error
    assert not app.state.fit["equation"]
    # a second ladder whose law is sound: chosen in the Family list
    other = _ladder(store, base.replace(optim__lr=1e-2), [8, 16, 24, 32, 48, 64], tokens_per_param=10, seeds=(0, 1))
    app.runs.refresh.click()
    assert len(app.state.families) == 2
    assert app.state.family == key   # the chosen family stays chosen
    app.scaling.family.value = family_key(other.configs[0])
    assert app.state.holdout == 2
    assert app.state.fit["law"] == "family"
    assert app.state.fit["trusted"]
    assert "Nothing found against this law" in app.scaling.warnings.value
    assert app.plots.points("runs") == 12
    assert app.plots.points("other") == 12


def test_runs_of_two_families_are_never_pooled(app):
    from lab.family import family_key
    store, c = RunStore(None), app.controller
    base = c.form.build_config()
    a = [base.replace(model__width=w, tokens=8192) for w in (16, 24, 32)]
    b = [base.replace(model__width=w, tokens=8192, optim__lr=1e-2) for w in (16, 24, 32, 48)]
    for cfg in a + b:
        _store_result(store, cfg, 2.0 + 100 / cfg.model.width)
    app.runs.refresh.click()
    assert [f["sizes"] for f in app.state.families] == [4, 3]
    assert app.state.family == family_key(b[0])
    assert len(app.scaling.family.options) == 2
    assert "lr 0.01" in app.scaling.family.options[0][0]
    app.scaling.fit.click()                                   # the default family alone: its 4 runs
    assert app.state.fit["equation"]
    assert "fitted on 4 finished run(s) of the family" in app.state.fit["notes"][0]
    assert app.plots.points("runs") == 4
    assert app.plots.points("other") == 3
    ids = {r["config"]["model"]["width"]: r["run_id"] for r in app.state.runs if r["config"]["optim"]["lr"] == 1e-2}
    mixed = [a[0].run_id, a[1].run_id, ids[48]]
    app.runs.select.value = tuple(mixed)                      # three runs of two families: refused, in words
    app.scaling.fit.click()
    err = app.state.error
    assert err.startswith("fit: these runs are of 2 families")
    assert "optim.lr: 0.01, 0.003" in err
    assert "Family list" in err                               # and the way out
    assert "Problem" in app.messages.error.value
    assert "optim.lr" in app.messages.error.value
    assert not app.state.fit["equation"]
    assert "optim.lr" in app.scaling.equation.value
    app.runs.select.value = (a[0].run_id, a[1].run_id, a[2].run_id)   # runs of one family choose that family
    assert app.state.family == family_key(a[0])
    assert app.scaling.family.value == family_key(a[0])
    app.scaling.fit.click()
    assert app.state.fit["equation"]
    assert "the selected runs" in app.state.fit["notes"][0]


def test_extrapolate_then_train_checks_a_member_of_the_family_left_out_of_its_law(app):
    """Predict a bigger model of a ladder family, train it, compare; the law it checks never saw it."""
    from lab.counting import param_counts
    from lab.family import family_key
    store, c = RunStore(None), app.controller
    base = c.form.build_config()               # quick mode: the check trains width 16 (the module's one shape)
    plan = _ladder(store, base, [4, 6, 8, 10, 12], tokens_per_param=1, law=(2.0, 60.0, 0.4))
    app.runs.refresh.click()
    assert app.state.holdout == 0         # five sizes: nothing to spare
    app.scaling.fit.click()
    before = app.state.fit["equation"]
    assert app.state.fit["law"] == "family"
    assert before
    app.scaling.width.value, app.scaling.depth.value = 16, 1
    app.scaling.predict.click()
    pred = app.state.prediction
    cfg = c.scaling._fit_objects["template"].replace(model__width=16)
    assert pred["run_id"] == cfg.run_id
    assert family_key(cfg) == family_key(plan.configs[0])
    assert pred["config"]["tokens_per_param"] == 1
    assert pred["x"] == param_counts(cfg.model).total
    assert pred["low"] <= pred["loss"] <= pred["high"]
    assert "interval" in app.scaling.prediction.value
    shown = app.scaling.prediction.value                        # what the prediction rests on, before Train it
    reach = param_counts(cfg.model).total / max(z["N"] for z in app.state.fit["sizes"])
    assert f"{reach:.1f}x the largest fitted size" in shown
    assert "epochs of this family" in shown
    assert "training it:" in shown
    assert "FLOPs, about" in shown
    assert app.plots.points("predicted") == 1
    (result,) = run(_click_and_wait(app.scaling.check, c))      # Train it
    assert result.status == "done"
    assert result.config.run_id == pred["run_id"]
    assert not app.state.error
    assert result.tokens == cfg.tokens_trained                 # D = 1 x N: tokens followed the size
    done = app.state.prediction
    assert done["actual"] == pytest.approx(result.eval_loss)
    assert done["rel_error"] is not None
    assert "measured" in done["text"]
    assert "off by" in app.scaling.prediction.value
    fit = app.state.fit                                          # refitted after the run, without it
    assert fit["equation"] == before
    assert len(fit["sizes"]) == 5
    assert all(z["width"] != 16 for z in fit["sizes"])
    assert any("they check this law" in n for n in fit["notes"])
    assert app.state.families[0]["sizes"] == 6
    assert app.state.holdout == 0
    assert app.plots.points("actual") == 1



def test_the_form_fields_come_from_the_schema():
    from lab import schema
    from lab.config import default
    from widgets import controls, fields
    for f in fields.FIELDS:
        s = schema.BY_KEY[f.name]
        assert (f.label, f.default, f.path) == (s.label, default(s.path), s.path if s.config else None)
        assert f.help == (s.tip or s.help)
        if f.kind in ("int", "float"):
            assert (f.low, f.high) == s.range
    assert fields.BY_NAME["width"].high == schema.BY_PATH["model.width"].suggest[1]
    assert set(fields.BY_NAME) == {n for _, names in controls.SECTIONS for n in names}   # every field is shown


def test_empty_plots_say_what_will_appear(app):
    names = {a.name for a in app.plots.fig.layout.annotations}
    assert {"hint-curves", "hint-scaling"} <= names
    texts = " ".join(a.text for a in app.plots.fig.layout.annotations if (a.name or "").startswith("hint"))
    assert "Press Train" in texts
    assert "final loss" in texts
    assert tuple(app.plots.fig.layout.xaxis.range) == (3, 7)          # 1k to 10M tokens, not 0.1 to 10k
    run(_click_and_wait(app.form.train, app.controller))
    names = {a.name for a in app.plots.fig.layout.annotations}
    assert "hint-curves" not in names
    assert "hint-scaling" not in names
    assert len([a for a in app.plots.fig.layout.annotations if a.text and "Loss while training" in a.text]) == 1


# --- a shared store: thirty pages, one store (issue 13) ---------------------------------------------

LONG = 8 * 32 * 64 * 40        # 2,560 steps in chunks of 16: long enough to press Stop (or follow) in between


async def _until(predicate, task=None, what=""):
    """Wait for the app's state to say something (a live curve, a notice), at most a minute."""
    for _ in range(1200):
        if predicate():
            return
        assert task is None or not task.done(), f"the job ended before {what}"
        await asyncio.sleep(0.05)
    raise AssertionError(f"waited a minute for {what}")


def test_a_stored_run_is_shown_not_retrained_and_train_again_never_touches_it(app):
    from widgets import Lab
    a, b = app, Lab()                                           # two pages, one store
    for page in (a, b):
        page.controller.form.set_values(tokens=LONG)
    assert b.form.again.layout.display == "none"
    assert not b.state.stored
    (done,) = run(_click_and_wait(a.form.train, a.controller))   # page A trains it to done
    store = RunStore(None)
    before = store.record(done.run_id, curve=True)
    assert done.status == before.status == "done"
    assert len(before.result.curve) >= 10

    shown = run(_click_and_wait(b.form.train, b.controller))     # page B presses Train on the same config
    assert shown == []
    assert not b.state.error
    assert not b.state.job
    rec = store.record(done.run_id)
    assert rec.attempts == 1
    assert rec.finished == before.finished   # nothing trained, nothing rewritten
    notice = b.state.notice
    assert f"run {done.run_id[:8]} is already in the store (done, trained today at" in notice
    assert "shown without training" in notice
    assert f"{done.eval_loss:.4f}" in notice
    assert "from the store" in b.state.progress["text"]
    assert b.state.progress["fraction"] == 1.0
    assert b.state.selected == [done.run_id]
    assert b.plots.points("curves") >= 10   # its curve, as if just trained
    assert done.run_id[:8] in b.runs.table.value
    assert b.form.again.layout.display == ""
    assert not b.form.again.disabled
    assert b.form.again.tooltip
    assert b.state.stored.startswith("already in the store (done, trained today")
    assert "Train again" in b.state.readouts["time"]

    async def again_then_stop():
        b.form.again.click()                                    # Train again, then Stop
        task = b.controller.task
        await _until(lambda: any(v["points"] for v in b.state.live.values()), task, "a curve point")
        assert "attempt 1" in b.state.notice
        assert b.form.again.disabled
        b.form.stop.click()
        return await task

    (retry,) = run(again_then_stop())
    assert retry.status == "cancelled"
    assert retry.config.attempt == 1
    assert retry.run_id != done.run_id
    after = store.record(done.run_id, curve=True)               # page A's run: exactly as it was
    assert dataclasses.replace(after, result=None) == dataclasses.replace(before, result=None)
    assert after.result.curve == before.result.curve
    assert after.result.eval_loss == before.result.eval_loss
    assert store.load_model(done.run_id) is not None
    assert {r.run_id: r.status for r in store.records()} == {done.run_id: "done", retry.run_id: "cancelled"}
    labels = {r["run_id"]: r["label"] for r in b.state.runs}
    assert "attempt 1 · cancelled" in labels[retry.run_id]
    assert "attempt" not in labels[done.run_id]
    a.controller.runs.refresh()
    assert {r["run_id"]: r["status"] for r in a.state.runs}[done.run_id] == "done"


def test_a_waiting_page_says_its_place_and_when_it_starts_while_another_trains(app):
    """One worker, two pages asking for different runs: the second waits in the queue and says so."""
    from widgets import Lab
    a, b = app, Lab()
    a.controller.form.set_values(tokens=20 * LONG)       # it must outlast B's wait on a quiet machine too
    b.controller.form.set_values(tokens=LONG, seed=9)
    seen = []

    async def go():
        ta = a.controller.train.start()
        await _until(lambda: any(v["points"] for v in a.state.live.values()), ta, "page A's first point")
        tb = b.controller.train.start()
        await _until(lambda: seen.append(b.state.progress.get("text", "")) or "place 1 of 1" in seen[-1], tb,
                     "page B's place in the queue")
        assert "starts in about" in b.state.queue_text
        assert "1 run of other pages training now" in seen[-1]
        b.form.stop.click()                                        # B leaves the queue; nothing of it trained
        assert await tb == []
        assert "left the queue" in b.state.notice
        a.form.stop.click()
        return await ta

    (ra,) = run(go())
    assert ra.status == "cancelled"
    assert [r.config.seed for r in RunStore(None).records()] == [0]      # B's run never started


def test_two_pages_training_one_config_store_it_once_and_the_second_follows(app):
    from widgets import Lab
    a, b = app, Lab()
    for page in (a, b):
        page.controller.form.set_values(tokens=LONG)
    store = RunStore(None)

    async def both():
        ta = a.controller.train.start()
        await _until(lambda: any(v["points"] for v in a.state.live.values()), ta, "page A's first point")
        tb = b.controller.train.start()                      # page B presses Train meanwhile
        await _until(lambda: any(v["points"] for v in b.state.live.values()), tb, "page B following A's curve")
        assert "another page asked for this run first" in b.state.notice
        assert "following it" in b.state.notice
        (live,) = b.state.live.values()
        assert "another page's run" in live["label"]
        n = len(live["points"])
        await _until(lambda: len(next(iter(b.state.live.values()))["points"]) > n, tb, "the followed curve to grow")
        assert b.state.job == "train"
        assert not b.form.stop.disabled
        return await ta, await tb

    (ra,), (rb,) = run(both())
    assert ra.status == "done"
    assert rb.run_id == ra.run_id
    assert not a.state.error
    assert not b.state.error
    rec = store.record(ra.run_id, curve=True)
    assert rec.status == "done"
    assert rec.attempts == 1
    assert [r.run_id for r in store.records()] == [ra.run_id]
    assert f"another page's run {ra.run_id[:8]} done" in b.state.notice
    assert not b.state.live
    assert b.state.progress["fraction"] == 1.0
    assert b.plots.points("curves") >= 10
    assert [r["status"] for r in b.state.runs] == ["done"]


def test_stop_on_a_following_page_stops_following_never_the_other_run(app):
    from widgets import Lab
    a, b = app, Lab()
    for page in (a, b):
        page.controller.form.set_values(tokens=LONG, seed=5)

    async def go():
        ta = a.controller.train.start()
        await _until(lambda: any(v["points"] for v in a.state.live.values()), ta, "page A's first point")
        tb = b.controller.train.start()
        await _until(lambda: b.controller.jobs.job.joined, tb, "page B following")
        b.form.stop.click()                                     # Stop on the follower
        assert b.state.notice == "stopping following; the other page's run goes on"
        assert await tb == []
        assert not ta.done()
        assert "stopped following" in b.state.notice
        assert "goes on" in b.state.notice
        assert not b.state.live
        return await ta

    (ra,) = run(go())
    assert ra.status == "done"
    assert ra.steps == ra.config.steps   # page A's run was never stopped
    assert RunStore(None).record(ra.run_id).status == "done"


# --- teacher links and presets (issue 13) ------------------------------------------------------------

def test_a_link_hides_locks_and_opens_a_tab():
    from widgets import Lab
    app = Lab(query="?width=64&depth=2&hide=optimizer,lr,schedule&lock=width&tab=scaling")
    st, f = app.state, app.form.inputs
    assert not st.error
    assert (st.form["width"], st.form["depth"]) == (64, 2)
    for name in ("optimizer", "lr", "schedule"):
        assert f[name].layout.display == "none"                     # hidden, its value still the link's
    assert f["width"].disabled
    assert f["width"].layout.display == ""   # shown, fixed by the link
    assert not f["depth"].disabled
    assert f["depth"].layout.display == ""
    assert f["warmup"].layout.display == ""
    assert f["optimizer"].layout is not f["depth"].layout           # hiding one control hides only it
    assert app.tabs.selected_index == list(app.tabs.titles).index("Scaling")
    assert st.tab == "scaling"
    assert "hidden: optimizer, lr, schedule" in st.notice
    assert "locked: width" in st.notice
    assert not app.form.train.disabled
    # the share link carries them on, and the Share tab shows them as chosen
    assert "hide=optimizer,lr,schedule" in st.share
    assert "lock=width" in st.share
    assert "tab=scaling" in st.share
    assert app.share.hide.value == ("optimizer", "lr", "schedule")
    assert app.share.tab.value == "scaling"
    app.controller.form.apply_preset("optimizers")                       # a preset keeps what the link locked
    assert st.form["width"] == 64
    assert "locked" in st.notice
    assert st.tab == "runs"
    app.tabs.selected_index = list(app.tabs.titles).index("Sample text")   # a click on a tab
    assert st.tab == "sample"


def test_a_whole_hidden_section_is_hidden_with_its_title():
    from widgets import Lab
    app = Lab(query="?hide=optimizer,lr,schedule,warmup,batch")
    assert app.form.sections["Optimizer"].layout.display == "none"
    assert app.form.sections["Model"].layout.display == ""


def test_unknown_names_in_a_link_are_reported_not_raised():
    from widgets import Lab
    app = Lab(query="?width=32&hide=optimizer,colour&lock=size&tab=graphs&preset=huge")
    err = app.state.error
    assert "colour" in err
    assert "size" in err
    assert "graphs" in err
    assert "huge" in err
    assert "Problem" in app.messages.error.value
    assert app.state.form["width"] == 32
    assert app.form.inputs["optimizer"].layout.display == "none"   # the rest applies
    assert app.state.hidden == ["optimizer"]
    assert app.state.locked == []
    assert app.state.tab == ""
    app.controller.form.open_tab("nowhere")
    assert "nowhere" in app.state.error
    app.controller.form.set_share(hide=["width", "colour"])
    assert "colour" in app.state.error
    assert "colour" not in app.state.share
    assert app.state.share_options["hide"] == ["optimizer"]                     # the refused choice changed nothing


def test_format_query_round_trips_hide_lock_and_tab():
    from widgets import fields
    values = fields.defaults() | {"width": 96, "lr": 1e-3}
    q = fields.format_query(values, hide=["lr", "optimizer"], lock=["width"], tab="Scaling")
    assert "hide=optimizer,lr" in q
    assert "lock=width" in q
    assert "tab=scaling" in q
    link = fields.parse_link(q)
    assert link.values == values
    assert not link.errors
    assert set(link.hide) == {"lr", "optimizer"}
    assert link.lock == ("width",)
    assert link.tab == "scaling"
    assert fields.parse_link(fields.format_query(values)).hide == ()             # none asked, none written
    assert not set(fields.LINK_KEYS) & set(fields.BY_NAME)                      # a link's keys never clash


def test_the_share_tab_builds_a_teacher_link(app):
    share = app.share
    for w in (share.hide, share.lock, share.tab):
        assert w.description
        assert w.tooltip
    share.hide.value = ("optimizer", "lr")
    share.lock.value = ("width",)
    share.tab.value = "scaling"
    q = app.state.share
    assert "hide=optimizer,lr" in q
    assert "lock=width" in q
    assert "tab=scaling" in q
    assert share.text.value == q
    assert app.state.hidden == []
    assert not app.form.inputs["optimizer"].layout.display   # the teacher still sees all
    from widgets import Lab
    student = Lab(query=q)
    assert student.form.inputs["lr"].layout.display == "none"
    assert student.form.inputs["width"].disabled
    assert student.state.tab == "scaling"
    assert not student.state.error


def test_every_preset_applies_cleanly_and_opens_its_tab(app, monkeypatch):
    from lab.plans import CHINCHILLA_TOKENS_PER_PARAM, LADDER_LR
    from widgets import fields
    c, st = app.controller, app.state
    assert {"first-run", "ladder", "optimizers", "data-limited"} <= set(fields.PRESETS)
    assert app.form.preset.description == "Preset"
    assert app.form.preset.tooltip
    assert app.form.children[0] is app.form.preset                    # at the top of the form
    for key, preset in fields.PRESETS.items():
        for name, value in preset["values"].items():                   # plain data inside the fields' bounds
            assert fields.parse_value(fields.BY_NAME[name], f"{value:g}" if isinstance(value, float) else str(value)) \
                == value, (key, name)
        app.form.preset.value = key                                    # the dropdown's one choice
        assert not st.error, (key, st.error, st.config_error)
        assert not st.config_error, (key, st.error, st.config_error)
        assert not app.form.train.disabled, (key, st.error, st.config_error)
        assert st.preset == key
        assert all(st.form[k] == v for k, v in preset["values"].items())
        assert not st.sweep_plan.get("error"), (key, st.sweep_plan)
        if preset.get("tab"):
            assert st.tab == preset["tab"]
            assert app.tabs.selected_index == list(fields.TABS).index(preset["tab"])
        for name, value in preset.get("sweep", {}).items():
            assert c.sweep.values[name] == value
            assert getattr(app.sweep, name).value == value
    ladder = fields.PRESETS["ladder"]["values"]
    assert ladder["param"] == "mup"
    assert ladder["lr"] == LADDER_LR
    assert ladder["tokens_per_param"] == CHINCHILLA_TOKENS_PER_PARAM
    assert fields.PRESETS["ladder"]["tab"] == "sweep"
    assert fields.PRESETS["ladder"]["sweep"]["mode"] == "ladder"
    assert fields.PRESETS["data-limited"]["values"]["tokens_per_param"] == 0          # a fixed number of tokens
    app.form.inputs["width"].value = 48
    assert st.preset == ""
    assert app.form.preset.value == ""   # changed: the dropdown can set it again
    monkeypatch.delenv("SCALING_LAB_QUICK")                             # also valid over the full-size defaults
    for key in fields.PRESETS:
        c.form.build_config(fields.preset_values(key))


def test_a_preset_link_with_explicit_settings_over_it():
    from widgets import Lab, fields
    app = Lab(query="?preset=ladder&width=96")
    st = app.state
    assert st.form["width"] == 96
    assert st.form["param"] == "mup"
    assert st.form["tokens_per_param"] == 20
    assert not st.error
    assert not st.config_error
    assert not app.form.train.disabled
    assert st.tab == "sweep"
    assert st.preset == "ladder"
    assert "preset ladder" in st.notice
    assert "width=96" in st.notice
    for key in fields.PRESETS:
        other = Lab(query=f"?preset={key}&width=96")
        assert other.state.form["width"] == 96, key
        assert not other.state.error, key
        assert not other.state.config_error, key
        assert all(other.state.form[k] == v for k, v in fields.PRESETS[key]["values"].items() if k != "width")
    assert Lab(query="?preset=first run").state.preset == "first-run"   # the label works too


# --- a class on one server: students, the teacher, the queue (issue 19) -------------------------------

def _teacher_env(monkeypatch, token="s3cret"):
    import hashlib
    monkeypatch.setenv("SCALING_LAB_TEACHER_SHA256", hashlib.sha256(token.encode()).hexdigest())
    return token


def test_the_teacher_token_decides_the_role_and_a_wrong_one_says_so(monkeypatch):
    from widgets import Lab
    token = _teacher_env(monkeypatch)
    student = Lab(query="?width=32")
    assert student.state.role == "student"
    assert "Class" not in student.tabs.titles
    assert student.controller.form.open_tab("class") is None
    assert "teacher's" in student.state.error
    wrong = Lab(query="?teacher=guess")
    assert wrong.state.role == "student"
    assert "teacher token in this link is wrong" in wrong.state.notice
    teacher = Lab(query=f"?teacher={token}&view=class")
    assert teacher.state.role == "teacher"
    assert "Class" in teacher.tabs.titles
    assert teacher.state.tab == "class"
    assert teacher.state.plot_mode == "class"
    assert "teacher" in teacher.role.value
    assert "teacher=" not in teacher.state.share                 # a shared link never carries the token
    monkeypatch.delenv("SCALING_LAB_TEACHER_SHA256")
    assert Lab().state.role == "teacher"                         # no server token at all: the lab's own user


def test_a_students_delete_of_the_teachers_run_is_refused_the_teachers_works(app, monkeypatch):
    from widgets import Lab
    token = _teacher_env(monkeypatch)
    teacher = Lab(query=f"?teacher={token}")
    teacher.controller.form.set_values(tokens=2048)
    (mine,) = run(teacher.controller.train.run())
    student = Lab(query="")
    student.controller.set_name("Ann")
    student.controller.runs.select([mine.run_id])
    student.runs.delete.click()
    assert "asked for by the teacher" in student.state.error
    assert RunStore(None).record(mine.run_id) is not None
    student.runs.export.click()                                  # a student's export: a download only
    assert "download" in student.state.download
    assert not list(RunStore(None).path.glob("runs-*.csv"))
    teacher.controller.runs.select([mine.run_id])
    teacher.runs.export.click()
    assert len(list(RunStore(None).path.glob("runs-*.csv"))) == 1
    teacher.runs.delete.click()
    assert not teacher.state.error
    assert RunStore(None).record(mine.run_id) is None


def test_the_class_view_lists_names_as_text_and_clears_the_queue(monkeypatch):
    from lab.runqueue import RunQueue
    from lab.store import Asker
    from widgets import Lab
    token = _teacher_env(monkeypatch)
    queue = RunQueue(RunStore(None))
    evil = Asker(client="evil", name="<script>alert('x')</script>", page="p-evil")
    queue.open_page(evil)
    queue.beat("p-evil")
    cfg = Lab(service="external").controller.form.build_config()
    queue.ask([cfg.replace(seed=s) for s in (0, 1)], evil)
    teacher = Lab(query=f"?teacher={token}&tab=class", service="external")
    teacher.controller.classroom.refresh()
    html = teacher.classroom.waiting.value + teacher.classroom.pages.value
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert [w["place"] for w in teacher.state.classroom["waiting"]] == [1, 2]
    student = Lab(query="", service="external")
    student.controller.classroom.clear_queue()
    assert "only the teacher" in student.state.error
    assert len(queue.view().waiting) == 2
    teacher.classroom.clear.click()
    assert queue.view().waiting == ()
    assert "cleared the queue: 2" in teacher.state.notice
    teacher.controller.classroom.set_limits(max_queued=1, max_tokens=0, max_pages=5)
    assert queue.limits() == {"max_queued": 1, "max_tokens": None, "max_pages": 5}


def test_a_page_past_the_class_limit_reads_that_the_class_is_full(monkeypatch):
    from lab.runqueue import RunQueue
    from lab.store import Asker
    from widgets import Lab
    _teacher_env(monkeypatch)
    queue = RunQueue(RunStore(None))
    queue.set_limits(max_pages=2)
    for i in range(2):
        queue.open_page(Asker(client=f"c{i}", page=f"p{i}"))
    late = Lab(query="", service="external")
    assert "The class is full" in late.state.full
    assert late.body.layout.display == "none"
    assert "class is full" in late.full.value


def test_a_page_over_its_queue_limit_is_told_and_nothing_is_queued(app, monkeypatch):
    from lab.runqueue import RunQueue
    _teacher_env(monkeypatch)
    from widgets import Lab
    student = Lab(query="", service="external")                    # no service: its runs wait in the queue
    student.controller.form.set_values(seeds=4, tokens=2048)

    async def go():
        return await student.controller.train.run()

    assert run(go()) is None
    assert student.state.error.startswith("cannot queue: a page may have 3 run(s) waiting")
    assert RunQueue(RunStore(None)).view().waiting == ()


def test_the_sweep_tab_and_the_command_line_plan_the_same_runs(app, tmp_path, capsys):
    """One rule book (`lab.plans.sweep`): the same inputs give the same runs from the Sweep tab and from
    `scaling-lab sweep --dry-run --json`, and the same refusal."""
    import json

    from lab.cli import main
    from lab.schema import SETTINGS, shown
    sw, c = app.sweep, app.controller
    c.form.set_values(width=16, depth=1, heads=2, context=16, batch=8, evals=2, tokens=4096)
    base = c.form.build_config()

    swept = (None, "--data", "--width", "--depth", "--tokens", "--tokens-per-param")   # given per plan below
    form_args = [a for s in SETTINGS if s.config and s.cli_flag not in swept
                 for a in (s.cli_flag, shown(base.value(s.path)))] + ["--data", base.data.source]

    def cli(*args):
        code = main(["sweep", *form_args, "--store", str(tmp_path), *args, "--dry-run", "--json"])
        out, err = capsys.readouterr()
        return [r["run_id"] for r in json.loads(out)["runs"]] if code == 0 else err

    sw.mode.value = "ladder"
    sw.ladder_widths.value, sw.ladder_depths.value = "8,16", "1"
    sw.tokens_per_param.value, sw.ladder_seeds.value = "5", 2
    assert cli("--widths", "8,16", "--depths", "1", "--tokens-per-param", "5", "--seeds", f"{base.seed},{base.seed + 1}",
               "--param", "mup", "--eval-tokens", str(max(base.eval_tokens, 65_536))) \
        == list(c.sweep.build_plan().run_ids)
    sw.mode.value = "grid"
    sw.widths.value, sw.depths.value, sw.tokens.value = "8,16", "1,2", "2048,4096"
    assert cli("--widths", "8,16", "--depths", "1,2", "--tokens", "2048,4096") == list(c.sweep.build_plan().run_ids)
    sw.mode.value = "isoflop"
    sw.budgets.value, sw.sizes.value = "2e9,8e9", "8,16"
    assert cli("--isoflop", "2e9,8e9", "--isoflop-widths", "8,16", "--depths", "1") \
        == list(c.sweep.build_plan().run_ids)
    c.form.set_values(tokens_per_param=20)                  # tokens that follow size cannot be swept
    sw.mode.value = "grid"
    assert "Tokens per parameter" in app.state.sweep_plan["error"]
    assert "leave out --tokens" in cli("--widths", "8,16", "--tokens", "2048,4096", "--tokens-per-param", "20")


def test_explain_writes_every_controls_help_as_text_for_touch_screens(app):
    import html

    from widgets import fields
    form = app.form
    assert form.explain.description and form.explain.tooltip
    assert all(h.layout.display == "none" for h in form.helps.values())       # off: tooltips only
    form.explain.value = True
    shown = " ".join(h.value for h in form.helps.values() if h.layout.display == "")
    for name in form.inputs:
        assert (html.escape(fields.BY_NAME[name].help) in shown) == fields.shown(name, app.state.form), name
    assert not fields.shown("vocab", app.state.form)                       # byte tokens: no vocabulary to set
    form.inputs["tokenizer"].value = "chars"
    assert html.escape(fields.BY_NAME["vocab"].help) in " ".join(h.value for h in form.helps.values())
    app.controller.state.hidden = ["lr"]                                   # a link's hidden control is not explained
    shown = " ".join(h.value for h in form.helps.values())
    assert html.escape(fields.BY_NAME["lr"].help) not in shown
    form.explain.value = False
    assert all(h.layout.display == "none" for h in form.helps.values())
