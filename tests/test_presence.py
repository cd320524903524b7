import asyncio

from widgets.presence import Presence


def test_presence_calls_back_once_when_the_beats_stop():
    calls = []

    async def scenario():
        presence = Presence(lambda: calls.append("gone"), timeout=0.2)
        assert not presence.gone()                 # no page yet: nothing is gone
        presence.beat()
        await asyncio.sleep(0.1)
        assert not calls
        await asyncio.sleep(5.5)                   # the watcher wakes every min(5, timeout/2) s
        presence.task.cancel()
        return presence

    presence = asyncio.run(scenario())
    assert calls == ["gone"] and presence.last is None


def test_a_page_that_never_says_hello_gets_a_new_heartbeat_widget():
    from widgets import presence as pr
    p = pr.Presence(lambda: None)
    first = p.heartbeat
    assert not p.retry(now=1e9)                      # not expected yet: the page has not opened
    p.expect()
    assert not p.retry(now=p._expected + 1)          # too soon
    assert p.retry(now=p._expected + pr.RETRY_S + 1)
    assert p.heartbeat is not first and p.widget.children == (p.heartbeat,) and p.retries == 1
    p.message({"hello": "abc", "name": ""})          # it said hello: no more retries
    assert not p.retry(now=1e12)
