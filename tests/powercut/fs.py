"""A FUSE file system that forgets what was not synced: ``python -m tests.powercut.fs DISK MNT``.

Serves the files of the directory DISK at MNT. DISK always holds what a disk would still hold
after a power cut; everything newer lives in this process's memory until it is synced:

* file data: the first access loads a file into memory; writes (``write(2)`` and the kernel's
  write-back of shared mmap pages alike: no ``direct_io``, so PySyncObj's mmap'ed journal works)
  change only memory, by 4 KiB page. ``fsync``/``fdatasync``/``msync`` write the file's dirty
  pages and its size to DISK. ``close`` syncs nothing.
* names: create, rename and unlink happen on DISK at once (so DISK stays readable), but each is
  logged with what it replaced (moved to DISK/.powercut-trash) until ``fsync`` of the directory;
  a power cut undoes the unsynced ones, newest first: a file created and fsynced but never made
  durable in its directory vanishes, an unsynced rename over a file brings the old file back.
* ``mkdir``, ``rmdir``, permissions and times pass straight through (durable at once).

A power cut is ordered by writing ``cut`` to the control file ``MNT/.powercut`` (after every
process using MNT has been killed): memory is dropped, the name log undone, and from then on
every write is ignored, so the kernel's own write-back of pages it still caches cannot bring
anything back. The controller then unmounts (the kernel's caches go with the mount) and mounts
afresh (``tests.powercut.mount``). An ordinary unmount syncs everything, like a clean shutdown.
Single-threaded (``nothreads``): one request at a time, so no locks.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mfusepy

PAGE = 4096
CONTROL = "/.powercut"
TRASH = ".powercut-trash"
log = logging.getLogger("powercut")


@dataclass
class Inode:
    """One file as the running system sees it."""

    data: bytearray
    durable_size: int
    dirty: set[int] = field(default_factory=set)  # page numbers changed since the last sync

    @property
    def synced(self) -> bool:
        return not self.dirty and self.durable_size == len(self.data)


class PowerCutFS(mfusepy.Operations):  # type: ignore[misc]
    use_ns = True

    def __init__(self, disk: Path) -> None:
        self.disk = disk
        self.trash = disk / TRASH
        self.trash.mkdir(exist_ok=True)
        self.inodes: dict[str, Inode] = {}  # by path under the mount ("/name")
        self.handles: dict[int, Inode] = {}
        self.next_handle = 1
        self.undo: list[tuple[str, ...]] = []  # unsynced name changes, oldest first
        self.trashed = 0
        self.dead = False

    # -- helpers --------------------------------------------------------------------------------

    def real(self, path: str) -> str:
        return str(self.disk) + path

    def inode(self, path: str) -> Inode:
        node = self.inodes.get(path)
        if node is None:
            with open(self.real(path), "rb") as f:
                data = bytearray(f.read())
            node = self.inodes[path] = Inode(data, len(data))
        return node

    def handle(self, node: Inode) -> int:
        fh = self.next_handle
        self.next_handle += 1
        self.handles[fh] = node
        return fh

    def node_of(self, path: str | None, fh: int | None) -> Inode:
        if fh is not None and fh in self.handles:
            return self.handles[fh]
        if path is None:
            raise mfusepy.FuseOSError(errno.EBADF)
        return self.inode(path)

    def to_trash(self, path: str) -> str:
        self.trashed += 1
        kept = str(self.trash / str(self.trashed))
        os.rename(self.real(path), kept)
        return kept

    def sync_file(self, path: str | None, node: Inode) -> None:
        target = None
        for name, candidate in self.inodes.items():
            if candidate is node:
                target = name
        if target is None:
            return  # unlinked while open: nothing on disk to keep
        fd = os.open(self.real(target), os.O_WRONLY)
        try:
            for page in sorted(node.dirty):
                start = page * PAGE
                if start < len(node.data):
                    os.pwrite(fd, bytes(node.data[start : start + PAGE]), start)
            os.ftruncate(fd, len(node.data))
        finally:
            os.close(fd)
        node.dirty.clear()
        node.durable_size = len(node.data)

    def power_cut(self) -> None:
        """Forget every unsynced byte and name change (see the module notes)."""
        self.inodes.clear()
        self.handles.clear()
        for step in reversed(self.undo):
            kind = step[0]
            if kind == "created":
                os.unlink(self.real(step[1]))
            elif kind == "renamed":
                old, new, replaced = step[1], step[2], step[3]
                os.rename(self.real(new), self.real(old))
                if replaced:
                    os.rename(replaced, self.real(new))
            elif kind == "unlinked":
                os.rename(step[2], self.real(step[1]))
        self.undo.clear()
        self.dead = True
        log.warning("power cut: unsynced data and names dropped")

    # -- control file ---------------------------------------------------------------------------

    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        if path == CONTROL:
            return {"st_mode": 0o100600, "st_nlink": 1, "st_size": 0}
        st = os.lstat(self.real(path))
        attrs = {
            key: getattr(st, key)
            for key in ("st_mode", "st_nlink", "st_uid", "st_gid", "st_atime_ns", "st_mtime_ns")
        }
        attrs["st_ctime_ns"] = st.st_ctime_ns
        node = self.inodes.get(path)
        attrs["st_size"] = len(node.data) if node is not None else st.st_size
        for key in ("st_atime", "st_mtime", "st_ctime"):
            attrs[key] = attrs.pop(key + "_ns")
        return attrs

    # -- files ----------------------------------------------------------------------------------

    def open(self, path: str, flags: int) -> int:
        if path == CONTROL:
            return 0
        if self.dead:
            raise mfusepy.FuseOSError(errno.EIO)
        return self.handle(self.inode(path))

    def create(self, path: str, mode: int, fi: Any = None) -> int:
        if self.dead:
            raise mfusepy.FuseOSError(errno.EIO)
        fd = os.open(self.real(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        os.close(fd)
        self.undo.append(("created", path))
        node = self.inodes[path] = Inode(bytearray(), 0)
        return self.handle(node)

    def read(self, path: str | None, size: int, offset: int, fh: int) -> bytes:
        if self.dead:
            raise mfusepy.FuseOSError(errno.EIO)
        return bytes(self.node_of(path, fh).data[offset : offset + size])

    def write(self, path: str | None, data: bytes, offset: int, fh: int) -> int:
        if path == CONTROL:
            if data.strip() == b"cut":
                self.power_cut()
            return len(data)
        if self.dead:
            return len(data)  # the power is off: the kernel's write-back goes nowhere
        node = self.node_of(path, fh)
        end = offset + len(data)
        if end > len(node.data):
            node.data.extend(bytes(end - len(node.data)))
        node.data[offset:end] = data
        node.dirty.update(range(offset // PAGE, (end - 1) // PAGE + 1))
        return len(data)

    def truncate(self, path: str | None, length: int, fh: int | None = None) -> int:
        if path == CONTROL or self.dead:
            return 0
        node = self.node_of(path, fh)
        if length < len(node.data):
            del node.data[length:]
        else:
            node.data.extend(bytes(length - len(node.data)))
            node.dirty.update(range(node.durable_size // PAGE, max(length - 1, 0) // PAGE + 1))
        return 0

    def fsync(self, path: str | None, datasync: int, fh: int) -> int:
        if fh in self.handles and not self.dead:
            self.sync_file(path, self.handles[fh])
        return 0

    def flush(self, path: str | None, fh: int) -> int:
        return 0

    def release(self, path: str | None, fh: int) -> int:
        self.handles.pop(fh, None)
        return 0

    # -- names ----------------------------------------------------------------------------------

    def rename(self, old: str, new: str) -> int:
        if self.dead:
            raise mfusepy.FuseOSError(errno.EIO)
        replaced = self.to_trash(new) if os.path.lexists(self.real(new)) else ""
        os.rename(self.real(old), self.real(new))
        self.undo.append(("renamed", old, new, replaced))
        self.inodes.pop(new, None)
        if old in self.inodes:
            self.inodes[new] = self.inodes.pop(old)
        return 0

    def unlink(self, path: str) -> int:
        if self.dead:
            raise mfusepy.FuseOSError(errno.EIO)
        self.undo.append(("unlinked", path, self.to_trash(path)))
        self.inodes.pop(path, None)
        return 0

    def fsyncdir(self, path: str | None, datasync: int, fh: int) -> int:
        if not self.dead:
            self.undo.clear()  # one directory: every name change is now durable
            shutil.rmtree(self.trash, ignore_errors=True)
            self.trash.mkdir(exist_ok=True)
        return 0

    def readdir(self, path: str, fh: int) -> list[str]:
        names = [n for n in os.listdir(self.real(path)) if n != TRASH]
        return [".", "..", *names]

    def mkdir(self, path: str, mode: int) -> int:
        os.mkdir(self.real(path), mode)
        return 0

    def rmdir(self, path: str) -> int:
        os.rmdir(self.real(path))
        return 0

    def chmod(self, path: str, mode: int) -> int:
        os.chmod(self.real(path), mode)
        return 0

    def chown(self, path: str, uid: int, gid: int) -> int:
        os.chown(self.real(path), uid, gid)
        return 0

    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        if path != CONTROL:
            os.utime(self.real(path), ns=times)
        return 0

    def statfs(self, path: str) -> dict[str, int]:
        st = os.statvfs(self.disk)
        return {key: getattr(st, key) for key in dir(st) if key.startswith("f_")}

    def destroy(self, path: str) -> None:
        """An ordinary unmount: sync everything, as a clean shutdown does."""
        if self.dead:
            return
        for name, node in list(self.inodes.items()):
            if not node.synced:
                self.sync_file(name, node)
        self.fsyncdir(None, 0, 0)


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    disk, mountpoint = Path(argv[0]).resolve(), argv[1]
    fs = PowerCutFS(disk)
    try:
        mfusepy.FUSE(fs, mountpoint, foreground=True, nothreads=True, fsname="powercut")
    except RuntimeError:  # libfuse's exit status after SIGTERM, once the mount is gone
        if not fs.dead:
            raise
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
