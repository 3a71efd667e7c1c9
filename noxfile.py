"""Developer sessions: tests, lint, typecheck, demo, bench, protos, docs, and packaging checks.

Run them through ``./dev.sh`` (which installs nox into a private virtualenv on
first use), e.g. ``./dev.sh -s tests`` or ``./dev.sh -s tests -- -k interop``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

SERVER_SCRIPT = "signaling/livekit-server"


def _install_server(session: nox.Session) -> None:
    """Build (once; cached outside the repository) the pinned real livekit-server."""
    session.run(SERVER_SCRIPT, "install", external=True)


def _install_browser_packages(session: nox.Session) -> None:
    """npm ci, once per lock file and cached outside the repository, for the browser tests.

    livekit-client and puppeteer-core, pinned in tests/browser/package-lock.json. Without
    npm the browser tests skip (or fail, under LIVEKIT_PY_REQUIRE_BROWSER=1 as in CI).
    """
    if shutil.which("npm") is None:
        session.warn("npm not found: the browser tests (tests/integration/test_browser.py) skip")
        return
    session.run("python", "-m", "tests.browser.node_env")


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite against a real livekit-server (built with Go on first use)."""
    session.install("-e", ".[test,webrtc-noise-gain]")
    _install_server(session)
    _install_browser_packages(session)
    session.run("pytest", *(session.posargs or ["-ra", "tests"]))


@nox.session
def lint(session: nox.Session) -> None:
    """ruff lint and format check."""
    session.install("ruff>=0.6")
    paths = [
        "src",
        "tests",
        "signaling",
        "examples",
        "benchmarks",
        "docs/hooks.py",
        "docs/griffe_roles.py",
        "noxfile.py",
    ]
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package."""
    # livekit-api: the examples make tokens with it when it is installed
    session.install("-e", ".[cli]", "mypy>=1.11", "livekit-api>=1.0")
    session.run("mypy")


@nox.session
def demo(session: nox.Session) -> None:
    """Start a local livekit-server and run the demo: participants join and exchange data."""
    session.install("-e", ".[demo]")
    _install_server(session)
    session.run("python", "-m", "signaling.demo", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks, ours against the official SDK: ``./dev.sh -s bench -- --quick``."""
    # webrtc-noise-gain: the audio processing module measured is the one users get
    session.install("-e", ".[bench,test,webrtc-noise-gain]")
    _install_server(session)
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session
def protos(session: nox.Session) -> None:
    """Regenerate src/livekit_py/_proto from protos/ (the generated code is committed)."""
    # protoc 25 output runs on every protobuf runtime from 4.25 on, including 5.x-7.x.
    session.install("grpcio-tools==1.62.3")
    session.run(
        "python",
        "-m",
        "grpc_tools.protoc",
        "-Iprotos",
        "--python_out=src/livekit_py/_proto",
        "--pyi_out=src/livekit_py/_proto",
        "protos/livekit_py_types.proto",
        "protos/livekit_py_stats.proto",
    )


