"""``import livekit_py`` / ``from livekit_py import rtc`` load nothing heavy; every public
name still resolves, to the object its module defines."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
HEAVY = ("aiortc", "aioice", "av", "numpy", "scipy", "webrtc_noise_gain", "websockets")


def _fresh(code: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
        timeout=120,
    ).stdout
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def test_importing_the_package_loads_none_of_the_heavy_parts() -> None:
    loaded = _fresh(
        "import json, sys\n"
        "import livekit_py\n"
        "from livekit_py import rtc\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    assert loaded == []


def test_a_name_loads_its_module_on_first_use() -> None:
    loaded = _fresh(
        "import json, sys\n"
        "from livekit_py import rtc\n"
        "rtc.AudioFrame\n"
        "before = 'aiortc' in sys.modules\n"
        "rtc.Room\n"
        "print(json.dumps({'before': before, 'after': 'aiortc' in sys.modules}))"
    )
    assert loaded == {"before": False, "after": True}


def test_every_public_name_resolves_to_its_modules_object() -> None:
    import livekit_py
    from livekit_py import rtc

    for name in rtc.__all__:
        value = getattr(rtc, name)
        assert getattr(livekit_py, name) is value, name
        module = rtc._LAZY.get(name)
        if module is not None:
            assert value is getattr(importlib.import_module(module, rtc.__name__), name)
        assert name in dir(rtc)
    assert rtc.ConnectionQuality.QUALITY_UNKNOWN == -1  # the IntEnum, not the protobuf enum
    assert rtc.stats is importlib.import_module("livekit_py.rtc.stats")
    assert livekit_py.stats is rtc.stats
    assert rtc.utils is importlib.import_module("livekit_py.rtc.utils")


def test_an_unknown_name_is_an_attribute_error() -> None:
    from livekit_py import rtc

    with pytest.raises(AttributeError, match="no_such_name"):
        rtc.no_such_name  # noqa: B018
    with pytest.raises(AttributeError):
        import livekit_py

        livekit_py.no_such_name  # noqa: B018
    with pytest.raises(ImportError):
        from livekit_py.rtc import no_such_name  # noqa: F401


def test_an_audio_track_does_not_load_the_microphone_stack() -> None:
    """scipy (about 90 MiB) comes with audio processing, not with publishing audio."""
    loaded = _fresh(
        "import json, sys\n"
        "from livekit_py import rtc\n"
        "source = rtc.AudioSource(48000, 1)\n"
        "rtc.LocalAudioTrack.create_audio_track('t', source)\n"
        "rtc.AudioStream, rtc.VideoSource, rtc.VideoStream\n"
        "print(json.dumps([m for m in ('scipy', 'webrtc_noise_gain') if m in sys.modules]))"
    )
    assert loaded == []
