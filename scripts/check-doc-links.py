#!/usr/bin/env python3
"""Fails when a Markdown page links to a file or a heading that does not exist.

Why: the docs were split into pages (issue 12) and link to each other and to code by relative path and
`#anchor`; a renamed file or heading would otherwise leave a dead link nobody notices until an operator does.

Checks every tracked `*.md` except vendored ones (`node_modules`, `.tools`, `tests/corpus` keeps its source's
links). Anchors are GitHub's: lower case, punctuation dropped, spaces to `-`, `-N` for repeats.

Usage: check-doc-links.py [--root DIR] [--self-test]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")


def anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    in_fence = False
    for line in text.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        m = None if in_fence else HEADING.match(line)
        if not m:
            continue
        title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", m.group(2))  # a link in a heading keeps its text
        slug = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def links(text: str):
    in_fence = False
    for no, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        for m in LINK.finditer(re.sub(r"`[^`]*`", "", line)):
            yield no, m.group(1)


def check_files(root: Path, files: list[Path]) -> list[str]:
    problems = []
    cache: dict[Path, set[str]] = {}
    for f in files:
        text = f.read_text(encoding="utf-8", errors="replace")
        for no, target in links(text):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                continue  # http:, https:, mailto:
            path_part, _, anchor = target.partition("#")
            dest = f if not path_part else (f.parent / path_part).resolve()
            where = f"{f.relative_to(root)}:{no}: {target}"
            if not dest.exists():
                problems.append(f"{where}: no such file")
                continue
            if anchor and dest.suffix == ".md":
                if dest not in cache:
                    cache[dest] = anchors(dest.read_text(encoding="utf-8", errors="replace"))
                if anchor not in cache[dest]:
                    problems.append(f"{where}: no heading #{anchor} in {dest.relative_to(root)}")
    return problems


def tracked_md(root: Path) -> list[Path]:
    out = subprocess.run(["git", "ls-files", "*.md"], cwd=root, capture_output=True, text=True, check=True).stdout
    skip = ("node_modules/", ".tools/", "tests/corpus/")
    return [root / p for p in out.split() if not any(s in p for s in skip) and (root / p).exists()]


def self_test() -> int:
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        (root / "docs").mkdir()
        (root / "docs" / "a.md").write_text(
            "# Title\n## Install: one command per environment × size\n## Same\n## Same\n"
            "[ok](b.md) [ok](#title) [ok](b.md#b-section) [ok](#same-1) [ok](#install-one-command-per-environment--size)\n"
            "[bad](c.md) [bad](b.md#nope) `[not a link](x.md)` [web](https://example.invalid/x)\n"
            "```\n[in a fence](y.md)\n```\n")
        (root / "docs" / "b.md").write_text("# B section\n")
        got = check_files(root, [root / "docs" / "a.md"])
        want = 2
        ok = len(got) == want
        for p in got:
            print("  found:", p)
        print(f"self-test {'ok' if ok else 'FAIL'}: {len(got)} dead links, want {want}")
        return 0 if ok else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args()
    if a.self_test:
        return self_test()
    files = tracked_md(a.root)
    problems = check_files(a.root, files)
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} dead link(s) in the docs")
        return 1
    print(f"links in {len(files)} Markdown pages resolve")
    return 0


if __name__ == "__main__":
    sys.exit(main())
