"""The app, headless: through the controller (a click swallows exceptions), plus one click per button.

Every run here has one shape (quick mode: width 16, depth 1, context 32, batch 8), so the module
compiles one training program; runs differ in tokens and seeds, which are data.
"""

import asyncio
import dataclasses
import datetime

import pytest

from lab.store import RunStore


@pytest.fixture(autouse=True)
def _quick(monkeypatch):
    monkeypatch.setenv("SCALING_LAB_QUICK", "1")
    monkeypatch.delenv("QUERY_STRING", raising=False)


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
    assert st.form["width"] == 16 and not st.config_error and not st.error
    for key in ("params", "flops", "tokens_per_param", "time", "memory"):
        assert st.readouts[key]
    for w in app.form.inputs.values():
        assert w.description and w.tooltip            # a label and a tooltip a student can read
    assert "parameters" in app.form.readouts.value and not app.form.train.disabled and app.form.stop.disabled
    figures = [w for w in _walk(app) if type(w).__name__ == "FigureWidget"]
    assert figures == [app.plots.fig]                 # one FigureWidget for the whole app
    assert st.share.startswith("?") and "width=16" in st.share


def _walk(w):
    yield w
    for child in getattr(w, "children", ()):
        yield from _walk(child)


def test_readouts_follow_the_width(app):
    before = dict(app.state.readouts)
    app.form.inputs["width"].value = 64
    assert app.state.form["width"] == 64
    assert app.state.readouts["params"] != before["params"] and app.state.readouts["flops"] != before["flops"]
    assert "width=64" in app.state.share and "width=64" in app.share.text.value


def test_an_impossible_config_disables_train_and_says_why(app):
    app.form.inputs["width"].value = 48
    app.form.inputs["heads"].value = 5
    assert "divisible by heads" in app.state.config_error and "--" not in app.state.config_error
    assert app.form.train.disabled and "divisible by heads" in app.form.problem.value
    assert app.controller.start_training() is None and "divisible" in app.state.error and not app.state.job
    app.form.inputs["heads"].value = 4
    assert not app.state.config_error and not app.form.train.disabled
    app.controller.set_values(width=2048, depth=48, context=1024, batch=512, seeds=8, tokens=10**9)   # far too big
    assert "memory" in app.state.config_error and app.form.train.disabled


def test_training_draws_live_curves_stores_the_run_and_survives_a_restart(app):
    app.controller.set_values(tokens=8 * 32 * 64 * 3)          # three chunks of 64 steps
    out = run(_click_and_wait(app.form.train, app.controller))  # the Train button's one click
    assert [r.status for r in out] == ["done"] and not app.state.error and not app.state.job
    assert app.plots.points("curves") >= 4 and app.plots.points("runs") == 1
    row = app.state.runs[0]
    assert row["status"] == "done" and len(row["curve"]) >= 3 and row["run_id"] in app.runs.table.value[:10_000] + \
        "".join(o[1] for o in app.runs.select.options)
    assert app.state.progress["fraction"] == 1.0 and "done" in app.state.notice
    assert [r.run_id for r in RunStore(None).records()] == [row["run_id"]]
    from widgets import Lab                                     # a new kernel: the runs come back from the store
    again = Lab()
    assert [r["run_id"] for r in again.state.runs] == [row["run_id"]] and again.plots.points("curves") >= 4
    text = again.controller.sample(row["run_id"], "The ", 16, 0.0)
    assert isinstance(text, str) and len(text) >= 1 and not again.state.error
    assert again.sample.run.value == row["run_id"]             # the newest run is chosen
    again.sample.go.click()
    assert again.state.sample_text and "<pre" in again.sample.out.value


def test_stop_ends_the_run_within_a_chunk_and_keeps_it_cancelled(app):
    c = app.controller
    c.set_values(tokens=8 * 32 * 64 * 40)

    async def go():
        task = c.start_training()
        assert app.form.stop.disabled is False and app.form.train.disabled
        while not any(v["points"] for v in app.state.live.values()):
            await asyncio.sleep(0.05)
            assert not task.done(), app.state.error
        app.form.stop.click()                                   # the Stop button's one click
        return await task

    (result,) = run(go())
    assert result.status == "cancelled" and result.steps < result.config.steps
    assert app.state.runs[0]["status"] == "cancelled" and "cancelled" in app.state.progress["text"]
    assert not app.state.job and app.form.stop.disabled and not app.form.train.disabled


