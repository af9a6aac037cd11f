#!/usr/bin/env python3
"""Fails when modules of one crate import each other in a cycle.

Why: a cycle means neither module can be read, tested or moved without the other; the gateway once had three
(issue 12). Rust allows them, so nothing else stops the next one.

What counts as an edge: module A names module B by path (`use crate::b::X`, `crate::b::f()`,
`super::b::X`, `self::b::X`), where neither is an ancestor of the other (a parent re-exporting its children
and children using their parent's items is one unit, as the Rust reference treats a module and its
submodules). The path resolves to the longest module prefix it names, so `crate::ws::topic::Topic` is an
edge to `ws::topic`, `crate::ws::Hub` one to `ws`. `#[cfg(test)]` modules and files are skipped: a test may
reach anywhere. Crate roots are `src/lib.rs`, `src/main.rs` and `src/bin/*.rs` of every workspace member.

Usage: check-module-cycles.py [--root DIR] [--self-test] [--graph]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

MOD_DECL = re.compile(r"(?<![\w:])(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;")
PATH_ATTR = re.compile(r'#\[path\s*=\s*"([^"]+)"\]\s*$')
INLINE_PATH = re.compile(r"\b((?:crate|super|self)(?:::(?:super|\w+))+)")
CFG_TEST = re.compile(r"#\[cfg\((?:test|all\(test[^)]*\))\)\]")


def strip_comments(src: str) -> str:
    """Drops // and /* */ comments and string literals' contents, which may mention paths."""
    out, i, n = [], 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
        elif src.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if src.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif src.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    if src[i] == "\n":
                        out.append("\n")
                    i += 1
        elif c == '"':
            out.append('""')
            i += 1
            while i < n and src[i] != '"':
                if src[i] == "\\":
                    i += 1
                elif src[i] == "\n":
                    out.append("\n")
                i += 1
            i += 1
        elif c == "r" and re.match(r'r#*"', src[i:i + 12]) and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_")):
            hashes = re.match(r"r(#*)\"", src[i:]).group(1)
            end = src.find('"' + hashes, i + 2 + len(hashes))
            end = n if end < 0 else end + 1 + len(hashes)
            out.append('""' + "\n" * src.count("\n", i, end))
            i = end
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", src[i:i + 4]):
            # A char literal ('"' would open a string otherwise); lifetimes ('a) are left alone.
            m = re.match(r"'(\\.|[^\\'])'", src[i:i + 4])
            out.append("' '")
            i += len(m.group(0))
        else:
            out.append(c)
            i += 1
    return "".join(out)


def drop_test_modules(src: str) -> str:
    """Blanks `#[cfg(test)] mod x { … }` bodies (keeping newlines) so test imports are not edges."""
    out = src
    for m in list(CFG_TEST.finditer(src))[::-1]:
        rest = src[m.end():]
        mm = re.match(r"\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*\{", rest)
        if not mm:
            continue
        start = m.end() + mm.end()
        depth, i = 1, start
        while i < len(src) and depth:
            depth += {"{": 1, "}": -1}.get(src[i], 0)
            i += 1
        body = out[start:i]
        out = out[:start] + re.sub(r"[^\n]", " ", body) + out[i:]
    return out


def expand_use(tree: str) -> list[str]:
    """`crate::{a::B, c::{d, e}}` → ["crate::a::B", "crate::c::d", "crate::c::e"]."""
    tree = re.sub(r"\s+as\s+\w+", "", tree)
    tree = re.sub(r"\s+", "", tree)

    def walk(prefix: str, s: str) -> list[str]:
        if "{" not in s:
            return [prefix + s] if s else [prefix.rstrip(":")]
        head, body = s.split("{", 1)
        body = body[: body.rfind("}")]
        parts, depth, cur = [], 0, ""
        for ch in body:
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
                continue
            depth += {"{": 1, "}": -1}.get(ch, 0)
            cur += ch
        parts.append(cur)
        res = []
        for p in parts:
            if p:
                res += walk(prefix + head, p)
        return res

    return walk("", tree)


