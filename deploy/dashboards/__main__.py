"""`python -m deploy.dashboards [--check]`: write the dashboards' JSON into the chart, or (with
--check) exit 1 naming every file that differs from what the code makes."""

from __future__ import annotations

import sys

from deploy.dashboards import OUT_DIR, render_all, write_all


def main(argv: list[str]) -> int:
    if argv[1:] == ["--check"]:
        stale = [
            name
            for name, text in render_all().items()
            if not (OUT_DIR / name).exists() or (OUT_DIR / name).read_text() != text
        ]
        for name in stale:
            sys.stderr.write(f"{OUT_DIR / name} is not what deploy/dashboards makes\n")
        return 1 if stale else 0
    for path in write_all():
        sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
