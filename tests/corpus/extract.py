#!/usr/bin/env python3
"""Rebuilds execution-apis-requests.jsonl from a checkout of ethereum/execution-apis.

Every `.io` test case under the checkout's `tests/` holds request lines (`>> {json}`) and response lines
(`<< {json}`). We keep only the requests, one JSON object per line, in path order:
    {"case": "<method>/<case>", "request": {...}}
The responses belong to that repository's own test chain, so they mean nothing against another node.

Usage: python3 tests/corpus/extract.py PATH/TO/execution-apis > tests/corpus/execution-apis-requests.jsonl
"""
import json
import pathlib
import sys


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    tests = pathlib.Path(sys.argv[1]) / "tests"
    cases = sorted(tests.rglob("*.io"))
    if not cases:
        print(f"extract.py: no .io test cases under {tests}; is this an execution-apis checkout?", file=sys.stderr)
        return 1
    for path in cases:
        case = path.relative_to(tests).with_suffix("").as_posix()
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.startswith(">>"):
                continue
            try:
                request = json.loads(line[2:])
            except json.JSONDecodeError as e:
                print(f"extract.py: {path}:{n}: request line is not JSON ({e})", file=sys.stderr)
                return 1
            # Compact separators: one line per request, byte-stable across refreshes.
            print(json.dumps({"case": case, "request": request}, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
