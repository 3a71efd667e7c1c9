"""The public API lives in modules named as the official SDK's (``livekit.rtc.<module>``).

Code written for the official SDK imports names from its modules, e.g.
``from livekit.rtc.room import EventTypes`` or ``from livekit.rtc.rpc import
RpcInvocationData``; with ``livekit`` changed to ``livekit_py`` each such line must work.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import typing

import pytest

official = pytest.importorskip("livekit.rtc")

import livekit_py  # noqa: E402
from livekit_py import rtc as ours  # noqa: E402

# Official modules that are not part of the API or that need packages we do not ship
# (IPython for jupyter).
_NOT_API = {"jupyter", "log", "resources", "version"}


def _official_modules() -> list[str]:
    return sorted(
        m.name
        for m in pkgutil.iter_modules(official.__path__)
        if not m.name.startswith("_") and m.name not in _NOT_API
    )


def _names_of(module_name: str) -> set[str]:
    """Public names the official module defines: classes, functions and type aliases."""
    module = importlib.import_module(f"livekit.rtc.{module_name}")
    names: set[str] = set()
    for name in dir(module):
        if name.startswith("_") or name in vars(typing):
            continue
        value = getattr(module, name)
        if inspect.ismodule(value):
            continue
        home = getattr(value, "__module__", None)
        # a type alias such as room.EventTypes (a Literal) reports typing as its module
        if home == module.__name__ or home == "typing":
            names.add(name)
    return names


def _implemented(name: str) -> bool:
    return hasattr(ours, name)


@pytest.mark.parametrize("module_name", _official_modules())
def test_official_module_names_import_from_the_same_module(module_name: str) -> None:
    wanted = {n for n in _names_of(module_name) if _implemented(n)}
    if not wanted:
        pytest.skip(f"livekit_py implements nothing of livekit.rtc.{module_name} yet")
    module = importlib.import_module(f"livekit_py.rtc.{module_name}")
    missing = sorted(n for n in wanted if not hasattr(module, n))
    assert not missing, f"livekit_py.rtc.{module_name} lacks {missing}"
    for name in wanted:
        assert getattr(module, name) is getattr(ours, name), (
            f"livekit_py.rtc.{module_name}.{name} is not the object livekit_py.rtc exports"
        )


def test_the_examples_from_official_code_import() -> None:
    from livekit_py.rtc.audio_frame import AudioFrame
    from livekit_py.rtc.room import EventTypes
    from livekit_py.rtc.rpc import RpcInvocationData
    from livekit_py.rtc.utils import combine_audio_frames

    assert EventTypes is ours.EventTypes
    assert (AudioFrame, RpcInvocationData, combine_audio_frames) == (
        ours.AudioFrame,
        ours.RpcInvocationData,
        ours.combine_audio_frames,
    )


def test_top_level_and_rtc_export_the_same_names() -> None:
    assert set(livekit_py.__all__) == set(ours.__all__)
    for name in ours.__all__:
        assert getattr(livekit_py, name) is getattr(ours, name)
    assert livekit_py.stats is ours.stats


# ConnectError is raised by the signal client, a layer below the room, so it is defined
# in livekit_py.errors and re-exported by livekit_py.rtc.room.
_DEFINED_BELOW = {"ConnectError"}


def test_a_public_class_is_defined_in_the_official_module_of_its_name() -> None:
    """A reader finds a class where the official SDK has it, not only a re-export."""
    misplaced = []
    for module_name in _official_modules():
        module = importlib.import_module(f"livekit.rtc.{module_name}")
        for name in dir(module):
            value = getattr(module, name)
            if not inspect.isclass(value) or value.__module__ != module.__name__:
                continue
            if name.startswith("_") or name in _DEFINED_BELOW or not _implemented(name):
                continue
            mine = getattr(ours, name)
            if inspect.isclass(mine) and mine.__module__ != f"livekit_py.rtc.{module_name}":
                misplaced.append(f"{name}: {mine.__module__} (official {module.__name__})")
    assert not misplaced, misplaced
