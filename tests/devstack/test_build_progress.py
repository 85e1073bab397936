"""`dev up` echoes the chain build's progress from its log while it waits: the chain scripts'
own lines as they come, cargo's host crates one line per 20, and never half a line."""

from __future__ import annotations

from pathlib import Path

from services.devstack.stack import BuildProgress


def test_progress_lines_are_echoed_once_and_compiling_lines_summarised(tmp_path: Path) -> None:
    log = tmp_path / "chain.log"
    said: list[str] = []
    progress = BuildProgress(log, said.append)
    progress()  # no log yet: nothing to say, no error
    assert said == []
    compiling = "".join(f"   Compiling crate{i} v1.0.0\n" for i in range(1, 41))
    log.write_text("==> cargo build: the runtime's wasm\n" + compiling + "    wasm: 12 of abo")
    progress()
    assert said == [
        "    ==> cargo build: the runtime's wasm",
        "    host build: 20 crates, latest crate20",
        "    host build: 40 crates, latest crate40",
    ]
    with log.open("a") as f:
        f.write("ut 158 crates compiled, latest frame_support (60 s)\n<== chain build: 61 s\n")
    progress()
    progress()  # read once: nothing new
    assert said[3:] == [
        "    wasm: 12 of about 158 crates compiled, latest frame_support (60 s)",
        "    <== chain build: 61 s",
    ]
