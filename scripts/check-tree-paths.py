#!/usr/bin/env python3
"""Fails when a file in the repository refers to a path above the repository root.

Why: the project must work from a fresh clone with nothing beside it. A test that reads a folder two levels
above its crate passes on a machine that happens to have that folder and fails for everyone else.

How: every path-like token that climbs with `../` is resolved the ways the file's language could mean it,
and the file is flagged if any of those lands outside the root:
  - against the file's own directory (shell `$(dirname "$0")`, `include_str!`, Markdown links);
  - for Rust, also against the crate's directory (`concat!(env!("CARGO_MANIFEST_DIR"), "/../..")`);
  - a token that starts with a variable (`$root/..`, `${k8s}/../x`) is resolved from the file's directory,
    except the names this project uses for the repository root, which are resolved from the root.
Absolute paths cannot be judged this way; the checker also refuses any relative path into a `shared/`
folder beside the checkout, which is where such paths always pointed.

Usage: scripts/check-tree-paths.py [--root DIR]     check a tree (default: this repository)
       scripts/check-tree-paths.py --self-test      prove the checker catches what it must
"""
from __future__ import annotations

import argparse
import os
import pathlib
import re
import subprocess
import sys
import tempfile

# Data and generated lockfiles carry no paths worth checking and are large.
SKIP_SUFFIXES = {".lock", ".jsonl", ".png", ".svg", ".bin", ".gz", ".tgz", ".zip"}
SKIP_NAMES = {"package-lock.json", "go.sum"}
# A path token: a maximal run of path characters. Only tokens with a `/` and a `..` component are paths
# that climb; `0..n` or `..Default::default()` are not.
TOKEN = re.compile(r"[\w.${}/-]+")
# Names this project's scripts give the repository root; `$root/..` is outside it.
ROOT_VARS = {"root", "repo", "top", "ROOT", "REPO_ROOT"}
SHARED = re.compile(r"\.\./(?:\.\./)*shared/")


def files(root: pathlib.Path) -> list[pathlib.Path]:
    """Tracked and new (not ignored) files, or every file when the tree is not a git checkout."""
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            check=True, capture_output=True,
        ).stdout
        names = [n for n in out.decode().split("\0") if n]
        return [root / n for n in names if (root / n).is_file()]
    except (subprocess.CalledProcessError, FileNotFoundError):
        return [p for p in root.rglob("*") if p.is_file() and ".git" not in p.parts]


def crate_dir(path: pathlib.Path, root: pathlib.Path) -> pathlib.Path | None:
    """The nearest directory at or above `path` with a Cargo.toml, inside the root."""
    d = path.parent
    while True:
        if (d / "Cargo.toml").is_file():
            return d
        if d == root or root not in d.parents:
            return None
        d = d.parent


def escapes(base: pathlib.Path, rel: str, root: pathlib.Path) -> bool:
    """Whether `rel`, taken from `base`, leaves `root` at any step."""
    depth = len(base.relative_to(root).parts)
    for part in rel.split("/"):
        if part in ("", "."):
            continue
        depth += -1 if part == ".." else 1
        if depth < 0:
            return True
    return False


def split_variable(token: str) -> tuple[str | None, str]:
    """`$root/../x` -> ("root", "../x"); `$(dirname "$0")/..` is cut at the first slash the same way."""
    m = re.match(r"^\$\{?(\w+)\}?(/.*)?$", token)
    if m:
        return m.group(1), (m.group(2) or "").lstrip("/")
    return None, token


def check(root: pathlib.Path) -> list[str]:
    problems = []
    me = pathlib.Path(__file__).resolve()
    for path in files(root):
        # This file's own examples are the escapes it looks for.
        if path.resolve() == me or path.suffix in SKIP_SUFFIXES or path.name in SKIP_NAMES:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary: no paths to read
        rel_file = path.relative_to(root)
        crate = crate_dir(path, root) if path.suffix == ".rs" else None
        for n, line in enumerate(text.splitlines(), 1):
            if SHARED.search(line):
                problems.append(f"{rel_file}:{n}: refers to a shared/ folder beside the checkout: {line.strip()}")
                continue
            for token in TOKEN.findall(line):
                if "/" not in token or ".." not in token.split("/"):
                    continue
                var, rel = split_variable(token)
                bases = [root] if var in ROOT_VARS else [path.parent]
                if crate is not None and var is None:
                    bases.append(crate)
                if any(escapes(b, rel, root) for b in bases):
                    problems.append(f"{rel_file}:{n}: `{token}` leads outside the repository")
    return problems


def self_test() -> int:
    """Builds small trees with and without an escaping path and checks the verdicts."""
    cases = {
        # The defect issue 9 found: a test crate reading the workplace's shared folder.
        "rust manifest-relative": ("tests/tests/t.rs",
            # (assembled, so that this file does not itself name the folder it forbids)
            'let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../../' + 'shared/corpus/x.jsonl");', True),
        "rust manifest-relative, other name": ("tests/tests/t.rs",
            'let p = concat!(env!("CARGO_MANIFEST_DIR"), "/../../elsewhere/x");', True),
        "shell from the root": ("scripts/a.sh", 'cat "$root/../notes.txt"', True),
        "shell from the script": ("scripts/a.sh", 'cat "$(dirname "$0")/../../x"', True),
        "markdown link": ("docs/a.md", "see [there](../../x.md)", True),
        "rust include inside": ("tests/tests/t.rs", 'include_str!("../corpus/x.jsonl")', False),
        "shell inside": ("k8s/ci/v.sh", 'hadolint "$k8s/../gateway/Dockerfile"', False),
        "rust manifest inside": ("tests/tests/t.rs",
            'concat!(env!("CARGO_MANIFEST_DIR"), "/corpus/x.jsonl")', False),
    }
    failed = 0
    for name, (rel, content, bad) in cases.items():
        with tempfile.TemporaryDirectory() as tmp:
            root = pathlib.Path(tmp)
            (root / "tests").mkdir()
            (root / "tests" / "Cargo.toml").write_text("[package]\n")
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content + "\n")
            found = bool(check(root))
            if found != bad:
                failed += 1
                print(f"self-test FAILED: {name}: expected {'a finding' if bad else 'none'}, got {check(root)}")
    print(f"check-tree-paths self-test: {len(cases) - failed}/{len(cases)} cases as expected")
    return 1 if failed else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=pathlib.Path, default=pathlib.Path(__file__).resolve().parent.parent)
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    root = args.root.resolve()
    problems = check(root)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"check-tree-paths: {len(problems)} reference(s) outside {root}; copy what is needed into "
              "the repository instead", file=sys.stderr)
        return 1
    print(f"check-tree-paths: no file refers to a path outside the repository ({os.path.basename(root)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
