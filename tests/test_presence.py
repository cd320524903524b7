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
