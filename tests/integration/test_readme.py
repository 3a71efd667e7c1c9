"""The README's quickstart runs as printed, against the test server."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from signaling import local_server

README = Path(__file__).resolve().parents[2] / "README.md"


def _quickstart() -> tuple[str, list[str]]:
    """(the quickstart's code, the lines the README says it prints)."""
    text = README.read_text()
    section = text[text.index("### Quickstart") :]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    printed = re.search(r"```text\n(.*?)```", section, re.S)
    assert code is not None and printed is not None
    return code.group(1), printed.group(1).strip().splitlines()


def test_the_quickstart_prints_what_the_readme_says(server_url: str, tmp_path: Path) -> None:
    code, expected = _quickstart()
    assert 'URL = "ws://127.0.0.1:7880"' in code
    assert f'"{local_server.API_KEY}", "{local_server.API_SECRET}"' in code
    script = tmp_path / "quickstart.py"
    script.write_text(code.replace("ws://127.0.0.1:7880", server_url))
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines() == expected
