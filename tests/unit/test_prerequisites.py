"""What Petrel needs from the machine is what scripts/install-deps.sh installs.

- every plugin that the lab's charon loads (``_CHARON_PLUGINS``) is a file shipped by a package
  that install-deps.sh names, or by a package one of those depends on — the check that would have
  caught the missing ``libstrongswan-standard-plugins`` (openssl plugin);
- every external program the lab, tests, benchmarks and demo run (``LAB_PROGRAMS``) likewise, and
  the sources run no program that list misses;
- every Python import is the standard library, petrel, or a dependency that pyproject.toml
  declares (the shipped package: ``dependencies`` only; tests, benchmarks, fuzzers: the
  ``dev`` and ``fuzz`` extras too).

Package ownership comes from dpkg (``dpkg-query -S``) on this machine, so these tests run where
the project runs: Debian 12 with the packages installed.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from petrel.lab import strongswan
from petrel.lab.prerequisites import LAB_PROGRAMS
from petrel.lab.strongswan import CHARON_PLUGIN_PACKAGES

REPO = Path(__file__).resolve().parents[2]
INSTALL_DEPS = REPO / "scripts" / "install-deps.sh"
PLUGIN_DIR = "/usr/lib/ipsec/plugins"

needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="not a Debian system")


# ------------------------------------------------------------------------------ pure checks


def apt_packages(script: str) -> list[str]:
    """The package names of the ``APT_PACKAGES=( … )`` array in install-deps.sh."""
    match = re.search(r"^APT_PACKAGES=\((.*?)^\)", script, re.S | re.M)
    if match is None:
        raise ValueError("no APT_PACKAGES=( … ) array in install-deps.sh")
    words = [line.split("#", 1)[0].split() for line in match.group(1).splitlines()]
    return [word for line in words for word in line]


def charon_plugins() -> list[str]:
    return strongswan._CHARON_PLUGINS.split()


def plugin_path(name: str) -> str:
    return f"{PLUGIN_DIR}/libstrongswan-{name}.so"


@dataclass
class PackageDb:
    """What dpkg knows: installed packages' dependencies, virtual names and the base system."""

    depends: Mapping[str, list[list[str]]]  # package → groups of alternatives
    provides: Mapping[str, set[str]]  # virtual name → installed packages providing it
    base: set[str]  # Essential: yes or Priority: required — on every Debian system


