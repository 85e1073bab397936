"""`dev up` echoes the chain build's progress from its log while it waits: the chain scripts'
own lines as they come, cargo's crates one line per 20, and never half a line."""

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
    log.write_text("==> cargo rustc: the runtime's wasm\n" + compiling + "<== chain bu")
    progress()
    assert said == [
        "    ==> cargo rustc: the runtime's wasm",
        "    compiled 20 crates, latest crate20",
        "    compiled 40 crates, latest crate40",
    ]
    with log.open("a") as f:
        f.write("ild: 61 s\n==> wrote /cache/devchain/gridlease-dev.json\n")
    progress()
    progress()  # read once: nothing new
    assert said[3:] == [
        "    <== chain build: 61 s",
        "    ==> wrote /cache/devchain/gridlease-dev.json",
    ]


def test_an_earlier_run_in_the_same_log_is_not_echoed(tmp_path: Path) -> None:
    """Logs are appended to across `dev up`s: a warm start does not repeat a cold one's build."""
    log = tmp_path / "chain.log"
    log.write_text("==> cargo rustc: the runtime's wasm\n<== chain build: 249 s\n")
    said: list[str] = []
    progress = BuildProgress(log, said.append, offset=log.stat().st_size)
    with log.open("a") as f:
        f.write("==> cargo rustc: the runtime's wasm\n<== chain build: 1 s\n")
    progress()
    assert said == ["    ==> cargo rustc: the runtime's wasm", "    <== chain build: 1 s"]
