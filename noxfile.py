"""Developer sessions: tests, lint, typecheck, demo, bench, protos, docs.

Run them through ``./dev.sh`` (which installs nox into a private virtualenv on
first use), e.g. ``./dev.sh -s tests`` or ``./dev.sh -s tests -- -k interop``.
"""

from __future__ import annotations

import shutil

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
    session.install("-e", ".[test]")
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
    session.install("-e", ".[cli]", "mypy>=1.11")
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
    session.install("-e", ".[bench,test]")
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