def closure(roots: Iterable[str], db: PackageDb) -> set[str]:
    """``roots`` and every installed package they depend on, transitively (Depends and
    Pre-Depends; every installed alternative of ``a | b``; virtual names via Provides)."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        for pkg in {name, *db.provides.get(name, ())}:
            if pkg in seen:
                continue
            seen.add(pkg)
            for group in db.depends.get(pkg, []):
                todo.extend(group)
    return seen


def check_prerequisites(
    listed: Iterable[str],
    needed: Mapping[str, str],
    owners: Mapping[str, str | None],
    db: PackageDb,
) -> list[str]:
    """Problems with ``needed`` ({what: file path}) given the packages ``listed`` in
    install-deps.sh: a file no package ships, or one shipped by a package neither listed, nor
    pulled in by a listed one, nor part of every Debian system. ``owners`` maps each path to
    its package (dpkg -S), None when no package ships it."""
    listed = list(listed)
    reachable = closure(listed, db)
    problems = []
    for what, path in needed.items():
        owner = owners.get(path)
        if owner is None:
            problems.append(f"{what}: {path} is shipped by no installed package")
        elif owner not in reachable and owner not in db.base:
            problems.append(
                f"{what}: {path} comes from {owner}, which scripts/install-deps.sh does not "
                f"install (add {owner} to APT_PACKAGES)"
            )
    return problems


def needed_files(resolve: Mapping[str, str | None]) -> dict[str, str]:
    """{what: path} for every charon plugin and lab program; ``resolve`` maps a program name to
    its path (None: not found, reported against the program's name)."""
    needed = {f"charon plugin {name!r}": plugin_path(name) for name in charon_plugins()}
    for prog in LAB_PROGRAMS:
        needed[f"program {prog!r}"] = resolve.get(prog) or f"(not found: {prog})"
    return needed


# ------------------------------------------------------------------------------ dpkg


def _dpkg_paths(path: str) -> list[str]:
    """``path`` and the names dpkg may know it by on a merged-/usr system (/bin/x for
    /usr/bin/x), also after resolving symlinks (/usr/bin/sh → /usr/bin/dash)."""
    out: list[str] = []
    for p in (path, os.path.realpath(path)):
        out.append(p)
        if p.startswith(("/usr/bin/", "/usr/sbin/", "/usr/lib/")):
            out.append(p[4:])
        elif p.startswith(("/bin/", "/sbin/", "/lib/")):
            out.append("/usr" + p)
    return list(dict.fromkeys(out))


def dpkg_owners(paths: Iterable[str]) -> dict[str, str | None]:
    """{path: the package shipping it (dpkg -S), or None} — one dpkg-query for all."""
    candidates = {path: _dpkg_paths(path) for path in paths}
    every = sorted({c for cs in candidates.values() for c in cs})
    result = subprocess.run(
        ["dpkg-query", "-S", *every], capture_output=True, text=True, check=False
    )
    owned: dict[str, str] = {}
    for line in result.stdout.splitlines():
        if line.startswith("diversion by"):
            continue
        packages, _, path = line.partition(": ")
        owned.setdefault(path, packages.split(",")[0].strip().split(":")[0])
    return {
        path: next((owned[c] for c in cs if c in owned), None) for path, cs in candidates.items()
    }


def _names(field: str) -> list[list[str]]:
    groups = []
    for group in field.split(","):
        names = [re.sub(r"[\s(:].*", "", alt.strip()) for alt in group.split("|")]
        if any(names):
            groups.append([n for n in names if n])
    return groups


def package_db() -> PackageDb:
    fmt = (
        "${Package}\t${Depends}, ${Pre-Depends}\t${Provides}\t${Essential} ${Priority}"
        "\t${db:Status-Status}\n"
    )
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", fmt], capture_output=True, text=True, check=True
    ).stdout
    depends: dict[str, list[list[str]]] = {}
    provides: dict[str, set[str]] = {}
    base: set[str] = set()
    for line in out.splitlines():
        name, deps, prov, flags, status = line.split("\t")
        if status != "installed":
            continue
        depends[name] = _names(deps)
        for group in _names(prov):
            for virtual in group:
                provides.setdefault(virtual, set()).add(name)
        if flags.split() and (flags.split()[0] == "yes" or "required" in flags.split()):
            base.add(name)
    return PackageDb(depends, provides, base)


def _resolve(prog: str) -> str | None:
    if prog.startswith("/"):
        return prog if os.path.exists(prog) else None
    return shutil.which(prog)


@functools.cache
def _machine() -> tuple[dict[str, str], dict[str, str | None], PackageDb]:
    resolve = {prog: _resolve(prog) for prog in LAB_PROGRAMS}
    needed = needed_files(resolve)
    return needed, dpkg_owners(needed.values()), package_db()


# ------------------------------------------------------------------------------ tests


def test_install_deps_lists_packages() -> None:
    listed = apt_packages(INSTALL_DEPS.read_text())
    assert "libstrongswan-standard-plugins" in listed and "python3-venv" in listed
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9.+-]+", p) for p in listed), listed