class Crate:
    def __init__(self, root_file: Path):
        self.root_file = root_file
        self.files: dict[tuple[str, ...], Path] = {}
        self.test_mods: set[tuple[str, ...]] = set()
        self._load((), root_file, is_root=True)

    def _load(self, path: tuple[str, ...], file: Path, is_root: bool) -> None:
        self.files[path] = file
        src = file.read_text(encoding="utf-8", errors="replace")
        lines = src.splitlines()
        for m in MOD_DECL.finditer(src):
            name = m.group(1)
            line_no = src.count("\n", 0, m.start())
            attrs = "\n".join(lines[max(0, line_no - 3):line_no])
            child = path + (name,)
            if CFG_TEST.search(attrs):
                self.test_mods.add(child)
                continue
            base = file.parent if (is_root or file.name == "mod.rs") else file.parent / file.stem
            explicit = [PATH_ATTR.search(l) for l in lines[max(0, line_no - 3):line_no]]
            explicit = [e for e in explicit if e]
            if explicit:
                target = file.parent / explicit[-1].group(1)
            elif (base / f"{name}.rs").exists():
                target = base / f"{name}.rs"
            else:
                target = base / name / "mod.rs"
            if target.exists():
                self._load(child, target, is_root=False)

    def modules(self) -> set[tuple[str, ...]]:
        return set(self.files)

    def resolve(self, here: tuple[str, ...], ref: str) -> tuple[str, ...] | None:
        parts = ref.split("::")
        if parts[0] == "crate":
            cur, rest = (), parts[1:]
        else:
            cur, rest = here, parts
            while rest and rest[0] in ("super", "self"):
                if rest[0] == "super":
                    cur = cur[:-1]
                rest = rest[1:]
        mods = self.modules()
        best = cur
        probe = cur
        for p in rest:
            probe = probe + (p,)
            if probe in mods:
                best = probe
            else:
                break
        return best

    def edges(self) -> dict[tuple[str, ...], dict[tuple[str, ...], list[str]]]:
        out: dict = {m: {} for m in self.files}
        for mod, file in self.files.items():
            src = drop_test_modules(strip_comments(file.read_text(encoding="utf-8", errors="replace")))
            refs: list[tuple[str, int]] = []
            for m in re.finditer(r"\buse\s+([^;]+);", src):
                line = src.count("\n", 0, m.start()) + 1
                for p in expand_use(m.group(1)):
                    if p.startswith(("crate::", "super::", "self::")) or p in ("super", "self"):
                        refs.append((p, line))
            for m in INLINE_PATH.finditer(src):
                # `use` trees were read whole above; their inner paths would be read wrongly here.
                line_start = src.rfind("\n", 0, m.start()) + 1
                if re.match(r"\s*(pub(\([^)]*\))?\s+)?use\b", src[line_start:m.start()]):
                    continue
                refs.append((m.group(1), src.count("\n", 0, m.start()) + 1))
            rel = file.relative_to(self.root_file.parent.parent)
            for ref, line in refs:
                target = self.resolve(mod, ref)
                if target is None or target == mod:
                    continue
                if target[: len(mod)] == mod or mod[: len(target)] == target:
                    continue  # ancestor/descendant: one unit (see module doc)
                out[mod].setdefault(target, []).append(f"{rel}:{line}: {ref}")
        return out


def sccs(graph: dict) -> list[list]:
    """Tarjan's strongly connected components (iterative: module graphs can be deep)."""
    index, low, on, stack, res, counter = {}, {}, set(), [], [], [0]
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in graph:
                    continue
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(graph[w])))
                    advanced = True
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    res.append(sorted(comp))
    return res


def name(mod: tuple[str, ...]) -> str:
    return "::".join(mod) or "crate"


