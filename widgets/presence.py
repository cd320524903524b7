"""Is anyone still looking? A heartbeat from the page, so that a job stops when its page is gone;
and the browser's own id and the student's name, kept in the browser across reloads.

Voila cannot always shut a kernel down when its tab closes or reloads (voila#1458: the
request sent while a page unloads is often lost), so the page sends a small message every few
seconds (an anywidget, no extra package); when they stop coming for `timeout` seconds, the
controller ends the page's job (its queued runs leave the queue, a run nobody else waits for
stops), and the server's idle culler (`scaling-lab app --cull-idle`) shuts the kernel down; the
training service then drops whatever the dead kernel still asked for.

The first message also says who the browser is: an id kept in the browser's localStorage (the
same for its tabs and after a reload, so that a student's runs stay theirs) and the display
name the student typed last. The kernel sends a new name back to be kept.

Browsers slow timers in hidden tabs to about one per minute, so the default timeout (90 s,
`SCALING_LAB_PAGE_TIMEOUT`) lets a student switch tabs without losing a run.
"""

import asyncio
import os
import time

import anywidget
import ipywidgets as ipw

BEAT_S = 5.0
RETRY_S = 12.0          # a page that has not said hello this long after it opened gets a new heartbeat widget
RETRIES = 6             # (anywidget gives up on a model whose module takes over 2 s to load: a busy page)
STORE_BEAT_S = 15.0     # the store hears a page's heartbeat at most this often (the teacher's view reads it)


def page_timeout() -> float:
    return float(os.environ.get("SCALING_LAB_PAGE_TIMEOUT", "90"))


class Heartbeat(anywidget.AnyWidget):
    """An invisible widget whose page-side half says who the browser is, then beats every BEAT_S."""

    _esm = """
    function clientId() {
      const key = "scaling-lab-client";
      let id = null;
      try { id = window.localStorage.getItem(key); } catch (e) {}
      if (!id || !/^[0-9a-z]{8,32}$/.test(id)) {
        id = Array.from({length: 16}, () => Math.floor(Math.random() * 36).toString(36)).join("");
        try { window.localStorage.setItem(key, id); } catch (e) {}
      }
      return id;
    }
    function render({ model, el }) {
      el.style.display = "none";
      let name = "";
      try { name = window.localStorage.getItem("scaling-lab-name") || ""; } catch (e) {}
      model.send({ hello: clientId(), name: name });
      const beat = () => model.send({ beat: Date.now() });
      beat();
      const id = setInterval(beat, %d);
      model.on("msg:custom", (msg) => {
        if (msg && typeof msg.name === "string") {
          try { window.localStorage.setItem("scaling-lab-name", msg.name); } catch (e) {}
        }
      });
      return () => clearInterval(id);
    }
    export default { render };
    """ % int(BEAT_S * 1000)


class Presence:
    """Watches the heartbeat; calls `on_gone` once when a page that was there stops beating,
    `on_hello(client, name)` when the browser says who it is, `on_beat()` at every beat."""

    def __init__(self, on_gone, timeout: float | None = None, *, on_hello=None, on_beat=None):
        self.heartbeat = self._heartbeat()
        self.widget = ipw.Box([self.heartbeat], layout=ipw.Layout(display="none"))
        self.timeout = page_timeout() if timeout is None else timeout
        self.last: float | None = None
        self._told: float | None = None   # when the store last heard that this page is alive
        self._expected: float | None = None
        self.retries = 0
        self.on_gone, self.on_hello, self.on_beat = on_gone, on_hello, on_beat
        self.task = None
        try:
            self.task = asyncio.get_running_loop().create_task(self._watch())
        except RuntimeError:  # no event loop (a plain script): nothing to watch
            pass

    def _heartbeat(self) -> Heartbeat:
        w = Heartbeat()
        w.on_msg(lambda _w, content, _b: self.message(content))
        return w

    def expect(self) -> None:
        """A page has opened: it should say hello soon (else its heartbeat is made anew)."""
        self._expected = time.monotonic()

    def retry(self, now: float | None = None) -> bool:
        """A page that opened but never said hello: its heartbeat widget failed to start (anywidget
        gives up after 2 s on a busy page); give it a new one. Returns whether it did."""
        now = time.monotonic() if now is None else now
        if self.last is not None or self._expected is None or now - self._expected < RETRY_S or \
                self.retries >= RETRIES:
            return False
        self.retries += 1
        self._expected = now
        old, self.heartbeat = self.heartbeat, self._heartbeat()
        self.widget.children = (self.heartbeat,)
        old.close()
        return True

    def message(self, content) -> None:
        if isinstance(content, dict) and "hello" in content and self.on_hello is not None:
            self.on_hello(str(content.get("hello", "")), str(content.get("name", "")))
        self.beat()

    def remember_name(self, name: str) -> None:
        """Ask the browser to keep the student's name for the next visit."""
        self.heartbeat.send({"name": name})

    def beat(self) -> None:
        self.last = now = time.monotonic()
        if self.on_beat is not None and (self._told is None or now - self._told >= STORE_BEAT_S):
            self._told = now
            self.on_beat()

    def gone(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return self.last is not None and now - self.last > self.timeout

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(min(BEAT_S, self.timeout / 2))
            self.retry()
            if self.gone():
                self.last = None          # once per disappearance; a page that comes back beats again
                self.on_gone()
