"""The PySyncObj adapter: one ``@replicated`` entry point that delegates to the pure allocator.

Design notes
------------
* ONE replicated method, ``apply``, never renamed and never joined by another: PySyncObj numbers
  replicated methods by name order, so adding or renaming one silently replays old journal entries
  into the wrong method. New operations are new ``op`` values inside the command, not new methods.
* ``apply`` never raises (``ClusterState.apply`` guarantees it): an exception here would make
  every replica re-apply the same entry forever.
* PySyncObj snapshots every attribute created *after* ``SyncObjConsumer.__init__``. The lock and
  the notification hook are created before it, so they are not pickled; the cluster state is
  created after it, so it is. A snapshot installed from the leader replaces ``self.state``
  wholesale; readers always go through ``self.state`` under the lock.
* ``apply`` runs on PySyncObj's tick thread. The hook it calls must be quick and thread-safe; the
  node uses it to record what changed and to wake asyncio watchers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from overlay_master.allocator import ClusterState, Result
from overlay_master.pysyncobj_compat import SyncObjConsumer, replicated

log = logging.getLogger(__name__)

AppliedHook = Callable[[ClusterState, Any, Result], None]


class ReplicatedCluster(SyncObjConsumer):  # type: ignore[misc]
    def __init__(self, on_applied: AppliedHook | None = None) -> None:
        self.lock = threading.RLock()
        self.on_applied = on_applied
        super().__init__()
        self.state = ClusterState()

    @replicated  # type: ignore[untyped-decorator]
    def apply(self, command: Any) -> Result:
        with self.lock:
            result = self.state.apply(command)
            hook = self.on_applied
            if hook is not None:
                try:
                    hook(self.state, command, result)
                except Exception:
                    log.exception("applied-hook failed (state is unaffected)")
        return result
