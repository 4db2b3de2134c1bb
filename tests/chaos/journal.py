"""Lost journal tail for one stopped replica: cut its PySyncObj-format journal back to an
earlier record boundary, the way a disk that lost written data (or, before the journal was
synced, a crash losing the unsynced tail of PySyncObj's mmap'ed file) would leave it. Real power
cuts, which lose only unsynced data, are ``tests.powercut``'s.

The format (pysyncobj 0.3.17 ``journal.FileJournal``; docs/pysyncobj.md, "Files"): a 40-byte
header (name 24 B, version 8 B, format u32, offset of the end of the last record u32, all
little-endian), then records ``u32 len | u64 idx | u64 term | command | u32 len`` where ``len``
counts idx + term + command. Only the header's end offset says where the records stop, so a cut
rewrites that offset (and zeroes the dropped bytes, as a lost page would read back).

Keeping the rest consistent, as a real power loss could leave it:
* ``<journal>.meta`` holds ``raftCommitIndex``: it is clamped to the last kept index (the commit
  index is only ever written after the entries it covers). ``currentTerm``/``votedForNodeId``
  are kept: PySyncObj writes them synchronously on change, and losing a vote is the separate,
  documented exposure of issue #84, not what this fault models.
* ``raft.dump`` (the snapshot) covers the log up to its entry index; PySyncObj keeps the journal
  starting at the entry before it. If the dump is newer than the cut and the journal still starts
  at index 1, the dump is deleted (its write was lost too); otherwise the cut never goes below the
  dump's index (a journal that starts after index 1 without its dump is not a state any crash of
  a correctly ordered write could produce).
"""

from __future__ import annotations

import gzip
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

HEADER_SIZE = 40
END_OFFSET_AT = 36


@dataclass(frozen=True)
class Record:
    offset: int  # where the record starts
    end: int  # where the next one starts
    idx: int
    term: int


@dataclass(frozen=True)
class Cut:
    kept: int  # records kept
    dropped: int  # records dropped
    last_idx: int  # Raft index of the last kept record
    dump_deleted: bool


def records(journal: Path) -> list[Record]:
    data = journal.read_bytes()
    (end,) = struct.unpack_from("<I", data, END_OFFSET_AT)
    found, offset = [], HEADER_SIZE
    while offset < end:
        (size,) = struct.unpack_from("<I", data, offset)
        idx, term = struct.unpack_from("<QQ", data, offset + 4)
        found.append(Record(offset, offset + size + 8, idx, term))
        offset += size + 8
    return found


def dump_index(dump: Path) -> int | None:
    """Raft index of the last applied entry stored in the snapshot, or None without one."""
    if not dump.exists():
        return None
    with gzip.open(dump, "rb") as f:
        data = pickle.load(f)
    entry = data[1]  # (command, idx, term) at lastApplied
    return int(entry[1])


def cut_plan(journal: Path, drop: int) -> tuple[int, bool]:
    """How many records to keep when asked to drop ``drop`` of them, and whether the dump goes."""
    found = records(journal)
    dump = dump_index(journal.parent / "raft.dump")
    keep = max(1, len(found) - drop)
    if dump is None or found[keep - 1].idx >= dump:
        return keep, False
    if found[0].idx == 1:
        return keep, True
    floor = next((i + 1 for i, r in enumerate(found) if r.idx >= dump), len(found))
    return max(keep, floor), False


def power_loss(data_dir: Path, drop: int) -> Cut:
    """Drop up to ``drop`` records from the end of the stopped replica's journal."""
    journal = data_dir / "raft.journal"
    found = records(journal)
    keep, delete_dump = cut_plan(journal, drop)
    new_end = found[keep - 1].end
    with journal.open("r+b") as f:
        old_end = found[-1].end
        f.seek(new_end)
        f.write(b"\0" * (old_end - new_end))
        f.seek(END_OFFSET_AT)
        f.write(struct.pack("<I", new_end))
    last = found[keep - 1].idx
    _clamp_meta(Path(str(journal) + ".meta"), last)
    if delete_dump:
        (data_dir / "raft.dump").unlink()
    return Cut(keep, len(found) - keep, last, delete_dump)


def _clamp_meta(meta: Path, last_idx: int) -> None:
    if not meta.exists():
        return
    values = pickle.loads(meta.read_bytes())
    if values.get("raftCommitIndex", 0) > last_idx:
        values["raftCommitIndex"] = last_idx
        tmp = meta.with_name(meta.name + ".tmp")
        tmp.write_bytes(pickle.dumps(values, protocol=2))
        tmp.replace(meta)
