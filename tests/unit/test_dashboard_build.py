"""The committed dashboard build (api/static/dashboard/) is the build of the committed
sources (api/dashboard/): changing a source without running scripts/build_dashboard fails
here, so what `tradetape serve` shows is what the sources say."""

from __future__ import annotations

import re
import shutil

from api.dashboard_build import (
    BUILD_DIR,
    SOURCES_DIR,
    recorded_hash,
    source_files,
    source_hash,
)


def test_the_committed_build_was_made_from_the_committed_sources():
    assert recorded_hash() == source_hash(), (
        "api/dashboard/ changed since api/static/dashboard/ was built: run "
        "scripts/build_dashboard and commit the result")


def test_any_change_to_a_source_changes_the_hash(tmp_path):
    copy = tmp_path / "dashboard"
    for path in source_files():
        target = copy / path.relative_to(SOURCES_DIR)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    assert source_hash(copy) == source_hash()
    app = copy / "src" / "App.tsx"
    app.write_text(app.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert source_hash(copy) != source_hash()
    (copy / "src" / "extra.ts").write_text("", encoding="utf-8")  # a new file counts too
    renamed = source_hash(copy)
    (copy / "src" / "extra.ts").rename(copy / "src" / "extra2.ts")
    assert source_hash(copy) != renamed


def test_the_page_loads_only_the_built_assets_from_the_server_itself():
    page = (BUILD_DIR / "index.html").read_text(encoding="utf-8")
    urls = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert any(u.endswith(".js") for u in urls)
    for url in urls:
        if url == "data:,":
            continue
        assert url.startswith("/dashboard/assets/"), url
        assert (BUILD_DIR / url.removeprefix("/dashboard/")).is_file(), url


def test_node_modules_is_never_committed_and_the_lock_is():
    assert "node_modules/" in (SOURCES_DIR / ".gitignore").read_text(encoding="utf-8").split()
    assert (SOURCES_DIR / "package-lock.json").is_file()
