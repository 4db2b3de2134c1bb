"""The durable Raft journal: PySyncObj's file format, group commit, atomic rewrites, torn tails."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from overlay_master.durable_journal import END_OFFSET_AT, DurableJournal, record
from overlay_master.pysyncobj_compat import pysyncobj

pytestmark = pytest.mark.unit


def entries(first: int, last: int, term: int = 1) -> list[tuple[bytes, int, int]]:
    return [(b"\x00cmd-%d" % i, i, term) for i in range(first, last + 1)]


def journal_with(path: Path, items: list[tuple[bytes, int, int]]) -> DurableJournal:
    journal = DurableJournal(str(path))
    for entry in items:
        journal.add(*entry)
    journal.flush()
    return journal


def reopen(journal: DurableJournal) -> list[tuple[bytes, int, int]]:
    journal._destroy()
    again = DurableJournal(journal.path)
    found = list(again[:])
    again._destroy()
    return found


def test_appends_reach_the_file_only_at_flush_and_survive_a_reopen(tmp_path: Path) -> None:
    journal = DurableJournal(str(tmp_path / "raft.journal"))
    for entry in entries(1, 5):
        journal.add(*entry)
    assert journal.dirty
    assert DurableJournal(journal.path)[:] == []  # nothing written before the flush
    journal.flush()
    assert not journal.dirty
    assert reopen(journal) == entries(1, 5)


def test_term_and_vote_are_durable_after_the_flush(tmp_path: Path) -> None:
    journal = DurableJournal(str(tmp_path / "raft.journal"))
    journal.setCurrentTerm(7, "127.0.0.1:1")
    assert journal.dirty
    journal.flush()
    again = DurableJournal(journal.path)
    assert (again.getCurrentTerm(), again.getVotedForNodeId()) == (7, "127.0.0.1:1")


def test_stock_pysyncobj_reads_our_journal_and_we_read_its(tmp_path: Path) -> None:
    ours = journal_with(tmp_path / "ours", entries(1, 40))
    ours._destroy()
    stock = pysyncobj.journal.FileJournal(str(tmp_path / "ours"))
    assert [stock[i] for i in range(len(stock))] == entries(1, 40)
    for entry in entries(41, 45):
        stock.add(*entry)
    stock._destroy()
    assert DurableJournal(str(tmp_path / "ours"))[:] == entries(1, 45)


def test_truncation_then_appends_overwrite_in_place(tmp_path: Path) -> None:
    journal = journal_with(tmp_path / "j", entries(1, 10))
    journal.deleteEntriesFrom(6)  # entries 7..10 conflict with a new leader's
    for entry in entries(7, 8, term=2):
        journal.add(*entry)
    journal.flush()
    assert reopen(journal) == entries(1, 6) + entries(7, 8, term=2)


def test_truncating_unwritten_entries_only_drops_them(tmp_path: Path) -> None:
    journal = journal_with(tmp_path / "j", entries(1, 3))
    for entry in entries(4, 6):
        journal.add(*entry)
    journal.deleteEntriesFrom(4)  # keeps 1..4; 5 and 6 were never written
    journal.flush()
    assert reopen(journal) == entries(1, 4)


def test_compaction_rewrites_the_whole_file_atomically(tmp_path: Path) -> None:
    journal = journal_with(tmp_path / "j", entries(1, 20))
    journal.deleteEntriesTo(15)
    assert journal.dirty
    assert DurableJournal(journal.path)[:] == entries(1, 20)  # the old log until the flush
    journal.flush()
    assert not (tmp_path / "j.tmp").exists()
    journal.add(*entries(21, 21)[0])
    journal.flush()
    assert reopen(journal) == entries(16, 21)


def test_a_torn_tail_is_ignored_and_overwritten(tmp_path: Path) -> None:
    journal = journal_with(tmp_path / "j", entries(1, 5))
    journal._destroy()
    path = tmp_path / "j"
    data = bytearray(path.read_bytes())
    (end,) = struct.unpack_from("<I", data, END_OFFSET_AT)
    torn = record(entries(6, 6)[0])[:-3]  # the header moved on, the record did not all land
    data[end : end + len(torn)] = torn
    struct.pack_into("<I", data, END_OFFSET_AT, end + len(torn) + 3)
    path.write_bytes(bytes(data))
    again = DurableJournal(str(path))
    assert again[:] == entries(1, 5)
    again.add(*entries(6, 6, term=2)[0])
    again.flush()
    assert reopen(again) == entries(1, 5) + entries(6, 6, term=2)


def test_records_out_of_order_end_the_log(tmp_path: Path) -> None:
    path = tmp_path / "j"
    journal = journal_with(path, entries(1, 3))
    journal._destroy()
    data = bytearray(path.read_bytes())
    (end,) = struct.unpack_from("<I", data, END_OFFSET_AT)
    stale = record((b"\x00old", 2, 1))  # a record left from before a truncation
    data[end:end] = stale
    struct.pack_into("<I", data, END_OFFSET_AT, end + len(stale))
    path.write_bytes(bytes(data))
    assert DurableJournal(str(path))[:] == entries(1, 3)


def test_reload_keeps_the_tail_after_the_snapshot_point(tmp_path: Path) -> None:
    """A snapshot made durable, then a crash before the journal's rewrite: PySyncObj clears the
    journal to the snapshot's two entries; the entries after them must come back."""
    journal = journal_with(tmp_path / "j", entries(1, 12))
    journal.begin_reload()
    journal.clear()
    journal.add(*entries(7, 7)[0])
    journal.add(*entries(8, 8)[0])
    journal.end_reload()
    journal.flush()
    assert reopen(journal) == entries(7, 12)


def test_a_snapshot_from_the_leader_really_clears(tmp_path: Path) -> None:
    journal = journal_with(tmp_path / "j", entries(1, 12))
    journal.clear()  # not a reload: the leader's snapshot replaces everything
    journal.add(*entries(20, 20, term=3)[0])
    journal.add(*entries(21, 21, term=3)[0])
    journal.flush()
    assert reopen(journal) == entries(20, 21, term=3)