def crate_roots(root: Path) -> list[Path]:
    cargo = (root / "Cargo.toml").read_text()
    members = re.search(r"members\s*=\s*\[([^\]]*)\]", cargo)
    dirs = re.findall(r'"([^"]+)"', members.group(1)) if members else ["."]
    roots = []
    for d in dirs:
        src = root / d / "src"
        roots += [p for p in (src / "lib.rs", src / "main.rs") if p.exists()]
        roots += sorted((src / "bin").glob("*.rs")) if (src / "bin").is_dir() else []
    return roots


def check(root: Path, show_graph: bool) -> int:
    cycles = 0
    for r in crate_roots(root):
        crate = Crate(r)
        graph = crate.edges()
        if show_graph:
            for a in sorted(graph):
                for b in sorted(graph[a]):
                    print(f"{r.relative_to(root)}: {name(a)} -> {name(b)}")
        for comp in sccs(graph):
            cycles += 1
            members = set(comp)
            print(f"import cycle in {r.relative_to(root)}: {{{', '.join(name(m) for m in comp)}}}")
            for a in comp:
                for b, where in sorted(graph[a].items()):
                    if b in members:
                        print(f"  {name(a)} -> {name(b)}   ({where[0]}{'' if len(where) == 1 else f' and {len(where) - 1} more'})")
    if cycles:
        print(f"{cycles} import cycle(s): move the shared item to a module both can import (see scripts/check-module-cycles.py)")
        return 1
    print(f"no import cycles in {len(crate_roots(root))} crate roots")
    return 0


def self_test() -> int:
    """Builds small crates on disk and checks the verdicts, so a broken parser cannot pass everything."""
    cases = {
        "sibling cycle": ({"lib.rs": "mod a; mod b;", "a.rs": "use crate::b::X;", "b.rs": "use crate::a::Y; pub struct X;"}, 1),
        "nested use tree": ({"lib.rs": "mod a; mod b;", "a.rs": "use crate::{b::{X, Z as W}};", "b.rs": "pub fn f() { super::a::g() }"}, 1),
        "parent and child are one unit": ({"lib.rs": "mod ws;", "ws/mod.rs": "mod hub; pub use hub::H; pub struct T;", "ws/hub.rs": "use super::T; pub struct H;"}, 0),
        "children cycle through super": ({"lib.rs": "mod ws;", "ws/mod.rs": "mod hub; mod up;", "ws/hub.rs": "use super::up::U;", "ws/up.rs": "fn f() { super::hub::g() }"}, 1),
        "test modules are skipped": ({"lib.rs": "mod a; mod b;", "a.rs": "use crate::b::X;", "b.rs": "#[cfg(test)]\nmod tests { use crate::a::Y; }"}, 0),
        "comments and strings are not edges": ({"lib.rs": "mod a; mod b;", "a.rs": "use crate::b::X;", "b.rs": "// crate::a::Y\nconst S: &str = \"crate::a::Y\";"}, 0),
        "acyclic chain": ({"lib.rs": "mod a; mod b; mod c;", "a.rs": "use crate::b::X;", "b.rs": "use crate::c::X;", "c.rs": ""}, 0),
        "inline path in code": ({"lib.rs": "mod a; mod b;", "a.rs": "fn f() { crate::b::g(); }", "b.rs": "fn g() { let _ = crate::a::f; }"}, 1),
    }
    failed = 0
    for label, (files, want) in cases.items():
        with tempfile.TemporaryDirectory() as d:
            root = Path(d)
            (root / "Cargo.toml").write_text('[workspace]\nmembers = ["c"]\n')
            for f, text in files.items():
                p = root / "c" / "src" / f
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_text(text)
            got = len(sccs(Crate(root / "c" / "src" / "lib.rs").edges()))
            ok = got == want
            failed += not ok
            print(f"self-test {'ok  ' if ok else 'FAIL'} {label}: {got} cycle(s), want {want}")
    return 1 if failed else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("--graph", action="store_true", help="print every edge")
    a = ap.parse_args()
    if a.self_test:
        return self_test()
    return check(a.root, a.graph)


if __name__ == "__main__":
    sys.exit(main())
