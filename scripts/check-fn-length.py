#!/usr/bin/env python3
"""Fails on a non-test function over 80 lines unless the comment above it says why it is long.

Why: a long function is where a newcomer loses the thread (issue 12 found five of 140-290 lines). Some are
long for a reason (one `match` over every variant, a table); those say so in a comment or doc line above the
`fn` containing "long because" or "over 80 lines", and the check lets them be.

Scope: `src/` of every workspace member; `#[cfg(test)]` modules, `*_tests.rs` and `tests.rs` files are tests.
A function's length is counted from its `fn` line to its closing brace.

Usage: check-fn-length.py [--root DIR] [--max N] [--self-test] [--list]
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("cycles", HERE / "check-module-cycles.py")
cycles = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cycles)  # type: ignore[union-attr]

FN = re.compile(r"(?<![\w])fn\s+(\w+)")
MARK = re.compile(r"long because|over 80 lines", re.I)


def functions(src: str) -> list[tuple[str, int, int]]:
    """(name, first line, last line) of every fn with a body, test modules blanked out first."""
    code = cycles.drop_test_modules(cycles.strip_comments(src))
    res = []
    for m in FN.finditer(code):
        # The body starts at the first `{` after the signature, unless a `;` ends it first (trait method).
        i = m.end()
        depth_paren = 0
        while i < len(code):
            c = code[i]
            if c in "([<":
                depth_paren += 1
            elif c in ")]>":
                depth_paren = max(0, depth_paren - 1)
            elif c == ";" and depth_paren == 0:
                i = -1
                break
            elif c == "{" and depth_paren == 0:
                break
            i += 1
        if i < 0 or i >= len(code):
            continue
        depth, j = 0, i
        while j < len(code):
            depth += {"{": 1, "}": -1}.get(code[j], 0)
            if depth == 0:
                break
            j += 1
        first = code.count("\n", 0, m.start()) + 1
        last = code.count("\n", 0, j) + 1
        res.append((m.group(1), first, last))
    return res


def justified(lines: list[str], fn_line: int) -> bool:
    """True when the comment/attribute block right above line `fn_line` (1-based) says why it is long."""
    i = fn_line - 2
    while i >= 0:
        s = lines[i].strip()
        if s.startswith(("//", "#[", "*", "/*")) or s.endswith("*/"):
            if MARK.search(s):
                return True
            i -= 1
            continue
        break
    # The comment may also open the body (`fn f() {\n    // Long because …`).
    return any(MARK.search(l) for l in lines[fn_line - 1:fn_line + 2])


def source_files(root: Path) -> list[Path]:
    files = []
    for r in cycles.crate_roots(root):
        src = r.parent if r.parent.name == "src" else r.parent.parent
        files += [p for p in src.rglob("*.rs") if not (p.name == "tests.rs" or p.name.endswith("_tests.rs"))]
    return sorted(set(files))


def check(root: Path, limit: int, list_all: bool) -> int:
    bad = 0
    for f in source_files(root):
        text = f.read_text(encoding="utf-8", errors="replace")
        lines = text.splitlines()
        for name, first, last in functions(text):
            n = last - first + 1
            if n <= limit:
                continue
            ok = justified(lines, first)
            if list_all or not ok:
                print(f"{f.relative_to(root)}:{first}: fn {name} is {n} lines{' (says why)' if ok else ''}")
            bad += not ok
    if bad:
        print(f"{bad} function(s) over {limit} lines without a comment saying why (\"long because …\"): split them or say why")
        return 1
    print(f"no unexplained function over {limit} lines")
    return 0


def self_test() -> int:
    body = "\n".join(f"    let x{i} = {i};" for i in range(85))
    cases = {
        "long, unexplained": (f"fn a() {{\n{body}\n}}\n", 1),
        "long, explained": (f"// Long because: one arm per variant.\nfn a() {{\n{body}\n}}\n", 0),
        "long test": (f"#[cfg(test)]\nmod tests {{\n    fn a() {{\n{body}\n    }}\n}}\n", 0),
        "short": ("fn a() { let s = \"}\"; }\nfn b();\n", 0),
        "trait method without body then long fn": (f"trait T {{ fn x(&self); }}\nfn a() -> Vec<u8> {{\n{body}\n}}\n", 1),
    }
    failed = 0
    for label, (src, want) in cases.items():
        with tempfile.TemporaryDirectory() as d:
            root = Path(d)
            (root / "Cargo.toml").write_text('[workspace]\nmembers = ["c"]\n')
            (root / "c" / "src").mkdir(parents=True)
            (root / "c" / "src" / "lib.rs").write_text(src)
            lines = src.splitlines()
            got = sum(1 for _, a, b in functions(src) if b - a + 1 > 80 and not justified(lines, a))
            ok = got == want
            failed += not ok
            print(f"self-test {'ok  ' if ok else 'FAIL'} {label}: {got}, want {want}")
    return 1 if failed else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", type=Path, default=HERE.parent)
    ap.add_argument("--max", type=int, default=80)
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("--list", action="store_true", help="also list long functions that say why")
    a = ap.parse_args()
    return self_test() if a.self_test else check(a.root, a.max, a.list)


if __name__ == "__main__":
    sys.exit(main())
