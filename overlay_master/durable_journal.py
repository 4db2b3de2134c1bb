"""A Raft journal that is on disk before anything it holds is acknowledged.

PySyncObj 0.3.17 never syncs (issue #84): its journal is an mmap'ed file that the kernel writes
back whenever it likes, ``.meta`` (term, vote, commit index) is written and renamed without a
sync, and the snapshot (``fullDumpFile``) likewise. An acknowledged entry survives ``kill -9``
(it is in the page cache) but not a power cut. This module replaces the journal, in PySyncObj's
own file format, without touching the pinned library.

Design notes
------------
* Same file as ``pysyncobj.journal.FileJournal`` (format 1: 40-byte header whose u32 at offset 36
  is the end of the last record, then ``u32 len | u64 idx | u64 term | command | u32 len``), so a
  data dir written by stock PySyncObj opens here and the other way round. The meta file is the
  same pickled dict in ``<journal>.meta``.
* Appends only go to memory (``pending``); ``flush()`` writes them with one ``pwrite``, moves the
  header's end offset, then ``fdatasync``s once: group commit. The caller (``raft_node``) flushes
  before it sends any message that acknowledges what the journal holds, and before the leader
  counts itself towards a commit. ``flush(durable=False)`` (``--unsafe-no-fsync``) still writes
  (an entry is in the page cache before it is acknowledged, so ``kill -9`` loses nothing) but
  skips the syncs.
* Whole-log rewrites (compaction's ``deleteEntriesTo``, ``clear`` when a snapshot is loaded)
  never overwrite the file in place: the new log goes to ``<journal>.tmp``, is synced, renamed
  over the journal, and the directory is synced. A crash leaves the old log or the new one.
* A truncation (``deleteEntriesFrom``) moves the end back and later appends overwrite in place.
  Until the next flush the disk still says the old end; a real disk may write back the new
  records and not the header, or the reverse. The loader therefore checks every record (length
  repeated at both ends, indexes consecutive, terms not decreasing, inside the end offset) and
  stops at the first bad one: whatever follows was never synced, so never acknowledged.
* Term and vote (``setCurrentTerm``) mark the meta dirty; the next flush writes it durably
  (tmp, fsync, rename, fsync dir) before any vote or acknowledgement leaves the node. The commit
  index is written once a second, after the log it covers has been synced (so after a crash it
  never points past the durable log, PySyncObj's PR #197 case).
* The snapshot: ``durable_replace`` stands in for PySyncObj's ``atomicReplace`` (a plain
  ``os.rename``) in ``pysyncobj.serializer``: the new dump is fsynced, renamed, and its directory
  synced, in the forked child that writes it, before PySyncObj sees the child succeed and
  compacts the journal. Snapshots received from the leader go through the same function.
* Reload keeps the tail: if a crash falls between a durable new dump and the journal's rewrite,
  PySyncObj's start-up finds a journal that does not begin at the dump's entries, clears it and
  keeps just those two, which would silently drop every later entry. Between ``begin_reload`` and
  ``end_reload`` (only around that start-up load) ``clear`` keeps the old entries aside and puts
  back those after the dump's last entry when it is found in them (same index and term: by Raft's
  log matching, the same log up to there).
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from overlay_master.pysyncobj_compat import pysyncobj

log = logging.getLogger(__name__)

Entry = tuple[bytes, int, int]  # (command, index, term), as PySyncObj stores them

_journal_module: Any = pysyncobj.journal
HEADER: bytes = (
    _journal_module.APP_NAME.ljust(_journal_module.NAME_SIZE, b"\0")
    + _journal_module.APP_VERSION.ljust(_journal_module.VERSION_SIZE, b"\0")
    + struct.pack("<I", _journal_module.JOURNAL_FORMAT_VERSION)
)
FIRST_RECORD = len(HEADER) + 4  # 40
END_OFFSET_AT = len(HEADER)  # 36
_dumps: Callable[[Any], bytes] = pysyncobj.pickle.dumps
_loads: Callable[[bytes], Any] = pysyncobj.pickle.loads


class JournalPath(str):
    """``SyncObjConf.journalFile`` for a ``DurableJournal``; ``sync`` False only for benchmarks."""

    sync: bool

    def __new__(cls, path: str | Path, sync: bool = True) -> JournalPath:
        self = super().__new__(cls, str(path))
        self.sync = sync
        return self


def fsync_dir(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def durable_write(path: str, data: bytes, sync: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically (tmp + rename), durably when ``sync``."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)
    if sync:
        fsync_dir(os.path.dirname(os.path.abspath(path)))


def durable_replace(src: str, dst: str) -> None:
    """PySyncObj's ``atomicReplace`` with the data and the rename made durable."""
    fd = os.open(src, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(src, dst)
    fsync_dir(os.path.dirname(os.path.abspath(dst)))


def record(entry: Entry) -> bytes:
    command, idx, term = entry
    body = struct.pack("<QQ", idx, term) + bytes(command)
    size = struct.pack("<I", len(body))
    return size + body + size


def parse(data: bytes, path: str = "journal") -> tuple[list[Entry], list[int], int]:
    """Entries, their offsets, and where the valid log ends (see the module notes)."""
    if len(data) < FIRST_RECORD or not data.startswith(_journal_module.APP_NAME):
        raise ValueError(f"{path} is not a PySyncObj journal (bad header)")
    (end,) = struct.unpack_from("<I", data, END_OFFSET_AT)
    end = min(end, len(data))
    entries: list[Entry] = []
    offsets: list[int] = []
    offset = FIRST_RECORD
    while offset < end:
        if offset + 4 > end:
            break
        (size,) = struct.unpack_from("<I", data, offset)
        stop = offset + 4 + size + 4
        if size < 16 or stop > end or struct.unpack_from("<I", data, stop - 4)[0] != size:
            break
        idx, term = struct.unpack_from("<QQ", data, offset + 4)
        if entries and (idx != entries[-1][1] + 1 or term < entries[-1][2]):
            break
        entries.append((data[offset + 20 : stop - 4], idx, term))
        offsets.append(offset)
        offset = stop
    if offset != end:
        log.warning(
            "%s: ignoring a torn tail from offset %d to %d (never synced, so never acknowledged)",
            path,
            offset,
            end,
        )
    return entries, offsets, offset


class DurableJournal(_journal_module.Journal):  # type: ignore[misc]
    """PySyncObj's ``Journal`` interface with group-committed durable appends."""

    def __init__(self, path: str, sync: bool = True) -> None:
        self.path = path
        self.sync = sync
        self.meta_path = path + ".meta"
        created = not os.path.exists(path)
        if created:
            durable_write(path, HEADER + struct.pack("<I", FIRST_RECORD), sync)
            if sync:  # the data dir itself may be new too
                fsync_dir(os.path.dirname(os.path.dirname(os.path.abspath(path))))
        with open(path, "rb") as f:
            data = f.read()
        self.entries, self.offsets, self.end = parse(data, path)
        del data
        self.fd = os.open(path, os.O_RDWR)
        self.pending = bytearray()
        self.pending_offsets: list[int] = []
        self.rewrite = False
        self.header_stale = False
        self.meta = self._read_meta()
        self.meta_dirty = False
        self.commit_dirty = False
        self.stash: list[Entry] | None = None  # entries set aside by clear() during a reload
        self.reloading = False

    def _read_meta(self) -> dict[str, Any]:
        try:
            with open(self.meta_path, "rb") as f:
                meta = _loads(f.read())
        except FileNotFoundError:
            return {}
        except Exception:  # PySyncObj's own reader treats an unreadable meta as empty
            log.exception("%s unreadable; starting with term 0 and no vote", self.meta_path)
            return {}
        return dict(meta) if isinstance(meta, dict) else {}

    # -- what PySyncObj calls -----------------------------------------------------------------

    def add(self, command: bytes, idx: int, term: int) -> None:
        entry = (command, idx, term)
        self.entries.append(entry)
        if not self.rewrite:
            self.pending_offsets.append(self.end + len(self.pending))
            self.pending += record(entry)

    def clear(self) -> None:
        if self.reloading and self.stash is None:
            self.stash = self.entries
        self.entries = []
        self._needs_rewrite()

    def deleteEntriesFrom(self, entryFrom: int) -> None:
        del self.entries[entryFrom:]
        if self.rewrite:
            return
        durable = len(self.offsets)
        if entryFrom >= durable:  # only unwritten entries go
            keep = entryFrom - durable
            cut = (
                self.pending_offsets[keep] - self.end if keep < len(self.pending_offsets) else None
            )
            if cut is not None:
                del self.pending[cut:]
                del self.pending_offsets[keep:]
            return
        self.end = self.offsets[entryFrom]
        del self.offsets[entryFrom:]
        self.pending.clear()
        self.pending_offsets.clear()
        self.header_stale = True  # the end moved back: written with the next flush

    def deleteEntriesTo(self, entryTo: int) -> None:
        self.entries = self.entries[entryTo:]
        self._needs_rewrite()

    def __getitem__(self, item: Any) -> Any:
        return self.entries[item]

    def __len__(self) -> int:
        return len(self.entries)

    def _destroy(self) -> None:
        with contextlib.suppress(OSError):
            self.flush()
            self.store_meta()
        os.close(self.fd)

    def setRaftCommitIndex(self, raftCommitIndex: int) -> None:
        if self.meta.get("raftCommitIndex") != raftCommitIndex:
            self.meta["raftCommitIndex"] = raftCommitIndex
            self.commit_dirty = True

    def getRaftCommitIndex(self) -> int:
        return int(self.meta.get("raftCommitIndex", 1))

    def setCurrentTerm(self, term: int, votedForNodeId: Any) -> None:
        self.meta["currentTerm"] = term
        self.meta["votedForNodeId"] = votedForNodeId
        self.meta_dirty = True

    def getCurrentTerm(self) -> int:
        return int(self.meta.get("currentTerm", 0))

    def getVotedForNodeId(self) -> Any:
        return self.meta.get("votedForNodeId")

    def onOneSecondTimer(self) -> None:
        if self.commit_dirty:
            self.flush()
            self.store_meta()

    # -- ours -----------------------------------------------------------------------------------

    @property
    def dirty(self) -> bool:
        """Something an acknowledgement or a vote would vouch for is not on disk yet."""
        return self.meta_dirty or self.rewrite or bool(self.pending)

    def flush(self) -> None:
        """Write (and, unless ``sync`` is off, sync) everything appended or changed so far."""
        if self.rewrite:
            self._write_whole_log()
        elif self.pending or self.header_stale:
            written = self.end + len(self.pending)
            if self.pending:
                os.pwrite(self.fd, self.pending, self.end)
            os.pwrite(self.fd, struct.pack("<I", written), END_OFFSET_AT)
            if self.sync:
                os.fdatasync(self.fd)
            self.offsets += self.pending_offsets
            self.end = written
            self.pending.clear()
            self.pending_offsets.clear()
            self.header_stale = False
        if self.meta_dirty:
            self.store_meta()

    def store_meta(self) -> None:
        durable_write(self.meta_path, _dumps(self.meta), self.sync)
        self.meta_dirty = False
        self.commit_dirty = False

    def begin_reload(self) -> None:
        self.reloading = True

    def end_reload(self) -> None:
        """Put back the entries after the dump's last one (see the module notes)."""
        stash, self.stash, self.reloading = self.stash, None, False
        if not stash or len(self.entries) != 2:
            return
        last = self.entries[1]
        for position, entry in enumerate(stash):
            if entry[1] == last[1] and entry[2] == last[2]:
                tail = stash[position + 1 :]
                if tail:
                    log.warning(
                        "journal rewrite after the last snapshot was lost in a crash: keeping "
                        "%d entries after index %d",
                        len(tail),
                        last[1],
                    )
                    self.entries += tail
                return

    def _needs_rewrite(self) -> None:
        self.rewrite = True
        self.pending.clear()
        self.pending_offsets.clear()

    def _write_whole_log(self) -> None:
        offsets, chunks, offset = [], [], FIRST_RECORD
        for entry in self.entries:
            data = record(entry)
            offsets.append(offset)
            chunks.append(data)
            offset += len(data)
        body = HEADER + struct.pack("<I", offset) + b"".join(chunks)
        durable_write(self.path, body, self.sync)
        os.close(self.fd)
        self.fd = os.open(self.path, os.O_RDWR)
        self.offsets, self.end, self.rewrite, self.header_stale = offsets, offset, False, False
        self.commit_dirty = True  # the commit index is rewritten once this log is down


def create_journal_factory(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """PySyncObj's ``createJournal``, answering a ``JournalPath`` with a ``DurableJournal``."""

    def create(journal_file: Any) -> Any:
        if isinstance(journal_file, JournalPath):
            return DurableJournal(str(journal_file), journal_file.sync)
        return original(journal_file)

    create.durable = True  # type: ignore[attr-defined]
    return create


def install() -> None:
    """Route ``JournalPath`` journals and every snapshot rename through this module (idempotent;
    plain string journal paths still get PySyncObj's own journal)."""
    syncobj_module: Any = pysyncobj.syncobj
    if not getattr(syncobj_module.createJournal, "durable", False):
        syncobj_module.createJournal = create_journal_factory(syncobj_module.createJournal)
    pysyncobj.serializer.atomicReplace = durable_replace