def test_check_reports_a_plugin_from_an_unlisted_package() -> None:
    """The check itself, on made-up dpkg facts: the openssl plugin's package is not listed and
    no listed package depends on it."""
    db = PackageDb(
        depends={"strongswan-charon": [["libstrongswan"], ["debconf", "debconf-2.0"]]},
        provides={},
        base={"debconf"},
    )
    needed = {
        "charon plugin 'openssl'": plugin_path("openssl"),
        "charon plugin 'nonce'": plugin_path("nonce"),
        "program 'sh'": "/usr/bin/dash",
        "program 'gone'": "/usr/bin/gone",
    }
    owners = {
        plugin_path("openssl"): "libstrongswan-standard-plugins",
        plugin_path("nonce"): "libstrongswan",
        "/usr/bin/dash": "debconf",
    }
    problems = check_prerequisites(["strongswan-charon"], needed, owners, db)
    assert problems == [
        "charon plugin 'openssl': /usr/lib/ipsec/plugins/libstrongswan-openssl.so comes from "
        "libstrongswan-standard-plugins, which scripts/install-deps.sh does not install (add "
        "libstrongswan-standard-plugins to APT_PACKAGES)",
        "program 'gone': /usr/bin/gone is shipped by no installed package",
    ]
    assert check_prerequisites(
        ["strongswan-charon", "libstrongswan-standard-plugins"], needed, owners, db
    ) == ["program 'gone': /usr/bin/gone is shipped by no installed package"]


@needs_dpkg
def test_every_plugin_and_program_comes_from_a_listed_package() -> None:
    needed, owners, db = _machine()
    listed = apt_packages(INSTALL_DEPS.read_text())
    assert check_prerequisites(listed, needed, owners, db) == []


@needs_dpkg
def test_check_fails_without_libstrongswan_standard_plugins() -> None:
    """The issue's failure, on this machine's real dpkg data: drop the package from the list."""
    needed, owners, db = _machine()
    listed = [
        p for p in apt_packages(INSTALL_DEPS.read_text()) if p != "libstrongswan-standard-plugins"
    ]
    problems = check_prerequisites(listed, needed, owners, db)
    assert problems and all("libstrongswan-standard-plugins" in p for p in problems), problems
    assert any(p.startswith("charon plugin 'openssl'") for p in problems), problems


@needs_dpkg
@pytest.mark.parametrize("dropped", ["iperf3", "nftables", "procps", "strongswan-swanctl"])
def test_check_fails_without_a_program_package(dropped: str) -> None:
    needed, owners, db = _machine()
    listed = [p for p in apt_packages(INSTALL_DEPS.read_text()) if p != dropped]
    problems = check_prerequisites(listed, needed, owners, db)
    assert any(dropped in p for p in problems), problems


@needs_dpkg
def test_the_packages_named_for_hints_are_dpkg_s_owners() -> None:
    """LAB_PROGRAMS and CHARON_PLUGIN_PACKAGES (what a one-line error tells users to install)
    agree with dpkg."""
    needed, owners, _db = _machine()
    assert set(CHARON_PLUGIN_PACKAGES) == set(charon_plugins())
    for name in charon_plugins():
        assert owners[plugin_path(name)] == CHARON_PLUGIN_PACKAGES[name], name
    for prog, package in LAB_PROGRAMS.items():
        assert owners[needed[f"program {prog!r}"]] == package, prog


# -- the sources run no program missing from LAB_PROGRAMS --------------------------------------

_RUNNERS = {"run_in", "spawn_in"}  # petrel.lab: argv is the second argument
_SUBPROCESS = {"run", "Popen", "check_output", "check_call", "call"}


def programs_run(tree: ast.AST) -> set[str]:
    """Program names that argv lists in ``tree`` start (literal, or assigned to a name in the
    same function first) when given to subprocess.* or run_in/spawn_in — and the command after
    ``ip netns exec NS`` — and names passed to shutil.which."""
    found: set[str] = set()
    scopes = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    for scope in [tree, *scopes]:
        assigned: dict[str, list[ast.List]] = {}
        for node in ast.walk(scope):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.List):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        assigned.setdefault(target.id, []).append(node.value)
        for node in ast.walk(scope):
            if isinstance(node, ast.Call):
                found |= _call_programs(node, assigned)
    return found


