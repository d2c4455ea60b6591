"""Chart indexing: one sync of one source, OCI or Helm, recorded on a :class:`SyncRun`.

Plain functions; the Celery task only calls :func:`run_sync`. The modules:

- :mod:`charts.sync.run`: queueing, the source's lease, the run's lifecycle;
- :mod:`charts.sync.oci`: a repository of an OCI registry (tags, manifests, configs);
- :mod:`charts.sync.helm`: a classic Helm repository (``index.yaml``);
- :mod:`charts.sync.writer`: one diff of a source's versions against the database.

A failed or partial run never deletes or hides what an earlier run indexed; a version
that disappears upstream is marked, after a complete listing, not dropped.
"""

from charts.sync.helm import parse_index
from charts.sync.run import queue_sync, run_sync
from charts.sync.writer import SyncError, VersionData

__all__ = ["SyncError", "VersionData", "parse_index", "queue_sync", "run_sync"]
