"""The Node packages of the browser tests: installed once, outside the repository.

``python -m tests.browser.node_env`` runs ``npm ci`` for ``tests/browser/package.json``
and its lock file (``livekit-client`` and ``puppeteer-core``, exact versions; puppeteer's
browser download is off, the tests use Debian's ``chromium``) into
``~/.cache/livekit-py/browser-node-<hash of the lock file>/`` (``$LIVEKIT_PY_CACHE``
moves the cache, as for the server binary) and prints that folder. Later runs with the
same lock file reuse it. The nox ``tests`` session runs it; the tests only look for it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
MANIFESTS = ("package.json", "package-lock.json")
CHROMIUM = "chromium"
_DONE = ".installed"


def cache_root() -> Path:
    """The cache folder shared with ``signaling/livekit-server``."""
    explicit = os.environ.get("LIVEKIT_PY_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "livekit-py"


def modules_dir() -> Path:
    """Where the packages for the current lock file are (or would be) installed."""
    digest = hashlib.sha256()
    for name in MANIFESTS:
        digest.update((HERE / name).read_bytes())
    return cache_root() / f"browser-node-{digest.hexdigest()[:16]}"


def installed() -> Path | None:
    """The install folder when a complete install is there, else None."""
    target = modules_dir()
    return target if (target / _DONE).is_file() else None


def install() -> Path:
    """Install the packages (once per lock file) and return the folder holding node_modules."""
    done = installed()
    if done is not None:
        return done
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed for the browser tests (Debian: apt-get install npm)")
    target = modules_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    # Install into a fresh folder beside the target, then rename: an interrupted
    # install never looks complete.
    work = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        for name in MANIFESTS:
            shutil.copy2(HERE / name, work / name)
        env = dict(os.environ, PUPPETEER_SKIP_DOWNLOAD="1", PUPPETEER_SKIP_CHROME_DOWNLOAD="1")
        subprocess.run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=work,
            env=env,
            check=True,
            stdout=sys.stderr,
        )
        (work / _DONE).write_text("")
        if target.exists():
            shutil.rmtree(target)
        work.rename(target)
    finally:
        if work.exists():
            shutil.rmtree(work)
    return target


if __name__ == "__main__":
    print(install())