def _call_programs(node: ast.Call, assigned: Mapping[str, list[ast.List]]) -> set[str]:
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    owner = getattr(func.value, "id", "") if isinstance(func, ast.Attribute) else ""
    if name == "which" and node.args and isinstance(node.args[0], ast.Constant):
        return {str(node.args[0].value)}
    if not (name in _RUNNERS or (owner == "subprocess" and name in _SUBPROCESS)):
        return set()
    lists = [a for a in node.args if isinstance(a, ast.List)]
    lists += [lst for a in node.args if isinstance(a, ast.Name) for lst in assigned.get(a.id, [])]
    found = set()
    for argv in lists:
        words = [e.value if isinstance(e, ast.Constant) else None for e in argv.elts]
        if words and isinstance(words[0], str):
            found.add(words[0])
        if words[:3] == ["ip", "netns", "exec"] and len(words) > 4 and isinstance(words[4], str):
            found.add(words[4])
    return found


def _python_files(*tops: str) -> list[Path]:
    return [p for top in tops for p in sorted((REPO / top).rglob("*.py"))]


def test_programs_run_by_the_sources_are_in_lab_programs() -> None:
    run: dict[str, list[str]] = {}
    for path in _python_files("src", "tests", "bench", "fuzz", "samples"):
        text = path.read_text()
        if not re.search(r"subprocess|run_in|spawn_in|which\(", text):
            continue
        for prog in programs_run(ast.parse(text, str(path))):
            run.setdefault(prog, []).append(str(path.relative_to(REPO)))
    assert {"ip", "nft", "iperf3", "tcpdump", "tshark", "conntrack"} <= set(run)  # scan works
    unknown = {prog: files for prog, files in run.items() if prog not in LAB_PROGRAMS}
    assert unknown == {}, f"add these to petrel.lab.prerequisites.LAB_PROGRAMS: {unknown}"


def test_programs_run_finds_argv_forms() -> None:
    tree = ast.parse(
        "subprocess.run(['editcap', x])\nlab.run_in(ns, ['nstat', '-a'])\n"
        "run_in(None, ['ip', 'netns', 'exec', ns, 'tc'])\nshutil.which('tshark')\n"
        "run(['-', x])\n"  # a local helper named run: not a program
        "def f():\n    argv = ['tcpdump', '-i', x]\n    lab.spawn_in(ns, argv, log)\n"
    )
    assert programs_run(tree) == {"editcap", "nstat", "ip", "tc", "tshark", "tcpdump"}


# -- Python imports ------------------------------------------------------------------------------


def _requirement_names(requirements: Iterable[str]) -> set[str]:
    return {re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0].lower() for r in requirements}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def undeclared_imports(files: Iterable[Path], declared: set[str], local: set[str]) -> dict:
    """{module: [files]} for imports that are not stdlib, petrel, a local helper module, or
    provided by a declared distribution."""
    provided = importlib.metadata.packages_distributions()
    bad: dict[str, list[str]] = {}
    for path in files:
        for module in _imports(path):
            if module in sys.stdlib_module_names or module in ("petrel", "__future__"):
                continue
            if module in local:
                continue
            dists = {d.lower() for d in provided.get(module, [])}
            if not dists & declared:
                bad.setdefault(module, []).append(str(path.relative_to(REPO)))
    return bad


def _declared() -> tuple[set[str], set[str]]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    runtime = _requirement_names(project["dependencies"])
    extras = project["optional-dependencies"]
    return runtime, runtime | _requirement_names(extras["dev"] + extras["fuzz"])


def test_shipped_package_imports_only_declared_dependencies() -> None:
    runtime, _ = _declared()
    assert undeclared_imports(_python_files("src"), runtime, set()) == {}


def test_tests_bench_fuzz_import_only_declared_dependencies() -> None:
    _, development = _declared()
    files = _python_files("tests", "bench", "fuzz", "samples")
    local = {p.stem for p in files} | {"conftest"}
    assert undeclared_imports(files, development, local) == {}


def test_hypothesis_is_a_development_dependency_only() -> None:
    runtime, development = _declared()
    assert "hypothesis" not in runtime and "hypothesis" in development
    assert not list((REPO / "src" / "petrel").rglob("strategies.py"))
