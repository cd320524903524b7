"""Times in words for people: when a run finished ("today at 14:05 (3 min ago)").

The command line and the app say it the same way (`scaling-lab train` on a stored run, the
Runs tab), each in its language (`lab.i18n`: English on the command line); pure Python.
"""

import time

from lab.i18n import N_, _


def when_words(t: float | None, now: float | None = None) -> str:
    """When a run finished, in words: 'today at 14:05 (3 min ago)', 'on 2025-03-02 at 09:10 (4 days ago)'."""
    if not t:
        return _("at an unknown time")
    now = time.time() if now is None else now
    ago = max(0.0, now - t)
    for words, size in ((N_("{n} days"), 86400), (N_("{n} h"), 3600), (N_("{n} min"), 60)):   # days: 2 or more
        if ago >= 1.5 * size or size == 60 and ago >= 60:
            span = _(words).format(n=f"{ago / size:.0f}")
            break
    else:
        span = f"{ago:.0f} s"                     # a unit symbol, the same in every language
    local = time.localtime(t)
    clock = time.strftime("%H:%M", local)
    if time.strftime("%Y%m%d", local) == time.strftime("%Y%m%d", time.localtime(now)):
        return _("today at {time} ({span} ago)").format(time=clock, span=span)
    return _("on {date} at {time} ({span} ago)").format(date=time.strftime("%Y-%m-%d", local), time=clock, span=span)
