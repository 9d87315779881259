"""Tests for the strongSwan settings syntax reader."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from petrel.config.settings import ConfigError, Section, load_settings, parse_settings


def value(root: Section, path: str) -> str:
    section_path, _, key = path.rpartition(".")
    section = root.section(section_path) if section_path else root
    assert section is not None, path
    setting = section.get(key)
    assert setting is not None, path
    return setting.value


def test_sections_keys_and_comments() -> None:
    root = parse_settings("# top\na {\n  b = 1 # trailing\n  c { d = x }\n}\n")
    assert value(root, "a.b") == "1"
    assert value(root, "a.c.d") == "x"
    assert list(root.sections) == ["a"]


def test_unquoted_words_joined_by_one_space() -> None:
    root = parse_settings("k =   one   two\tthree  \n")
    assert value(root, "k") == "one two three"


def test_value_ends_at_closing_brace() -> None:
    root = parse_settings("s { k = v }\nt = w")
    assert value(root, "s.k") == "v"
    assert value(root, "t") == "w"


def test_empty_value() -> None:
    root = parse_settings("k =\nj = # only a comment\n")
    assert value(root, "k") == ""
    assert value(root, "j") == ""


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (r'k = "a b  c"', "a b  c"),
        (r'k = "tab\there"', "tab\there"),
        (r'k = "nl\nx\ry"', "nl\nx\ry"),
        (r'k = "say \"hi\""', 'say "hi"'),
        (r'k = "back\\slash"', "back\\slash"),
        (r'k = "keep\qthis"', "keep\\qthis"),
        ('k = "join\\\nme"', "joinme"),
        ('k = "a#b}c"', "a#b}c"),
        ('k = "x" y "z"', "x y z"),
        ('k = ""', ""),
    ],
)
def test_quoted_strings(source: str, expected: str) -> None:
    assert value(parse_settings(source), "k") == expected


def test_line_numbers_follow_continuations() -> None:
    root = parse_settings('a = "x\\\ny"\nb = 2\n')
    assert root.settings["a"].line == 1
    assert root.settings["b"].line == 3


def test_later_definition_overrides_and_sections_merge() -> None:
    root = parse_settings("s {\n a = 1\n b = 2\n}\ns {\n a = 3\n c = 4\n}\n")
    s = root.section("s")
    assert s is not None
    assert {k: v.value for k, v in s.settings.items()} == {"a": "3", "b": "2", "c": "4"}
    assert s.settings["a"].line == 6


def test_brace_on_next_line() -> None:
    root = parse_settings("s\n{\n a = 1\n}\n")
    assert value(root, "s.a") == "1"


def test_inheritance_resolved_after_parsing() -> None:
    text = """
    conns {
      c2 : conns.base, other {
        a = mine
        sub { y = 2 }
      }
      base {
        a = base
        b = base
        sub { x = 1 }
      }
    }
    other { b = other
      c = other }
    """
    root = parse_settings(text)
    assert value(root, "conns.c2.a") == "mine"
    assert value(root, "conns.c2.b") == "base"  # first reference wins
    assert value(root, "conns.c2.c") == "other"
    assert value(root, "conns.c2.sub.x") == "1"
    assert value(root, "conns.c2.sub.y") == "2"
    # the template itself is unchanged
    base = root.section("conns.base")
    assert base is not None and "c" not in base.settings


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("a {\n b = 1\n", 1, "missing its '}'"),
        ("a = 1\n}\n", 2, "unexpected '}'"),
        ("a b\n", 1, "expected '=', '{' or ':'"),
        ("a.b = 1\n", 1, "cannot contain '.'"),
        ('a = "open\n\n', 1, "unterminated"),
        ("= 1\n", 1, "unexpected '='"),
        ("x : nowhere { }\n", 1, "'nowhere' not found"),
        ("x : y { }\ny : x { }\n", 1, "inheritance loop"),
        ("x : x { }\n", 1, "inherits from itself"),
        ("x : { }\n", 1, "expected a section name"),
        ("x : a b { }\n", 1, "expected ',' or '{'"),
        ("a {" * 100, 1, "nested deeper"),
        ("include missing.conf\n", 1, "not found"),
        ("include\n", 1, "expected '='"),
    ],
)
def test_errors_name_file_and_line(text: str, line: int, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_settings(text, "test.conf", base_dir="/nonexistent-petrel-dir")
    assert info.value.file == "test.conf"
    assert info.value.line == line
    assert fragment in info.value.message
    assert str(info.value).startswith(f"test.conf:{line}: ")


def test_include_globs_relative_and_nested(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "b.conf").write_text("two = 2\ninclude ../deep/*.conf\n")
    (tmp_path / "conf.d" / "a.conf").write_text("one = 1\n")
    (tmp_path / "conf.d" / "ignored.txt").write_text("bad = 1\n")
    (tmp_path / "deep").mkdir()
    (tmp_path / "deep" / "x.conf").write_text("three = 3\n")
    main = tmp_path / "main.conf"
    main.write_text("s {\n  include conf.d/*.conf\n  two = override\n}\ninclude none/*.conf\n")
    root = load_settings(str(main))
    s = root.section("s")
    assert s is not None
    assert {k: v.value for k, v in s.settings.items()} == {
        "one": "1",
        "three": "3",
        "two": "override",
    }
    assert s.settings["one"].file == str(tmp_path / "conf.d" / "a.conf")
    assert s.settings["three"].file.endswith("x.conf")
    assert s.settings["three"].line == 1


def test_include_quoted_pattern(tmp_path: Path) -> None:
    (tmp_path / "with space.conf").write_text("k = v\n")
    main = tmp_path / "main.conf"
    main.write_text('include "with space.conf"\n')
    assert value(load_settings(str(main)), "k") == "v"


def test_include_loop_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.conf").write_text("include b.conf\n")
    (tmp_path / "b.conf").write_text("x = 1\ninclude a.conf\n")
    with pytest.raises(ConfigError) as info:
        load_settings(str(tmp_path / "a.conf"))
    assert "include loop" in info.value.message
    assert info.value.file == str(tmp_path / "b.conf")
    assert info.value.line == 2


def test_included_file_cannot_close_parent_section(tmp_path: Path) -> None:
    (tmp_path / "inc.conf").write_text("}\n")
    (tmp_path / "main.conf").write_text("s {\ninclude inc.conf\n}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(str(tmp_path / "main.conf"))
    assert info.value.file.endswith("inc.conf")


def test_include_errors_in_included_file_name_that_file(tmp_path: Path) -> None:
    (tmp_path / "inc.conf").write_text("ok = 1\n\nbroken\n")
    (tmp_path / "main.conf").write_text("include inc.conf\n")
    with pytest.raises(ConfigError) as info:
        load_settings(str(tmp_path / "main.conf"))
    assert str(info.value).startswith(f"{tmp_path / 'inc.conf'}:3: ")


def test_include_of_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "main.conf").write_text("include d\n")
    with pytest.raises(ConfigError, match="not a regular file"):
        load_settings(str(tmp_path / "main.conf"))


def test_include_can_be_disabled() -> None:
    with pytest.raises(ConfigError, match="not allowed"):
        parse_settings("include x.conf\n", includes=False)


def test_include_as_key_or_section_name() -> None:
    root = parse_settings("include = 1\ns { include { a = b } }\n")
    assert value(root, "include") == "1"
    assert value(root, "s.include.a") == "b"


def test_load_missing_file() -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings("/nonexistent-petrel-dir/swanctl.conf")


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_text_parses_or_raises_config_error(text: str) -> None:
    try:
        parse_settings(text, includes=False)
    except ConfigError as exc:
        assert str(exc).startswith("<string>:")


_TOKENS = st.sampled_from(
    ["a", "b", "c.d", " ", "\n", "{", "}", "=", ":", ",", '"', "\\", "#", "x y", "include", "\t"]
)


@settings(max_examples=500, deadline=None)
@given(st.lists(_TOKENS, max_size=40).map("".join))
def test_token_soup_parses_or_raises_config_error(text: str) -> None:
    try:
        root = parse_settings(text, includes=False)
    except ConfigError as exc:
        assert exc.line >= 1
    else:
        assert root.name == ""


# ---------------------------------------------------------------- strongswan.conf: admission


def test_daemon_settings_take_charon_keys_and_petrel_section(tmp_path) -> None:
    from petrel.config.daemon_settings import read_daemon_settings

    conf = tmp_path / "strongswan.conf"
    conf.write_text(
        "charon {\n  block_threshold = 3\n  cookie_threshold = 20\n  init_limit_half_open = 500\n"
        "  init_limit_job_load = 40\n  half_open_timeout = 15\n  load = random nonce\n"
        "  plugins {\n    vici { socket = unix:///x }\n  }\n}\n"
        "petrel {\n  puzzle_difficulty = 10\n  block_time = 30s\n  ipv6_source_prefix = 56\n}\n"
    )
    assert read_daemon_settings(str(conf)) == {
        "block_threshold": 3,
        "cookie_threshold": 20,
        "init_limit_half_open": 500,
        "init_limit_job_load": 40,
        "half_open_timeout": 15.0,
        "puzzle_difficulty": 10,
        "block_time": 30.0,
        "ipv6_source_prefix": 56,
    }


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("charon {\n  block_threshold = five\n}\n", ":2: charon.block_threshold"),
        ("charon {\n  cookie_threshold = -1\n}\n", ":2: charon.cookie_threshold"),
        ("petrel {\n  puzzle_difficult = 3\n}\n", ":2: unknown setting petrel.puzzle_difficult"),
        ("petrel {\n  cookie_lifetime = inf\n}\n", ":2: petrel.cookie_lifetime"),
        ("petrel {\n\n  ipv6_source_prefix = 129\n}\n", ":3: petrel.ipv6_source_prefix"),
        ("petrel {\n  ipv6_source_prefix = 0\n}\n", ":2: petrel.ipv6_source_prefix"),
    ],
)
def test_daemon_settings_refuse_bad_values_by_place(tmp_path, text: str, where: str) -> None:
    from petrel.config.daemon_settings import read_daemon_settings
    from petrel.config.errors import ConfigError

    conf = tmp_path / "strongswan.conf"
    conf.write_text(text)
    with pytest.raises(ConfigError) as caught:
        read_daemon_settings(str(conf))
    assert where in str(caught.value)
