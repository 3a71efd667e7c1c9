"""Griffe extension of the docs site: the docstrings' reST roles as cross-references.

livekit-py's docstrings are Google style but name other objects the Sphinx way
(``:class:`AudioSource```, ``:meth:`Room.connect```, ``:data:`~x.y.Z```), which Markdown
would show as literal text. Before mkdocstrings renders them, this extension rewrites
each role into an optional cross-reference to the object's full path, resolved as
Python would from where the docstring is (the object, then its parents and the names its
module imports), then among the names ``livekit_py.rtc`` exports. A target that is on the
site becomes a link; one that is not (private modules, other packages) stays inline code.
A reST literal-block marker (a paragraph ending ``::``) becomes a plain colon, the
indented block after it being a code block in Markdown too. Class members that
``HIDDEN_CLASS_MEMBERS`` names are dropped.

Loaded from mkdocs.yml (``extensions:`` of the python handler).
"""

from __future__ import annotations

import html
import logging
import re
from typing import Any

import griffe

log = logging.getLogger("mkdocs.griffe_roles")

ROLE = re.compile(
    r":(?:py:)?(?:meth|class|func|attr|data|exc|mod|obj|const|type):`(?P<tilde>~?)(?P<target>[^`]+)`"
)
# Members that say nothing about how to use a class: the empty __slots__ the protobuf stubs
# (types, stats) declare on every message, and the object protocol every class has.
HIDDEN_CLASS_MEMBERS = {
    "__slots__",
    "__repr__",
    "__str__",
    "__hash__",
    "__eq__",
    "__ne__",
    "__del__",
}
LITERAL_MARKER = re.compile(r"(?<=\S)::[ \t]*$", re.MULTILINE)


class ReSTRoles(griffe.Extension):
    """Rewrite ``:role:`target``` in every docstring of the loaded package."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        exported = self._exported(pkg)
        for obj in list(_walk(pkg)):
            if obj.is_class:
                for name in HIDDEN_CLASS_MEMBERS & obj.members.keys():
                    del obj.members[name]
            if obj.docstring is not None:
                obj.docstring.value = self._rewrite(obj, obj.docstring.value, exported)

    @staticmethod
    def _exported(pkg: griffe.Module) -> dict[str, str]:
        """Names that ``livekit_py.rtc`` exports, with the full path of what they name."""
        rtc = pkg.members.get("rtc")
        if not isinstance(rtc, griffe.Module):
            return {}
        out = {}
        for name, member in rtc.members.items():
            out[name] = member.target_path if member.is_alias else member.path  # type: ignore[union-attr]
        return out

    def _rewrite(self, obj: griffe.Object, text: str, exported: dict[str, str]) -> str:
        def replace(match: re.Match[str]) -> str:
            target = match["target"].strip()
            shown = target.rsplit(".", 1)[-1] if match["tilde"] else target
            path = self._resolve(obj, target.removesuffix("()"), exported)
            code = f"<code>{html.escape(shown)}</code>"
            if path is None:
                log.debug("%s: no target for %s", obj.path, match[0])
                return code
            return f'<autoref identifier="{html.escape(path)}" optional>{code}</autoref>'

        return LITERAL_MARKER.sub(":", ROLE.sub(replace, text))

    @staticmethod
    def _resolve(obj: griffe.Object, target: str, exported: dict[str, str]) -> str | None:
        if target.startswith("."):  # relative to the docstring's package, as an import
            module = obj.module
            package = module.path if module.is_init_module else module.path.rsplit(".", 1)[0]
            dots = len(target) - len(target.lstrip("."))
            for _ in range(dots - 1):
                package = package.rsplit(".", 1)[0]
            return f"{package}.{target.lstrip('.')}"
        head, _, rest = target.partition(".")
        suffix = f".{rest}" if rest else ""
        if head == "livekit_py":
            return target
        try:
            return obj.resolve(head) + suffix
        except griffe.NameResolutionError:
            pass
        if head in exported:
            return exported[head] + suffix
        return None


def _walk(obj: griffe.Object) -> Any:
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _walk(member)  # type: ignore[arg-type]
