"""Times in words for people: when a run finished ("today at 14:05 (3 min ago)").

The command line and the app say it the same way (`scaling-lab train` on a stored run, the
Runs tab); pure Python.
"""

import time


def when_words(t: float | None, now: float | None = None) -> str:
    """When a run finished, in words: 'today at 14:05 (3 min ago)', 'on 2025-03-02 at 09:10 (4 days ago)'."""
    if not t:
        return "at an unknown time"
    now = time.time() if now is None else now
    ago = max(0.0, now - t)
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if ago >= 1.5 * size or unit == "min" and ago >= 60:
            span = f"{ago / size:.0f} {unit}"
            break
    else:
        span = f"{ago:.0f} s"
    local = time.localtime(t)
    day = "today" if time.strftime("%Y%m%d", local) == time.strftime("%Y%m%d", time.localtime(now)) \
        else time.strftime("on %Y-%m-%d", local)
    return f"{day} at {time.strftime('%H:%M', local)} ({span} ago)"
