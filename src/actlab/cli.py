"""Command-line interface (filled in by the CLI issue)."""

import sys


def main(argv: list[str] | None = None) -> int:
    print("actlab: the command-line interface is not built yet.", file=sys.stderr)
    return 2
