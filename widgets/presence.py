"""Is anyone still looking? A heartbeat from the page, so that a job stops when its page is gone.

Voila cannot always shut a kernel down when its tab closes or reloads (voila#1458: the
request sent while a page unloads is often lost), and a kernel that is busy training is never
idle, so the idle culler would not touch it either. The page therefore sends a small message
every few seconds (an anywidget, no extra package); when they stop coming for `timeout`
seconds, the controller stops the running job (kept, marked cancelled), the kernel falls idle,
and the server's idle culler (`scaling-lab app --cull-idle`) shuts it down.

Browsers slow timers in hidden tabs to about one per minute, so the default timeout (90 s,
`SCALING_LAB_PAGE_TIMEOUT`) lets a student switch tabs without losing a run.
"""

import asyncio
import os
import time

import anywidget

BEAT_S = 5.0


def page_timeout() -> float:
    return float(os.environ.get("SCALING_LAB_PAGE_TIMEOUT", "90"))


class Heartbeat(anywidget.AnyWidget):
    """An invisible widget whose page-side half messages the kernel every BEAT_S seconds."""

    _esm = """
    function render({ model, el }) {
      el.style.display = "none";
      const beat = () => model.send({ beat: Date.now() });
      beat();
      const id = setInterval(beat, %d);
      return () => clearInterval(id);
    }
    export default { render };
    """ % int(BEAT_S * 1000)


class Presence:
    """Watches the heartbeat; calls `on_gone` once when a page that was there stops beating."""

    def __init__(self, on_gone, timeout: float | None = None):
        self.widget = Heartbeat()
        self.timeout = page_timeout() if timeout is None else timeout
        self.last: float | None = None
        self.on_gone = on_gone
        self.widget.on_msg(lambda _w, content, _b: self.beat())
        self.task = None
        try:
            self.task = asyncio.get_running_loop().create_task(self._watch())
        except RuntimeError:  # no event loop (a plain script): nothing to watch
            pass

    def beat(self) -> None:
        self.last = time.monotonic()

    def gone(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return self.last is not None and now - self.last > self.timeout

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(min(BEAT_S, self.timeout / 2))
            if self.gone():
                self.last = None          # once per disappearance; a page that comes back beats again
                self.on_gone()
