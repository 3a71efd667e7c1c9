"""Developer sessions: tests, lint, typecheck, demo, bench, protos.

Run them through ``./dev.sh`` (which installs nox into a private virtualenv on
first use), e.g. ``./dev.sh -s tests`` or ``./dev.sh -s tests -- -k interop``.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

SERVER_SCRIPT = "signaling/livekit-server"


def _install_server(session: nox.Session) -> None:
    """Build (once; cached outside the repository) the pinned real livekit-server."""
    session.run(SERVER_SCRIPT, "install", external=True)


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite against a real livekit-server (built with Go on first use)."""
    session.install("-e", ".[test]")
    _install_server(session)
    session.run("pytest", *(session.posargs or ["-ra", "tests"]))


@nox.session
def lint(session: nox.Session) -> None:
    """ruff lint and format check."""
    session.install("ruff>=0.6")
    paths = ["src", "tests", "signaling", "examples", "benchmarks", "noxfile.py"]
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package."""
    session.install("-e", ".", "mypy>=1.11")
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
