"""The package's layers, read off its source: imports only go downward, and no circles.

docs/architecture.md draws the same picture; this test keeps the code to it.
"""

from __future__ import annotations

import ast
import pathlib
import re

import livekit_py

SRC = pathlib.Path(livekit_py.__file__).parent

# Each module belongs to one layer; a layer may import itself and the layers listed.
_MEDIA_PUBLIC = {
    "rtc.audio_frame",
    "rtc.video_frame",
    "rtc.frame_processor",
    "rtc.utils",
    "rtc.audio_source",
    "rtc.audio_stream",
    "rtc.audio_mixer",
    "rtc.audio_resampler",
    "rtc.video_source",
    "rtc.encoded_video",
    "rtc.video_stream",
    "rtc.apm",
    "rtc.synchronizer",
    "rtc.media_devices",
    "rtc.audio_filter",
    "rtc.platform_audio",
    # notebooks: the embedded room page and the rich display of frames and rooms (the
    # room objects call its renderers; it knows nothing of rooms)
    "rtc.jupyter",
}
_ROOM_PUBLIC = {
    "rtc.room",
    "rtc.participant",
    "rtc.track",
    "rtc.track_publication",
    # the E2EE manager, key provider and frame cryptors are views of session.e2ee
    "rtc.e2ee",
}
# Public value classes the session itself produces and consumes (RPC errors and
# invocation data, stream infos, readers and writers, transcriptions): below the
# session, like the official SDK's protobuf types.
# (data tracks: their frames, infos, errors, tracks and streams, which the session's
# data track manager makes and feeds)
_VALUES = {"rtc.rpc", "rtc.data_stream", "rtc.data_track", "rtc.transcription"}
_BASE = {
    "log",
    "errors",
    "types",
    "_compat",
    "_validate",
    "version",
    "rtc.event_emitter",
    "rtc.stats",
    "session.ports",
    "session.requests",
    # pure bookkeeping of reliable data, used by the engine
    "session.reliable_buffer",
}
_ALLOWED: dict[str, set[str]] = {
    "base": set(),
    "dsp": {"base"},
    "media": {"base", "dsp"},
    "webrtc": {"base", "dsp", "media"},
    "values": {"base"},
    "signal": {"base"},
    "engine": {"base", "signal", "webrtc"},
    "session": {"base", "dsp", "media", "webrtc", "values", "signal", "engine"},
    "room": {"base", "dsp", "media", "webrtc", "values", "signal", "engine", "session"},
    "api": {"base", "dsp", "media", "webrtc", "values", "signal", "engine", "session", "room"},
    # the command line (cli/, ``python -m livekit_py``) sits above the public API and
    # uses only it, as a user's program would (see test_the_cli_uses_only_the_public_api)
    "cli": {"base", "api"},
}
# what the command line may import of ours, besides itself
_CLI_MAY_IMPORT = {"livekit_py", "livekit_py.rtc", "livekit_py.log", "livekit_py.version"}


def _layer(module: str) -> str:
    name = module.removeprefix("livekit_py").lstrip(".")
    top = name.split(".")[0]
    if top == "cli" or name == "__main__":
        return "cli"
    if name in ("", "rtc", "rtc.version"):
        return "api"
    if name in _BASE or top == "_proto":
        return "base"
    if name in _MEDIA_PUBLIC or top == "media":
        return "media"
    if name in _ROOM_PUBLIC:
        return "room"
    if name in _VALUES:
        return "values"
    if top in ("dsp", "webrtc", "signal", "engine", "session"):
        return top
    raise AssertionError(f"{module} has no layer: add it to tests/unit/test_layers.py")


