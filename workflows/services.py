"""What every use case needs: transactions, the engine, the clock, and parsed processes."""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from . import catalog
from .due_rules import DuePolicy
from .engine import Engine
from .errors import NotFound
from .ports import Clock, UnitOfWork


class BundleCache:
    """Parsed process bundles by process version id: parsing a diagram is slow, versions never change."""

    def __init__(self, max_size: int = 64):
        self._bundles: OrderedDict[int, object] = OrderedDict()
        self._max_size = max_size
        self._lock = threading.Lock()

    def get(self, uow: UnitOfWork, process_version_id: int):
        """Return the bundle of a deployed process version, parsing its stored files once."""
        with self._lock:
            bundle = self._bundles.get(process_version_id)
            if bundle is not None:
                self._bundles.move_to_end(process_version_id)
                return bundle
        version = uow.processes.get(process_version_id)
        if version is None:
            raise NotFound(f"Process version {process_version_id} does not exist.")
        bundle = catalog.bundle_from_files(version.process_id, version.files)
        with self._lock:
            self._bundles[process_version_id] = bundle
            while len(self._bundles) > self._max_size:
                self._bundles.popitem(last=False)
        return bundle


@dataclass
class Services:
    """The core's collaborators, built once by the service and passed to every handler."""

    uow: Callable[..., UnitOfWork]
    clock: Clock
    engine: Engine = field(default_factory=Engine)
    bundles: BundleCache = field(default_factory=BundleCache)
    due_policy: DuePolicy = field(default_factory=DuePolicy)
