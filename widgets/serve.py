"""Voila for a class: `python -m widgets.serve ARGS` runs Voila (ARGS as for `voila`) with a kernel
pool that suits thirty pages opened at once on a small server.

Voila keeps `--pool_size` kernels preheated (each has built the app, so a page is drawn at once)
and, each time a page takes one, starts a replacement a second later. Thirty pages arriving
together would then start thirty more kernels while the thirty pages are still being drawn,
competing with them for the cores, and double the memory. Here a refill waits until no page
has been opened for REFILL_QUIET_S seconds (`SCALING_LAB_REFILL_QUIET_S`: 1 s as Voila's own,
60 s for a class), and refills only as many kernels as pages may still arrive (the class's size,
or `SCALING_LAB_MAX_PAGES`, minus the pages open; at least one, at most the pool size).
`scaling-lab app` starts the server this way; this module is the server's, not a page's.
"""

import asyncio
import os
import sys
import time

REFILL_QUIET_S = float(os.environ.get("SCALING_LAB_REFILL_QUIET_S", "1"))   # `scaling-lab app --class`: 20


def _max_pages() -> int | None:
    text = os.environ.get("SCALING_LAB_MAX_PAGES", "")
    return int(text) if text.strip() else None


def class_pool(cls):
    """A Voila kernel manager class (with a pool) whose refills wait for quiet and stay within the class."""

    class ClassKernelManager(cls):
        def __init__(self, **kwargs):
            self._taken_at = 0.0
            self._refill: asyncio.Task | None = None
            super().__init__(**kwargs)

        async def get_rendered_notebook(self, notebook_name, extra_kernel_env_variables={}, **kwargs):
            self._taken_at = time.monotonic()
            self._prune(notebook_name)
            return await super().get_rendered_notebook(notebook_name, extra_kernel_env_variables, **kwargs)

        def get_pool_size(self, notebook_name: str) -> int:
            self._prune(notebook_name)
            return super().get_pool_size(notebook_name)

        def _prune(self, notebook_name) -> None:
            """Drop preheated kernels that died while they waited (thirty kernels started at once can
            lose a port to another process: "Address already in use"), so that no page is handed a
            dead kernel and left at "Loading widget..."; a refill replaces them."""
            pool = self._pools.get(notebook_name, [])
            alive = set(self.list_kernel_ids())
            dead = [t for t in pool if t.done() and (t.cancelled() or t.exception() is not None
                                                      or t.result().get("kernel_id") not in alive)]
            for t in dead:
                pool.remove(t)
            if dead:
                self.log.warning("Dropped %d preheated kernel(s) of %s that died; refilling", len(dead),
                                 notebook_name)
                self.fill_if_needed(notebook_name=notebook_name)

        def fill_if_needed(self, delay=None, notebook_name=None, extra_kernel_env_variables={}, **kwargs):
            if delay is not None:                  # the first fill, at start-up: at once
                return super().fill_if_needed(delay, notebook_name, extra_kernel_env_variables, **kwargs)
            if self._refill is None or self._refill.done():
                self._refill = asyncio.get_event_loop().create_task(
                    self._refill_when_quiet(notebook_name, extra_kernel_env_variables, kwargs))

        async def _refill_when_quiet(self, notebook_name, extra, kwargs):
            while time.monotonic() - self._taken_at < REFILL_QUIET_S:
                await asyncio.sleep(1.0)
            config = self.kernel_pools_config.get(notebook_name) or self.kernel_pools_config.get("default", {})
            size = int(config.get("pool_size", 1))
            pool = self._pools.get(notebook_name, [])
            pages = max(0, len(self.list_kernel_ids()) - sum(1 for t in pool if t.done()))
            limit = _max_pages() or size         # a class of `size` pages: refill for those still to come
            target = max(1, min(size, limit - pages))
            self.log.info("Refilling the kernel pool of %s to %d (pages open: %d)", notebook_name, target, pages)
            saved = dict(config)
            config["pool_size"] = target
            try:
                super().fill_if_needed(0, notebook_name, extra, **kwargs)
            finally:
                config.clear()
                config.update(saved)

    return ClassKernelManager


def main(argv=None) -> int:
    from voila import app as voila_app
    from voila import voila_kernel_manager

    plain = voila_kernel_manager.voila_kernel_manager_factory

    def factory(base_class, preheat_kernel, default_pool_size, page_config_hook=None):
        cls = plain(base_class, preheat_kernel, default_pool_size, page_config_hook=page_config_hook)
        return class_pool(cls) if preheat_kernel else cls

    voila_app.voila_kernel_manager_factory = factory
    args = [*(sys.argv[1:] if argv is None else argv),
            # plotly's notebook renderer (4.8 MB a page): the app draws its figure itself (widgets.liveplot)
            "--VoilaConfiguration.extension_denylist=jupyterlab-plotly"]
    sys.argv = ["voila", *args]
    voila_app.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
