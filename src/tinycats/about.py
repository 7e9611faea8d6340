"""What the installed package says of itself: the project's URLs, from its metadata (pyproject.toml's
[project.urls], written into the wheel or the editable install as `Project-URL` lines).

The model card and the page name the project only through this, so a URL is set in one place, and
where none is set they print none: no made-up homepage, no organisation that does not exist.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, metadata


def project_urls(distribution: str = "tinycats") -> dict[str, str]:
    """{label: URL} in the order pyproject.toml lists them; {} when none is set (or not installed)."""
    try:
        entries = metadata(distribution).get_all("Project-URL") or []
    except PackageNotFoundError:
        return {}
    urls = {}
    for entry in entries:
        label, _, url = entry.partition(",")
        if url.strip().startswith(("https://", "http://")):
            urls[label.strip()] = url.strip()
    return urls
