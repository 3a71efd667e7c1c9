"""Check a built sdist and wheel (run by ``./dev.sh -s package``).

Usage: ``python tests/dist_check.py DIST_DIR PYTHON_VERSION...``: DIST_DIR holds exactly one
``livekit_py-*.whl`` and one ``livekit_py-*.tar.gz``; each PYTHON_VERSION (``3.11``...) must
have its classifier. Prints what it checked; exits non-zero naming what is missing.

``python tests/dist_check.py --minimums pyproject.toml`` (run by ``./dev.sh -s lowest``):
each runtime dependency with a ``>=`` minimum is installed at exactly that version.
"""

from __future__ import annotations

import email.parser
import importlib.metadata
import re
import sys
import tarfile
import zipfile
from pathlib import Path

import tomllib

WHEEL_FILES = ("livekit_py/py.typed", "livekit_py/__init__.py", "livekit_py/_proto/__init__.py")
SDIST_FILES = ("LICENSE", "README.md", "pyproject.toml", "src/livekit_py/py.typed")


def check(dist: Path, pythons: list[str]) -> list[str]:
    """What is wrong with the dists in ``dist`` (empty when nothing)."""
    problems: list[str] = []
    (wheel,) = dist.glob("livekit_py-*.whl")
    (sdist,) = dist.glob("livekit_py-*.tar.gz")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        (metadata_name,) = (n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = email.parser.Parser().parsestr(zf.read(metadata_name).decode())
        license_files = [n for n in names if ".dist-info/licenses/" in n]
        license_text = b"".join(zf.read(n) for n in license_files)
    print(f"{wheel.name}: {len(names)} files; licenses: {license_files}")
    problems += [f"wheel lacks {f}" for f in WHEEL_FILES if f not in names]
    if not any(n.endswith("/licenses/LICENSE") for n in license_files):
        problems.append("wheel lacks .dist-info/licenses/LICENSE")
    if b"Apache License" not in license_text or b"Version 2.0" not in license_text:
        problems.append("the wheel's LICENSE is not the Apache-2.0 text")
    if any(n.startswith(("tests/", "signaling/", "benchmarks/")) for n in names):
        problems.append("wheel holds files from outside src/livekit_py")

    expression = metadata.get("License-Expression")
    classifiers = metadata.get_all("Classifier") or []
    urls = metadata.get_all("Project-URL") or []
    print(f"License-Expression: {expression}; Requires-Python: {metadata.get('Requires-Python')}")
    print(f"Project-URL: {urls}")
    print(f"Python classifiers: {[c for c in classifiers if 'Python :: 3.' in c]}")
    if expression != "Apache-2.0":
        problems.append(f"License-Expression is {expression!r}, not 'Apache-2.0'")
    if not urls:
        problems.append("no Project-URL")
    for version in pythons:
        if f"Programming Language :: Python :: {version}" not in classifiers:
            problems.append(f"no classifier for Python {version}")
    requires_python = metadata.get("Requires-Python") or ""
    if f">={pythons[0]}" not in requires_python.replace(" ", ""):
        problems.append(f"Requires-Python is {requires_python!r}, not >={pythons[0]}")
    if "Typing :: Typed" not in classifiers:
        problems.append("no 'Typing :: Typed' classifier")

    with tarfile.open(sdist) as tf:
        members = [m.name.split("/", 1)[1] for m in tf.getmembers() if "/" in m.name]
    print(f"{sdist.name}: {len(members)} files")
    problems += [f"sdist lacks {f}" for f in SDIST_FILES if f not in members]
    return problems


def check_minimums(pyproject: Path) -> list[str]:
    """Runtime dependencies not installed at the minimum ``pyproject`` declares."""
    from packaging.version import Version  # installed with pytest

    project = tomllib.loads(pyproject.read_text())["project"]
    problems: list[str] = []
    for requirement in project["dependencies"]:
        match = re.match(
            r"([A-Za-z0-9_.-]+)\s*(?:\[[^]]*\])?\s*[^;]*?>=\s*([0-9][^,;\s]*)", requirement
        )
        if match is None:
            continue
        name, minimum = match.groups()
        installed = importlib.metadata.version(name)
        print(f"{name}: declared >={minimum}, installed {installed}")
        if Version(installed) != Version(minimum):
            problems.append(f"{name} {installed} is installed, not its minimum {minimum}")
    return problems


def main() -> int:
    if sys.argv[1] == "--minimums":
        problems = check_minimums(Path(sys.argv[2]))
    else:
        dist, *pythons = sys.argv[1:]
        problems = check(Path(dist), pythons)
    for problem in problems:
        print("PROBLEM:", problem)
    print("dists OK" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
