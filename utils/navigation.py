"""The dashboard's pages and who may open them: the one list the navigation, the gate and the tests read.

A page is reachable only through ``app.py``'s gate: it registers with ``st.navigation`` the pages of the
logged-in user's role and nothing else (strangers get the login form under every path), so a page that is
not in :data:`PAGES` never runs, and an admin page is not even known to an operator's session.
"""

from __future__ import annotations

from dataclasses import dataclass

from utils.auth import Role, User

ROLE_RANK: dict[Role, int] = {"operator": 0, "admin": 1}


@dataclass(frozen=True)
class PageSpec:
    """One page of the dashboard."""

    script: str  # path of the page script, relative to the project root (``pages/...``)
    title: str
    icon: str
    url_path: str  # the page's URL: http://host:8501/<url_path> (the default page also answers at /)
    role: Role  # the lowest role that may open it
    default: bool = False
    modes: tuple[str, ...] = ("station",)  # APP_MODE values that show it (central: the office's archive view)


PAGES: tuple[PageSpec, ...] = (
    PageSpec("pages/capture.py", "Capture", ":material/photo_camera:", "capture", "operator", default=True),
    PageSpec("pages/gallery.py", "Gallery", ":material/photo_library:", "gallery", "operator"),
    PageSpec("pages/statistics_page.py", "Statistics", ":material/bar_chart:", "statistics", "admin"),
    PageSpec("pages/editor.py", "Editor", ":material/edit:", "editor", "admin"),
    PageSpec("pages/web_import.py", "Web import", ":material/travel_explore:", "import", "admin"),
    PageSpec("pages/extract.py", "Extract", ":material/movie:", "extract", "admin"),
    PageSpec("pages/upload.py", "Upload analysis", ":material/upload:", "upload", "admin"),
    PageSpec("pages/camera.py", "Camera settings", ":material/camera:", "camera", "admin"),
    PageSpec("pages/settings.py", "Settings", ":material/settings:", "settings", "admin"),
    PageSpec("pages/archive.py", "Archive", ":material/cloud:", "archive", "operator", modes=("station", "central")),
    PageSpec("pages/archive_stats.py", "Archive statistics", ":material/monitoring:", "archive-statistics", "admin",
             modes=("station", "central")),
)

# Who may send files to Streamlit's upload endpoint: the roles of the pages that hold a file uploader.
UPLOAD_ROLE: Role = "admin"


def has_role(user: User | None, role: Role) -> bool:
    """Whether ``user`` (None: nobody logged in) holds ``role`` or a higher one."""
    return user is not None and ROLE_RANK.get(user.role, -1) >= ROLE_RANK[role]


def pages_for(user: User | None, mode: str = "station") -> list[PageSpec]:
    """The pages ``user`` may open in this APP_MODE, in menu order (none for a stranger)."""
    return [p for p in PAGES if has_role(user, p.role) and mode in p.modes]


def page_for_script(script: str) -> PageSpec | None:
    """The registry entry of a page script (``pages/x.py`` or an absolute path ending in it)."""
    norm = script.replace("\\", "/")
    return next((p for p in PAGES if norm == p.script or norm.endswith("/" + p.script)), None)
