"""Power-loss emulation on real PySyncObj journal files (written and read back by FileJournal)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from pysyncobj.journal import FileJournal

from tests.chaos import journal

pytestmark = pytest.mark.unit


def write_journal(path: Path, count: int, commit: int) -> None:
    j = FileJournal(str(path))
    for idx in range(1, count + 1):
        j.add(b"\x00" + pickle.dumps({"op": "register", "n": idx}), idx, 1 + idx // 10)
    j.setRaftCommitIndex(commit)
    j.onOneSecondTimer()  # stores .meta, as the tick does once a second
    j._destroy()


def read_back(path: Path) -> tuple[list[tuple[int, int]], int]:
    j = FileJournal(str(path))
    try:
        return [(j[i][1], j[i][2]) for i in range(len(j))], j.getRaftCommitIndex()
    finally:
        j._destroy()


def test_cut_keeps_a_prefix_of_whole_records_and_clamps_the_commit_index(tmp_path: Path) -> None:
    path = tmp_path / "raft.journal"
    write_journal(path, 50, commit=48)
    before, _ = read_back(path)
    cut = journal.power_loss(tmp_path, drop=7)
    after, commit = read_back(path)
    assert (cut.kept, cut.dropped, cut.last_idx) == (43, 7, 43)
    assert after == before[:43]
    assert commit == 43


def test_cut_never_drops_the_whole_journal(tmp_path: Path) -> None:
    write_journal(tmp_path / "raft.journal", 5, commit=2)
    cut = journal.power_loss(tmp_path, drop=100)
    after, commit = read_back(tmp_path / "raft.journal")
    assert cut.kept == 1 and after == [(1, 1)] and commit == 1


def test_cut_does_not_go_below_a_dump_of_a_compacted_journal(tmp_path: Path) -> None:
    path = tmp_path / "raft.journal"
    j = FileJournal(str(path))
    for idx in range(20, 41):  # compacted: starts after index 1
        j.add(b"\x01", idx, 3)
    j._destroy()
    dump = (None, (b"\x01", 21, 3), (b"\x01", 20, 3), set())
    import gzip

    with gzip.open(tmp_path / "raft.dump", "wb") as f:
        pickle.dump(dump, f)
    cut = journal.power_loss(tmp_path, drop=100)
    assert cut.last_idx == 21 and not cut.dump_deleted
    assert (tmp_path / "raft.dump").exists()
