"""Scaling Lab's app: interactive widgets over the `lab` engine (never jax directly).

    from widgets import Lab
    Lab()          # in JupyterLab, or served by Voila: voila notebooks/lab.ipynb

Modules: `state` (the app's state), `controller` (the app's actions on `lab`: form, training,
sweeps, runs, sampling), `jobs` (the background job: worker thread, relay, live state, following
another page's run), `scaling` (families, fits, budget, predictions), `text` (counts, runs and
errors in words), `fields` (the run form as data; the share link), `controls` (the form),
`plots` (the one figure), `liveplot` (its view on the page),
`panels` (sweep, scaling, runs, sampling, share, messages), `app` (`Lab`, composing them);
`lessons` holds small pieces for the lesson notebooks.
`Lab` is imported lazily so that `import widgets` stays cheap.
"""

__all__ = ["Lab", "Controller", "AppState"]


def __getattr__(name):
    if name == "Lab":
        from widgets.app import Lab
        return Lab
    if name == "Controller":
        from widgets.controller import Controller
        return Controller
    if name == "AppState":
        from widgets.state import AppState
        return AppState
    raise AttributeError(f"module 'widgets' has no attribute {name!r}")
