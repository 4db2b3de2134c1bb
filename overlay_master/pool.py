"""A free pool of numbered slots with the allocation order our users need.

Design notes
------------
* Order: never-used slots first, lowest first (on a cluster that never deletes, this is exactly
  DC/OS's lowest-free order); when none is left, released slots, the one released longest ago
  first. DC/OS reused a freed block at once, so a deleted-but-still-running host was collided with
  by the very next registration; quarantining freed slots behind the fresh ones avoids that.
* A specific slot can be asked for (an agent coming back wants its previous block).
* Every operation is O(1) amortised, whatever the pool size (an IPv6 /64 cut into /80s holds 2^16
  blocks, a VTEP /64 holds 2^64 addresses): never-used slots are a high-water mark, released ones a
  FIFO with lazy deletion. Nothing here depends on hash order, so pickling and replaying give the
  same state on every replica.
"""

from __future__ import annotations

from collections import deque


class Pool:
    """Slots ``0 .. size-1``. ``take`` never raises: it returns ``None`` when the pool is empty."""

    __slots__ = ("_queue", "_released", "_seq", "next_fresh", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.next_fresh = 0
        # slot -> sequence number of its release; the queue holds (seq, slot) in release order and
        # may contain stale pairs (slot taken back since, or released again later).
        self._released: dict[int, int] = {}
        self._queue: deque[tuple[int, int]] = deque()
        self._seq = 0

    @property
    def used(self) -> int:
        return self.next_fresh - len(self._released)

    @property
    def free(self) -> int:
        return self.size - self.used

    def is_free(self, slot: int) -> bool:
        return slot >= self.next_fresh or slot in self._released

    def can_take(self, preferred: int | None = None) -> bool:
        return self.free > 0 or (preferred is not None and self.is_free(preferred))

    def take(self, preferred: int | None = None) -> int | None:
        """Take ``preferred`` if it is a released slot, else the next slot in pool order."""
        if preferred is not None and preferred in self._released:
            del self._released[preferred]
            return preferred
        if self.next_fresh < self.size:
            self.next_fresh += 1
            return self.next_fresh - 1
        while self._queue:
            seq, slot = self._queue.popleft()
            if self._released.get(slot) == seq:
                del self._released[slot]
                return slot
        return None

    def release(self, slot: int) -> None:
        """Give a slot back. Releasing a slot that is already free does nothing."""
        if self.is_free(slot) or not 0 <= slot < self.size:
            return
        self._seq += 1
        self._released[slot] = self._seq
        self._queue.append((self._seq, slot))
        if len(self._queue) > 2 * len(self._released) + 64:
            self._compact()

    def canonical(self) -> tuple[int, int, tuple[int, ...]]:
        """Plain data that is equal exactly when two pools will behave the same from now on."""
        released = sorted(self._released, key=self._released.__getitem__)
        return (self.size, self.next_fresh, tuple(released))

    def _compact(self) -> None:
        self._queue = deque(pair for pair in self._queue if self._released.get(pair[1]) == pair[0])