def test_a_link_sets_the_controls_and_bad_values_are_reported():
    from widgets import Lab
    app = Lab(query="?width=32&depth=2&optimizer=adam&seed=3&tokens=20k&lr=1e-3")
    f = app.form.inputs
    assert (f["width"].value, f["depth"].value, f["optimizer"].value, f["seed"].value) == (32, 2, "adam", 3)
    assert app.state.form["tokens"] == 20_000 and app.state.form["lr"] == 1e-3 and not app.state.error
    assert "width=32" in app.state.share and "optimizer=adam" in app.state.share
    app.controller.apply_query("?width=abc&depth=999&optimizer=sgdd&colour=red&seed=7")
    err = app.state.error
    assert "width" in err and "depth" in err and "optimizer" in err and "colour" in err
    assert app.state.form["seed"] == 7 and f["seed"].value == 7 and f["width"].value == 32   # good ones still apply
    assert "Problem" in app.messages.error.value and app.messages.error_box.layout.display == ""


def test_a_sweep_of_three_runs_then_a_fit_shows_the_law(app):
    c = app.controller
    app.sweep.tokens.value = "2048,4096,8192"
    app.sweep.widths.value = "16"
    assert app.state.sweep_plan["runs"] == 3 and "3 runs" in app.sweep.plan.value
    report = run(_click_and_wait(app.sweep.run, c))              # the Run sweep button's one click
    assert report.ok and len(app.state.runs) == 3 and "sweep finished" in app.state.notice
    # a diverged run is left out of the fit, and the app says so
    store = RunStore(None)
    done = store.get(app.state.runs[0]["run_id"])
    cfg = done.config.replace(seed=99)
    store.commit(dataclasses.replace(done, run_id=cfg.run_id, config=cfg, status="diverged", eval_loss=9.0,
                                     diverged_step=3), save_weights=False)
    c.refresh_runs()
    app.scaling.variable.value = "D"
    app.scaling.fit.click()                                     # the Fit button's one click
    fit = app.state.fit
    assert fit["equation"].startswith("L(D) = ") and fit["equation"] in app.scaling.equation.value
    assert any("1 diverged" in n for n in fit["notes"]) and "1 diverged" in app.scaling.equation.value
    assert app.plots.points("fit") > 10 and app.plots.points("runs") == 3 and app.plots.points("left_out") == 1
    app.scaling.width.value, app.scaling.depth.value = 16, 1
    app.controller.set_values(tokens=16_384)
    app.scaling.predict.click()                                 # extrapolate to 16k tokens
    assert app.state.prediction["loss"] > 0 and "predicted loss" in app.scaling.prediction.value
    assert app.plots.points("predicted") == 1
    run(_click_and_wait(app.scaling.check, c))                  # Train it: then predicted vs measured
    assert app.state.prediction["actual"] > 0 and "measured" in app.state.prediction["text"]
    app.scaling.budget.value = "1e12"
    app.scaling.calc.click()                                    # no Chinchilla fit and x is D: says what it needs
    assert "Chinchilla" in app.state.error and not app.state.budget_text


def test_errors_land_in_the_error_area(app, tmp_path):
    c = app.controller
    app.runs.delete.click()
    assert "select runs" in app.state.error and "select runs" in app.messages.error.value
    app.messages.dismiss.click()
    assert not app.state.error and app.messages.error_box.layout.display == "none"
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
    c.upload("big.txt", b"x" * (21 << 20))
    assert "over the" in app.state.error
    c.upload("image.txt", b"\xff\xfe\x00binary")
    assert "not UTF-8" in app.state.error
    c.report(RuntimeError("boom"))
    assert app.state.error.startswith("RuntimeError: boom")
    c.set_view(x_axis="furlongs")
    assert "x axis" in app.state.error

    async def failing():                                         # an engine error inside the job
        c.upload("notes.txt", b"tiny")                          # too small to train on: lab says so
        assert app.state.form["data"] == "file"
        return await c.train()

    assert run(failing()) is None
    assert "training failed" in app.state.error and "bytes" in app.state.error and not c.state.job


def test_runs_table_select_compare_export_delete_and_toggles(app):
    c = app.controller
    c.set_values(tokens=2048)
    run(c.train())
    c.set_values(seed=1)
    run(c.train())
    ids = [r["run_id"] for r in app.state.runs]
    assert len(ids) == 2 and app.runs.table.value.count("<tr>") == 3
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
    assert app.plots.fig.layout.xaxis.type == "linear" and "FLOPs" in app.plots.fig.layout.xaxis.title.text
    app.runs.refresh.click()
    app.runs.delete.click()
    assert [r["run_id"] for r in app.state.runs] == ids[1:] and "deleted 1" in app.state.notice
    app.form.stop.click()                                        # nothing running: nothing happens
    app.sweep.stop.click()
    assert not app.state.error


