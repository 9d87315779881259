"""Reader for the strongSwan settings syntax (strongswan.conf, swanctl.conf).

Grammar (as strongSwan's settings parser accepts it)::

    body     := { section | setting | include }
    section  := NAME [ ":" REF { "," REF } ] "{" body "}"
    setting  := NAME "=" value            (the value ends at a newline, "#" or "}")
    include  := "include" value           (a glob, relative to the including file)

Unquoted words of a value are joined with one space; ``"..."`` strings know ``\\n \\r \\t
\\" \\\\`` escapes and backslash-newline continuation.  Later settings override earlier ones,
sections of the same name merge, and ``name : a.b, c`` inherits what the section does not set
itself from the (fully qualified) sections named, first reference first.  Every value keeps
the file and line it came from; every problem is a :class:`ConfigError` naming them.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field

from .errors import ConfigError

__all__ = ["ConfigError", "Section", "Setting", "load_settings", "parse_settings"]

MAX_NESTING = 64
MAX_INCLUDE_DEPTH = 32

_NAME_STOP = frozenset(' \t\r\n{}=:,"#')
_VALUE_STOP = frozenset(' \t\r\n#}"')
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}


@dataclass(slots=True)
class Setting:
    """One ``key = value`` and where it was written."""

    key: str
    value: str
    file: str
    line: int


@dataclass(slots=True)
class Reference:
    """A ``: a.b`` inheritance reference, before resolution."""

    path: str
    file: str
    line: int


@dataclass(slots=True)
class Section:
    """A ``name { }`` section (the root has name ``""``)."""

    name: str
    file: str
    line: int
    settings: dict[str, Setting] = field(default_factory=dict)
    sections: dict[str, Section] = field(default_factory=dict)
    refs: list[Reference] = field(default_factory=list)

    def get(self, key: str) -> Setting | None:
        return self.settings.get(key)

    def section(self, path: str) -> Section | None:
        """The subsection at dotted ``path`` (``"connections.c.local"``) or None."""
        node: Section | None = self
        for part in path.split("."):
            if node is None:
                return None
            node = node.sections.get(part)
        return node


class _Parser:
    """Recursive-descent parser over one file's text."""

    def __init__(
        self, text: str, file: str, base_dir: str, stack: tuple[str, ...], includes: bool
    ) -> None:
        self.text = text
        self.file = file
        self.base_dir = base_dir
        self.stack = stack
        self.includes = includes
        self.pos = 0
        self.line = 1

    def error(self, message: str, line: int | None = None, key: str | None = None) -> ConfigError:
        return ConfigError(message, self.file, self.line if line is None else line, key)

    # -- scanning ---------------------------------------------------------------------------

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_comment(self) -> None:
        end = self.text.find("\n", self.pos)
        self.pos = len(self.text) if end < 0 else end

    def skip_blank(self) -> None:
        """Skip whitespace, newlines and comments."""
        text = self.text
        while self.pos < len(text):
            c = text[self.pos]
            if c == "\n":
                self.line += 1
                self.pos += 1
            elif c in " \t\r":
                self.pos += 1
            elif c == "#":
                self.skip_comment()
            else:
                return

    def skip_spaces(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\r":
            self.pos += 1

    def read_name(self) -> str:
        start = self.pos
        text = self.text
        while self.pos < len(text) and text[self.pos] not in _NAME_STOP:
            self.pos += 1
        return text[start : self.pos]

    def read_string(self) -> str:
        """A ``"..."`` string; the opening quote is at ``pos``."""
        open_line = self.line
        self.pos += 1
        out: list[str] = []
        text = self.text
        while True:
            if self.pos >= len(text):
                raise self.error("unterminated quoted string", open_line)
            c = text[self.pos]
            if c == '"':
                self.pos += 1
                return "".join(out)
            if c == "\\":
                nxt = text[self.pos + 1 : self.pos + 2]
                if nxt in _ESCAPES:
                    out.append(_ESCAPES[nxt])
                    self.pos += 2
                    continue
                if nxt == "\n" or text[self.pos + 1 : self.pos + 3] == "\r\n":
                    self.pos += 2 if nxt == "\n" else 3
                    self.line += 1
                    continue
                out.append(c)
                self.pos += 1
                continue
            if c == "\n":
                self.line += 1
            out.append(c)
            self.pos += 1

    def read_value(self) -> str:
        """The rest of a value: words and strings up to newline, ``#`` or ``}``."""
        parts: list[str] = []
        text = self.text
        while True:
            self.skip_spaces()
            c = self.peek()
            if c == "" or c == "}":
                break
            if c == "\n":
                self.pos += 1
                self.line += 1
                break
            if c == "#":
                self.skip_comment()
                continue
            if c == '"':
                parts.append(self.read_string())
                continue
            start = self.pos
            while self.pos < len(text) and text[self.pos] not in _VALUE_STOP:
                self.pos += 1
            parts.append(text[start : self.pos])
        return " ".join(parts)

    # -- grammar ----------------------------------------------------------------------------

    def check_name(self, name: str, line: int) -> None:
        if "." in name:
            raise self.error(f"invalid name '{name}': names cannot contain '.'", line, name)

    def is_include(self) -> bool:
        """After reading ``include``: is this an include statement (not a key or section)?"""
        if self.peek() not in (" ", "\t"):
            return False
        probe = self.pos
        while probe < len(self.text) and self.text[probe] in " \t\r":
            probe += 1
        nxt = self.text[probe : probe + 1]
        return nxt not in ("", "\n", "#", "=", "{", ":", "}")

    def parse_body(self, section: Section, depth: int, closing: bool, open_line: int) -> None:
        if depth > MAX_NESTING:
            raise self.error(f"sections nested deeper than {MAX_NESTING}")
        while True:
            self.skip_blank()
            c = self.peek()
            if c == "":
                if closing:
                    raise self.error(f"section '{section.name}' is missing its '}}'", open_line)
                return
            if c == "}":
                if not closing:
                    raise self.error("unexpected '}'")
                self.pos += 1
                return
            if c in _NAME_STOP:
                raise self.error(f"unexpected '{c}'")
            line = self.line
            name = self.read_name()
            if name == "include" and self.is_include():
                pattern = self.read_value()
                self.include(pattern, section, depth, line)
                continue
            self.skip_blank()
            c = self.peek()
            if c == "=":
                self.pos += 1
                self.check_name(name, line)
                value = self.read_value()
                section.settings.pop(name, None)
                section.settings[name] = Setting(name, value, self.file, line)
            elif c in ("{", ":"):
                self.check_name(name, line)
                refs = self.read_refs() if c == ":" else []
                self.pos += 1  # the "{"
                sub = section.sections.get(name)
                if sub is None:
                    sub = Section(name, self.file, line)
                    section.sections[name] = sub
                sub.refs.extend(refs)
                self.parse_body(sub, depth + 1, True, line)
            else:
                raise self.error(f"expected '=', '{{' or ':' after '{name}'", line, name)

    def read_refs(self) -> list[Reference]:
        self.pos += 1  # the ":"
        refs: list[Reference] = []
        while True:
            self.skip_blank()
            line = self.line
            path = self.read_name()
            if not path or "" in path.split("."):
                raise self.error("expected a section name to inherit from", line)
            refs.append(Reference(path, self.file, line))
            self.skip_blank()
            c = self.peek()
            if c == "{":
                return refs
            if c != ",":
                raise self.error("expected ',' or '{' after inherited section name")
            self.pos += 1

    def include(self, pattern: str, section: Section, depth: int, line: int) -> None:
        if not self.includes:
            raise self.error("include is not allowed here", line, "include")
        if not pattern:
            raise self.error("include needs a file name or pattern", line, "include")
        if len(self.stack) >= MAX_INCLUDE_DEPTH:
            raise self.error(f"includes nested deeper than {MAX_INCLUDE_DEPTH}", line, "include")
        full = pattern if os.path.isabs(pattern) else os.path.join(self.base_dir, pattern)
        if "\0" in full:  # no file name holds one; glob and the OS refuse it with ValueError
            raise self.error(f"included file '{pattern}' not found", line, "include")
        if glob.has_magic(full):
            paths = sorted(glob.glob(full))
        elif os.path.exists(full):
            paths = [full]
        else:
            raise self.error(f"included file '{pattern}' not found", line, "include")
        for path in paths:
            real = os.path.realpath(path)
            if real in self.stack:
                raise self.error(f"include loop: '{path}' includes itself", line, "include")
            text = _read_text(path, self.file, line)
            sub = _Parser(text, path, os.path.dirname(path), (*self.stack, real), True)
            sub.parse_body(section, depth, False, line)


def _read_text(path: str, file: str, line: int) -> str:
    if not os.path.isfile(path):
        raise ConfigError(f"cannot include '{path}': not a regular file", file, line, "include")
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read '{path}': {exc}", file, line, "include") from None


# -- inheritance --------------------------------------------------------------------------------


class _Resolver:
    def __init__(self, root: Section) -> None:
        self.root = root
        self.done: dict[int, Section] = {}
        self.active: set[int] = set()

    def resolve(self, section: Section) -> Section:
        key = id(section)
        cached = self.done.get(key)
        if cached is not None:
            return cached
        if key in self.active:
            raise ConfigError(
                f"inheritance loop through section '{section.name}'", section.file, section.line
            )
        self.active.add(key)
        out = Section(section.name, section.file, section.line, dict(section.settings))
        for name, sub in section.sections.items():
            out.sections[name] = self.resolve(sub)
        for ref in section.refs:
            target = self.root.section(ref.path)
            if target is None:
                raise ConfigError(
                    f"inherited section '{ref.path}' not found", ref.file, ref.line, ref.path
                )
            if target is section:
                raise ConfigError(
                    f"section '{ref.path}' inherits from itself", ref.file, ref.line, ref.path
                )
            _merge_missing(out, self.resolve(target))
        self.active.discard(key)
        self.done[key] = out
        return out


def _merge_missing(into: Section, source: Section) -> None:
    """Add to ``into`` whatever ``source`` has and ``into`` does not (recursively)."""
    for key, setting in source.settings.items():
        into.settings.setdefault(key, setting)
    for name, sub in source.sections.items():
        mine = into.sections.get(name)
        if mine is None:
            into.sections[name] = _copy(sub)
        else:
            copy = _copy(mine)
            _merge_missing(copy, sub)
            into.sections[name] = copy


def _copy(section: Section) -> Section:
    return Section(
        section.name,
        section.file,
        section.line,
        dict(section.settings),
        {name: _copy(sub) for name, sub in section.sections.items()},
    )


# -- entry points -------------------------------------------------------------------------------


def parse_settings(
    text: str, source: str = "<string>", base_dir: str | None = None, *, includes: bool = True
) -> Section:
    """Parse settings ``text``; ``include`` patterns are relative to ``base_dir`` (default:
    the folder of ``source`` if it is a path, else the current folder).  ``includes=False``
    refuses include statements.  Returns the root :class:`Section` with inheritance resolved."""
    if base_dir is None:
        base_dir = os.path.dirname(source) if os.path.isfile(source) else os.getcwd()
    stack = (os.path.realpath(source),) if os.path.isfile(source) else ()
    root = Section("", source, 1)
    parser = _Parser(text, source, base_dir, stack, includes)
    try:
        parser.parse_body(root, 0, False, 1)
        return _Resolver(root).resolve(root)
    except RecursionError:
        raise ConfigError("configuration nested too deeply", source, parser.line) from None


def load_settings(path: str) -> Section:
    """Read and parse the settings file at ``path``."""
    text = _read_text(path, path, 0) if os.path.exists(path) else None
    if text is None:
        raise ConfigError("file not found", path, 0)
    return parse_settings(text, path, os.path.dirname(os.path.abspath(path)))
