"""The docs a user reads: every relative link in the README and docs/ leads to a file of the repository."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_every_relative_link_resolves():
    broken = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in LINK.findall(page.read_text()):
            if target.startswith(("http://", "https://", "#", "mailto:")):
                continue
            if not (page.parent / target.split("#")[0]).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert broken == []


def test_the_readme_stays_short_and_never_points_outside_the_repository():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) < 150
    assert "../shared" not in readme and not any("../shared" in p.read_text() for p in (ROOT / "docs").glob("*.md"))