def test_uploaded_text_becomes_the_dataset(app):
    text = ("A small corpus about scaling laws. " * 200).encode()
    now = datetime.datetime.now(datetime.timezone.utc)
    app.form.upload.value = ({"name": "my notes.txt", "type": "text/plain", "size": len(text),
                              "content": memoryview(text), "last_modified": now},)
    path = app.state.data_path
    assert app.state.form["data"] == "file" and path.endswith(".txt") and "uploads" in path
    assert open(path, "rb").read() == text and app.controller.build_config().data.path == path
    assert "data=" not in app.state.share                        # a file cannot travel in a link


def test_voila_hands_the_link_to_the_kernel(monkeypatch):
    from widgets import Lab
    monkeypatch.setenv("QUERY_STRING", "width=24&heads=3&optimizer=lion")
    app = Lab()
    assert (app.state.form["width"], app.state.form["heads"], app.state.form["optimizer"]) == (24, 3, "lion")
    assert "settings from the link" in app.state.notice and not app.state.error


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
        assert app.state.form["width"] == 16 and app.state.runs == []
        other = Lab(query="")                      # another kernel trains meanwhile
        await other.controller.train()
        assert app.state.runs == []
        page_asks.set()
        for _ in range(200):
            await asyncio.sleep(0.05)
            if app.state.form["width"] == 40:
                break
        return app

    app = run(go())
    assert app.form.inputs["width"].value == 40 and len(app.state.runs) == 1 and app.plots.points("curves") >= 1


def _store_result(store, cfg, loss, status="done"):
    """A finished run written straight to the store (no training): the fits only read numbers."""
    from lab.counting import flops_per_token, param_counts
    from lab.trackers import RunResult
    counts, fpt = param_counts(cfg.model), flops_per_token(cfg.model)
    curve = ({"step": cfg.steps, "tokens_seen": cfg.tokens_trained, "flops_seen": float(fpt * cfg.tokens_trained),
              "train/loss": loss, "eval/loss": loss},)
    store.commit(RunResult(
        run_id=cfg.run_id, config=cfg, status=status, train_loss=loss, eval_loss=loss, eval_bpb=loss / 0.693,
        tokens=cfg.tokens_trained, steps=cfg.steps, flops=float(fpt * cfg.tokens_trained), flops_per_token=fpt,
        params_total=counts.total, params_embedding=counts.embedding, params_non_embedding=counts.non_embedding,
        epochs=0.1, wall_s=1.0, first_step_s=0.5, tokens_per_s=1e5, device="cpu:test", diverged_step=None,
        unigram_loss=5.0, entropy_rate=None, dataset="builtin", curve=curve), save_weights=False)


def test_chinchilla_fit_frontier_and_budget_calculator(app):
    """Runs that vary both N and D (as an IsoFLOP sweep gives) whose losses follow a known law."""
    from lab.counting import param_counts
    store, base = RunStore(None), app.controller.build_config()
    E, A, B, alpha, beta = 1.5, 400.0, 600.0, 0.34, 0.28
    for width in (16, 32, 64, 128):
        for tokens in (4096, 16384, 65536):
            cfg = base.replace(model__width=width, tokens=tokens)
            N, D = param_counts(cfg.model).total, cfg.tokens_trained
            _store_result(store, cfg, E + A / N ** alpha + B / D ** beta)
    app.runs.refresh.click()
    app.scaling.variable.value = "C"
    fit = app.state.fit
    assert fit["equation"].startswith("L(C) = ") and fit["chinchilla"].startswith("L(N, D) = ")
    assert "Chinchilla" in app.scaling.equation.value and app.plots.points("frontier") > 10
    app.scaling.budget.value = "1e13"
    app.scaling.calc.click()
    assert "With C = 1e+13 FLOPs train N ≈" in app.state.budget_text
    assert "predicted loss" in app.scaling.budget_out.value
    app.sweep.mode.value = "isoflop"
    app.sweep.budgets.value = "1e11, 1e12"
    app.sweep.sizes.value = "16,32"
    assert "IsoFLOP" in app.state.sweep_plan["text"] and app.state.sweep_plan["runs"] == 4
    assert app.sweep.grid_box.layout.display == "none" and "budget C=1e+11" in app.sweep.plan.value


def test_widgets_never_import_jax_and_use_the_house_import_names():
    from pathlib import Path
    for path in (Path(__file__).resolve().parents[1] / "widgets").glob("*.py"):
        text = path.read_text()
        assert "import jax" not in text and "from jax" not in text, path
        assert "import ipywidgets as widgets" not in text, path