def _modules() -> dict[str, pathlib.Path]:
    found = {}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC.parent).with_suffix("")
        parts = list(rel.parts)
        if "_proto" in parts:
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str, path: pathlib.Path) -> tuple[set[str], set[str]]:
    """(runtime imports, TYPE_CHECKING-only imports) of livekit_py modules."""
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    known = _modules()
    runtime: set[str] = set()
    typing_only: set[str] = set()

    def resolve(node: ast.ImportFrom) -> list[str]:
        if node.level:
            base = package.split(".")
            base = base[: len(base) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        out = []
        for alias in node.names:
            sub = f"{target}.{alias.name}"
            out.append(sub if sub in known else target)
        return out

    def visit(node: ast.AST, guarded: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, guarded)
            return
        targets: list[str] = []
        if isinstance(node, ast.ImportFrom):
            targets = resolve(node)
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        for target in targets:
            if target.startswith("livekit_py") and target != module:
                (typing_only if guarded else runtime).add(target)
        for child in ast.iter_child_nodes(node):
            visit(child, guarded)

    visit(tree, False)
    return runtime, typing_only - runtime


def _graph(*, with_type_checking: bool) -> dict[str, set[str]]:
    graph = {}
    for module, path in _modules().items():
        runtime, typing_only = _imports(module, path)
        graph[module] = runtime | (typing_only if with_type_checking else set())
    return graph


def _cycle(graph: dict[str, set[str]], nodes: set[str]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in nodes:
                continue
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = dfs(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(nodes):
        if node not in state:
            found = dfs(node)
            if found:
                return found
    return None


def test_every_module_has_a_layer() -> None:
    for module in _modules():
        _layer(module)


def test_imports_only_go_downward() -> None:
    wrong = []
    for module, targets in _graph(with_type_checking=False).items():
        mine = _layer(module)
        for target in sorted(targets):
            theirs = _layer(target)
            if theirs != mine and theirs not in _ALLOWED[mine]:
                wrong.append(f"{module} ({mine}) imports {target} ({theirs})")
    assert not wrong, "\n".join(wrong)


def test_the_cli_uses_only_the_public_api() -> None:
    """cli/ imports livekit_py.rtc, the logger and the version; nothing of the layers below."""
    wrong = []
    for module, targets in _graph(with_type_checking=True).items():
        if _layer(module) != "cli":
            continue
        for target in sorted(targets):
            if _layer(target) != "cli" and target not in _CLI_MAY_IMPORT:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_nothing_below_imports_the_cli() -> None:
    wrong = [
        f"{module} imports {target}"
        for module, targets in _graph(with_type_checking=True).items()
        if _layer(module) != "cli"
        for target in targets
        if _layer(target) == "cli"
    ]
    assert not wrong, "\n".join(wrong)


def test_no_import_circles_at_runtime() -> None:
    graph = _graph(with_type_checking=False)
    inner = {m for m in graph if m not in ("livekit_py", "livekit_py.rtc")}
    assert _cycle(graph, inner) is None, _cycle(graph, inner)


def test_the_room_objects_do_not_import_each_other_in_a_loop() -> None:
    """Not even for annotations: room, participant, publication and track form no circle."""
    graph = _graph(with_type_checking=True)
    room_objects = {f"livekit_py.{m}" for m in _ROOM_PUBLIC | _VALUES}
    assert _cycle(graph, room_objects) is None, _cycle(graph, room_objects)


# getattr with a private attribute name is a way around the layers; these are the
# ones allowed: an object's own attributes and duck-typed reads of public libraries.
_GETATTR_PRIVATE = re.compile(r"getattr\([^,]+,\s*\"(_[A-Za-z]\w*)\"")
_OWN_PRIVATE_READS = {("rtc/event_emitter.py", "_once_of")}


def test_no_layer_is_reached_through_getattr_of_a_private_name() -> None:
    found = []
    for path in _modules().values():
        rel = path.relative_to(SRC).as_posix()
        if rel == "webrtc/aiortc_adapter.py":
            continue
        for name in _GETATTR_PRIVATE.findall(path.read_text()):
            if (rel, name) not in _OWN_PRIVATE_READS:
                found.append(f"{rel}: getattr(..., {name!r})")
    assert not found, found
