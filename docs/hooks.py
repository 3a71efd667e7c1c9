"""MkDocs hooks of the documentation site (``hooks:`` in mkdocs.yml).

- **API reference.** One page per public module of ``livekit_py.rtc`` (every
  ``src/livekit_py/rtc/*.py`` not starting with ``_``), generated at build time and appended
  to the "API reference" section of the nav, grouped as in ``GROUPS``. A module added to
  ``rtc/`` gets its page without touching the docs; one missing from ``GROUPS`` lands under
  "More". Each page is the module's docstrings rendered by mkdocstrings.
- **Benchmark plots.** docs/benchmarks.md is rewritten by ``python -m benchmarks
  --update-docs`` with images at ``../benchmarks/results/*.png`` (so that it reads on a
  repository browser); the site gets copies of those plots under ``assets/benchmarks/`` and
  the links are pointed at them.
- **Pages only some branches have.** Nav entries in ``OPTIONAL_PAGES`` whose file does not
  exist are dropped, so that the nav can list them before they are merged.
"""

from __future__ import annotations

import ast
import logging
import re
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

log = logging.getLogger("mkdocs.hooks.livekit_py")

ROOT = Path(__file__).resolve().parent.parent
RTC_DIR = ROOT / "src" / "livekit_py" / "rtc"
BENCH_RESULTS = ROOT / "benchmarks" / "results"
REFERENCE_SECTION = "API reference"
OPTIONAL_PAGES = {"cli.md", "data-tracks.md", "examples.md", "testing.md"}

# Nav groups of the reference, in order; modules of rtc/ not named here go under "More".
GROUPS: dict[str, list[str]] = {
    "Room and participants": [
        "room",
        "participant",
        "track",
        "track_publication",
        "e2ee",
        "stats",
        "event_emitter",
    ],
    "Data": ["data_stream", "rpc", "data_track", "transcription"],
    "Audio": [
        "audio_frame",
        "audio_source",
        "audio_stream",
        "audio_mixer",
        "audio_resampler",
        "apm",
        "audio_filter",
        "frame_processor",
        "media_devices",
        "platform_audio",
    ],
    "Video": ["video_frame", "video_source", "video_stream", "encoded_video", "synchronizer"],
}
# Modules outside rtc/ that the public API exposes (livekit_py.rtc re-exports them).
EXTRA_MODULES = {"livekit_py.types": "types", "livekit_py.errors": "errors"}


def rtc_modules() -> list[str]:
    """The public modules of livekit_py.rtc, by file name."""
    return sorted(p.stem for p in RTC_DIR.glob("*.py") if not p.stem.startswith("_"))


def _public_members(module: str) -> list[str] | None:
    """The members to render of a module of rtc/ that has no ``__all__``.

    Such a module's public names are the ones ``livekit_py.rtc`` imports from it, and the
    exceptions it defines (the official modules define theirs there too); module-level
    helpers and constants are its own business. None for a module with ``__all__``,
    which says it.
    """
    if not module.startswith("livekit_py.rtc."):
        return None
    short = module.rsplit(".", 1)[1]
    tree = ast.parse((RTC_DIR / f"{short}.py").read_text())
    if any(
        isinstance(node, ast.Assign)
        and any(getattr(t, "id", "") == "__all__" for t in node.targets)
        for node in tree.body
    ):
        return None
    init = ast.parse((RTC_DIR / "__init__.py").read_text())
    names = [
        alias.asname or alias.name
        for node in ast.walk(init)
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module == short
        for alias in node.names
    ]
    names += [
        node.name
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        and not node.name.startswith("_")
        and any(getattr(b, "id", "").endswith(("Error", "Exception")) for b in node.bases)
    ]
    return sorted(set(names), key=names.index)


def _reference_page(module: str, title: str) -> str:
    if module.startswith("livekit_py.rtc."):
        short = module.rsplit(".", 1)[1]
        intro = (
            f"`{module}`: `from {module} import ...` works as "
            f"`from livekit.rtc.{short} import ...` does with the official SDK. "
            "Everything here is also importable as `from livekit_py import rtc`."
        )
    else:
        intro = (
            f"`{module}`: its public names are re-exported by `livekit_py.rtc` "
            "(as the official SDK's `livekit.rtc` exports them)."
        )
    options = ["show_root_heading: false", "show_root_toc_entry: false", "heading_level: 2"]
    members = _public_members(module)
    if members is not None:
        options.append(f"members: [{', '.join(members)}]")
    return f"# {title} {{ #{module} }}\n\n{intro}\n\n::: {module}\n    options:\n" + "".join(
        f"      {option}\n" for option in options
    )


def _reference_entries() -> list[tuple[str, str, str]]:
    """(nav group, module path, page uri) of every reference page."""
    modules = rtc_modules()
    placed = {m for names in GROUPS.values() for m in names}
    entries = [
        (group, f"livekit_py.rtc.{m}", f"reference/{m}.md")
        for group, names in GROUPS.items()
        for m in names
        if m in modules
    ]
    entries += [
        ("More", f"livekit_py.rtc.{m}", f"reference/{m}.md") for m in modules if m not in placed
    ]
    entries += [("More", path, f"reference/{name}.md") for path, name in EXTRA_MODULES.items()]
    return entries


def _drop_missing_optional(nav: Any, docs_dir: Path) -> Any:
    if isinstance(nav, list):
        kept = [_drop_missing_optional(item, docs_dir) for item in nav]
        return [item for item in kept if item is not None]
    if isinstance(nav, dict):
        out = {}
        for key, value in nav.items():
            value = _drop_missing_optional(value, docs_dir)
            if value is not None:
                out[key] = value
        return out or None
    if isinstance(nav, str) and nav in OPTIONAL_PAGES and not (docs_dir / nav).exists():
        log.info("nav: %s is not in this tree; left out", nav)
        return None
    return nav


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    """Drop absent optional pages from the nav and list the reference pages in it."""
    config.nav = _drop_missing_optional(config.nav, Path(config.docs_dir))
    section = next(
        (item for item in config.nav or [] if isinstance(item, dict) and REFERENCE_SECTION in item),
        None,
    )
    if section is None:
        raise ValueError(f"mkdocs.yml: the nav has no {REFERENCE_SECTION!r} section")
    groups: dict[str, list[dict[str, str]]] = {}
    for group, module, uri in _reference_entries():
        groups.setdefault(group, []).append({module.rsplit(".", 1)[1]: uri})
    section[REFERENCE_SECTION] = list(section[REFERENCE_SECTION]) + [
        {group: pages} for group, pages in groups.items()
    ]
    return config


def on_files(files: Files, *, config: MkDocsConfig) -> Files:
    """Add the generated reference pages and the benchmark plots."""
    for _group, module, uri in _reference_entries():
        title = module.rsplit(".", 1)[1]
        files.append(File.generated(config, uri, content=_reference_page(module, title)))
    for png in sorted(BENCH_RESULTS.glob("*.png")):
        files.append(File.generated(config, f"assets/benchmarks/{png.name}", abs_src_path=str(png)))
    return files


_BENCH_LINK = re.compile(r"\]\(\.\./benchmarks/results/([^)\s]+\.png)\)")


def on_page_markdown(markdown: str, *, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Point links to ../benchmarks/results/*.png at the site's copies."""
    depth = page.file.src_uri.count("/")
    prefix = "../" * depth + "assets/benchmarks/"
    return _BENCH_LINK.sub(lambda m: f"]({prefix}{m.group(1)})", markdown)
