"""`gridlease-node init`: the node's config file ([node] table) and a systemd unit that runs it.

Pure text builders plus one writer; the files are plain enough to edit by hand afterwards.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["systemd_unit", "toml_table", "write_new"]


def _toml_value(value: Any) -> str:
    # JSON strings and arrays of strings/numbers are valid TOML basic strings and inline arrays.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return json.dumps(value)
    if isinstance(value, Path):
        return json.dumps(str(value))
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        pairs = (f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + ", ".join(pairs) + " }"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def toml_table(table: str, values: Mapping[str, Any], comments: Mapping[str, str]) -> str:
    """`[table]` with one `key = value` per set value, each under its description."""
    lines = [f"[{table}]"]
    for key, value in values.items():
        if value is None:
            continue
        if comments.get(key):
            lines.append(f"# {comments[key]}")
        lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def systemd_unit(exec_start: str, config_file: Path, working_dir: Path) -> str:
    return f"""[Unit]
Description=Gridlease GPU node
Wants=network-online.target
After=network-online.target

[Service]
Environment=GRIDLEASE_CONFIG_FILE={config_file}
WorkingDirectory={working_dir}
ExecStart={exec_start}
# SIGTERM stops serving gracefully; lease workloads keep running and are found again on start.
KillSignal=SIGTERM
TimeoutStopSec=30
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
"""


def write_new(path: Path, text: str, *, force: bool, mode: int = 0o644) -> None:
    """Write text to path; refuse to overwrite an existing file unless force."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    fd = os.open(path, flags, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
