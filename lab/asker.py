"""Who asks for runs: a page of the app, its browser, a display name and a role (student or teacher).

The store records a run's asker and lets a student delete only what they asked for
(`lab.store.RunStore.delete`); the queue orders its runs by asker (`lab.runqueue`).
"""

from dataclasses import dataclass

from lab.i18n import _
from lab.storedb import StoreError

ROLES = ("student", "teacher")
NAME_MAX = 40


def clean_name(name: str) -> str:
    """A display name as typed: whitespace collapsed, control characters dropped, at most
    NAME_MAX characters. It is shown escaped wherever it appears (never as markup)."""
    text = " ".join("".join(ch for ch in str(name) if ch.isprintable()).split())
    return text[:NAME_MAX]


@dataclass(frozen=True)
class Asker:
    """Who asks for runs: a page of the app, the browser it runs in (`client`, the same for a
    browser's tabs), a display name, and a role (student, or the teacher holding the token)."""
    client: str
    name: str = ""
    role: str = "student"
    page: str = ""

    def __post_init__(self):
        if self.role not in ROLES:
            raise StoreError(f"role must be student or teacher, got {self.role!r}")
        if not self.client or len(self.client) > 64:
            raise StoreError(f"an asker needs a client id of 1 to 64 characters, got {self.client!r}")
        object.__setattr__(self, "name", clean_name(self.name))

    @property
    def teacher(self) -> bool:
        return self.role == "teacher"

    @property
    def label(self) -> str:
        """The name shown for this asker, in the current language when it has none (only shown:
        the store and the queue keep `name`, never this label)."""
        return self.name or _("guest {id}").format(id=self.client[:4])
