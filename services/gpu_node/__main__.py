"""`python -m services.gpu_node run | init | inventory`; see services/gpu_node/cli.py.

`inventory --raw` prints the capture in the fixture format (tests/gpu_node/fixtures/), which is
how a capture from a real GPU machine replaces the hand-written fixture.
"""

from __future__ import annotations

import sys

from services.gpu_node.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
