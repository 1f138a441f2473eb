"""How a serving process (``orderfsm serve``) uses CPython's garbage collector.

A collection stops every thread while it runs, and a full one (generation 2) looks at every
container object the process holds that is not frozen: a server that has just imported FastAPI
and pydantic holds a few hundred thousand, and a full collection of them takes 50 to 100 ms, long
enough to be the slowest request of a benchmark run. The policy:

1. :func:`settle` runs once the server is built and its merchants are loaded, before it
   serves: one full collection (start-up garbage), then ``gc.freeze()``, which moves everything
   alive into the permanent generation that no collection looks at.
2. After every full collection, what survived it is frozen as well (a ``gc.callbacks`` hook),
   so each full collection looks only at what became long-lived since the previous one. Its
   pause is bounded by how much the server made in between, not by how much it holds. Young
   collections (generations 0 and 1) are left as CPython schedules them: they look at a few
   thousand objects at most.
3. Bulk loads (start-up, ``POST /_sim/state``) run with collection off and freeze what they
   built (:func:`simulator.store.bulk_gc`).

The trade-off: frozen objects are still freed by reference counting the moment nothing refers to
them; what is never reclaimed is a reference *cycle* whose objects had survived a full collection
and became garbage later. The simulator's long-lived cycles are broken explicitly when it lets
go of them (a replaced merchant: :mod:`simulator.release`), so what remains is small (a closed
connection's objects, for instance).
"""

from __future__ import annotations

import gc
from typing import Any

__all__ = ["settle", "install", "uninstall"]


def _freeze_survivors(phase: str, info: dict[str, Any]) -> None:
    if phase == "stop" and info.get("generation") == 2:
        gc.freeze()


def install() -> None:
    """Freeze the survivors of every full collection from now on (idempotent)."""
    if _freeze_survivors not in gc.callbacks:
        gc.callbacks.append(_freeze_survivors)


def uninstall() -> None:
    if _freeze_survivors in gc.callbacks:
        gc.callbacks.remove(_freeze_survivors)


def settle() -> None:
    """Start serving with nothing for a collection to look at: collect the start-up garbage,
    freeze what is left, and :func:`install` the policy."""
    gc.collect()
    gc.freeze()
    install()