# The documentation toolchain, pinned so that a --strict build means the same everywhere.
DOCS_REQUIREMENTS = [
    "mkdocs==1.6.1",
    "mkdocs-material==9.8.2",
    "mkdocstrings[python]==1.0.8",
    "mkdocstrings-python==2.0.11",
    "griffelib==2.4.1",
    "mkdocs-autorefs==1.4.5",
    "pymdown-extensions==13.1.2",
    # mkdocstrings formats the separate signatures with it
    "ruff==0.17.6",
]


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation site into site/ with ``mkdocs build --strict``.

    ``./dev.sh -s docs -- serve`` serves it instead (any mkdocs arguments after ``--``).
    """
    # The package itself too, so that griffe can inspect what it cannot read statically.
    session.install(*DOCS_REQUIREMENTS, ".")
    session.env["NO_MKDOCS_2_WARNING"] = "1"  # mkdocs-material's banner about its successor
    session.run("mkdocs", *(session.posargs or ["build", "--strict"]))


# -- packaging: supported Pythons, lowest versions, wheels everywhere, the dists ----------
# `./dev.sh -s unit` (the unit tests on each supported Python), `-s lowest`, `-s wheels`,
# `-s fallback`, `-s package`. These use uv (dev.sh installs it beside nox).

PYTHONS = ["3.11", "3.12", "3.13"]
UNIT_TESTS = ["-q", "-p", "no:cacheprovider", "tests/unit"]
# uv would otherwise try to download a missing interpreter; a missing one is reported by
# nox (a failure when CI is set: nox's --error-on-missing-interpreters defaults to it).
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")
nox.options.download_python = "never"  # (python-build-standalone is not reachable here)


def _add_pyenv_pythons_to_path() -> None:
    """Put pyenv's installed interpreters (``~/.pyenv/versions/3.X.Y``) on PATH for nox.

    pyenv's shims only run the versions selected with ``pyenv global``, so nox and uv
    would not find the others through them.
    """
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found: dict[str, Path] = {}
    for version in PYTHONS:
        candidates = sorted(
            (p for p in root.glob(f"{version}.*") if (p / "bin" / f"python{version}").exists()),
            key=lambda p: tuple(int(x) for x in p.name.split(".") if x.isdigit()),
        )
        if candidates:
            found[version] = candidates[-1] / "bin"
    if found:
        path = os.environ.get("PATH", "")
        os.environ["PATH"] = os.pathsep.join([*(str(p) for p in found.values()), path])


_add_pyenv_pythons_to_path()


@nox.session(python=PYTHONS, venv_backend="uv")
def unit(session: nox.Session) -> None:
    """The unit tests on each supported Python (``-s unit-3.12`` for one)."""
    session.install("-e", ".[test,webrtc-noise-gain]")
    session.run("pytest", *(session.posargs or UNIT_TESTS))


@nox.session(python=PYTHONS[0], venv_backend="uv")
def lowest(session: nox.Session) -> None:
    """The unit tests with every dependency at the minimum pyproject.toml declares.

    Transitive dependencies are at their lowest too (with a wheel for this Python), so a
    direct one is not lifted by a newer transitive one; dist_check.py then checks that
    each direct dependency is installed at exactly its declared minimum.
    """
    session.install(
        "--reinstall", "--resolution", "lowest", "--only-binary", ":all:",
        "--no-binary", "livekit-py", "-e", ".[test,webrtc-noise-gain]",
    )  # fmt: skip
    session.run("uv", "pip", "list", external=True)
    session.run("python", "tests/dist_check.py", "--minimums", "pyproject.toml")
    session.run("pytest", *(session.posargs or UNIT_TESTS))


@nox.session(venv_backend="uv")
def fallback(session: nox.Session) -> None:
    """The unit tests with our own noise suppressor (webrtc-noise-gain not installed)."""
    session.install("-e", ".[test]")
    session.run(
        "pytest", *(session.posargs or UNIT_TESTS), env={"LIVEKIT_PY_NOISE_SUPPRESSOR": "spectral"}
    )


# (uv target, its wheel tag in words); uv checks each dependency has a wheel for it
PLATFORMS = [
    ("x86_64-manylinux_2_28", "manylinux x86_64"),
    ("aarch64-manylinux_2_28", "manylinux aarch64"),
    ("x86_64-unknown-linux-musl", "musllinux x86_64"),
    ("aarch64-unknown-linux-musl", "musllinux aarch64"),
    ("aarch64-apple-darwin", "macOS arm64"),
    ("x86_64-apple-darwin", "macOS x86_64"),
    ("x86_64-pc-windows-msvc", "Windows amd64"),
]
# The one dependency (aiortc's) with no wheel somewhere: google-crc32c has musllinux
# wheels only up to CPython 3.11 (1.5.0); its sdist needs no compiler (without one it
# builds its pure-Python fallback), so it may build there, and only there.
SOURCE_BUILDS = {"musl": ["google-crc32c"]}


def _resolve(
    session: nox.Session, requirement: str, target: str, python: str, sources: list[str]
) -> str | None:
    """``uv pip compile`` of one requirement for one platform and Python, wheels only
    except for ``sources``: the pins, or None when it does not resolve."""
    args = ["--only-binary", ":all:", *(a for p in sources for a in ("--no-binary", p))]
    requirements = Path(session.create_tmp()) / "requirement.in"
    requirements.write_text(requirement + "\n")
    out = session.run(
        "uv", "pip", "compile", str(requirements), "--quiet", "--no-header", "--no-annotate",
        "--python-platform", target, "--python-version", python, *args,
        external=True, silent=True, success_codes=[0, 1],
    )  # fmt: skip
    text = str(out)
    return None if "No solution found" in text else text


@nox.session(venv_backend="uv")
def wheels(session: nox.Session) -> None:
    """Resolve livekit-py (and its webrtc-noise-gain extra) to wheels on every platform.

    Resolution only: nothing is installed or run.  The extra must bring webrtc-noise-gain
    on manylinux, nothing on macOS and Windows (its marker), and cannot be used on musl
    (no marker tells musl from glibc: README says so).  Resolving webrtc-noise-gain alone
    must fail on Windows (it never had a wheel there), so the check does check.
    """
    dist = Path(session.create_tmp()) / "wheels-dist"
    shutil.rmtree(dist, ignore_errors=True)
    session.run("uv", "build", "--wheel", "-q", "-o", str(dist), external=True)
    (wheel,) = dist.glob("*.whl")
    ours = f"livekit-py @ {wheel.resolve().as_uri()}"
    extra = ours.replace(" @", "[webrtc-noise-gain] @")
    for target, name in PLATFORMS:
        for python in PYTHONS:
            sources: list[str] = []
            plain = _resolve(session, ours, target, python, sources)
            if plain is None:
                sources = [p for key, pkgs in SOURCE_BUILDS.items() if key in target for p in pkgs]
                plain = _resolve(session, ours, target, python, sources) if sources else None
            if plain is None:
                session.error(f"{name} {python}: a dependency has no wheel")
            pins = dict(line.partition("==")[::2] for line in plain.split() if "==" in line)
            if "webrtc-noise-gain" in pins:
                session.error(f"{name} {python}: webrtc-noise-gain without the extra")
            with_extra = _resolve(session, extra, target, python, sources)
            if "musl" in target:
                if with_extra is not None:
                    session.error(f"{name} {python}: the extra resolves on musl: update README")
                note = "; the extra cannot be used"
            else:
                has_ns = with_extra is not None and "webrtc-noise-gain==" in with_extra
                if with_extra is None or has_ns != ("manylinux" in target):
                    session.error(f"{name} {python}: webrtc-noise-gain resolved wrongly")
                note = "; + webrtc-noise-gain with the extra" if has_ns else ""
            versions = ", ".join(f"{p} {pins[p]}" for p in ("aiortc", "av", "numpy", "scipy"))
            built = f"; from source: {', '.join(sources)}" if sources else ""
            session.log(f"{name:18} {python}: {len(pins)} packages ({versions}){built}{note}")
    control = "webrtc-noise-gain>=1.2"
    if _resolve(session, control, "x86_64-pc-windows-msvc", PYTHONS[0], []) is not None:
        session.error(f"control: {control} resolved on Windows: the check checks nothing")
    session.log(f"control: {control} alone does not resolve on Windows, as expected")


@nox.session(venv_backend="uv")
def package(session: nox.Session) -> None:
    """Build the sdist and the wheel, check what they hold, import the wheel outside the repo."""
    dist = Path(session.create_tmp()) / "package-dist"
    shutil.rmtree(dist, ignore_errors=True)
    session.run("uv", "build", "-q", "-o", str(dist), external=True)
    session.run("python", "tests/dist_check.py", str(dist), *PYTHONS)
    (wheel,) = dist.glob("*.whl")
    session.install("--reinstall-package", "livekit-py", str(wheel))
    with session.chdir(dist):
        session.run(
            "python", "-c",
            "import livekit_py, livekit_py.rtc as rtc; "
            "assert 'site-packages' in livekit_py.__file__, livekit_py.__file__; "
            "print('imported', livekit_py.__file__, rtc.Room)",
        )  # fmt: skip
