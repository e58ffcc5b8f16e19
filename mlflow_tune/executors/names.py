"""Where a trial can run, by name: what ``search.executor`` may be, below the tune file and the executors.

The tune file validates the name and the executors act on it; both import it from here, so the
executors never import the search's configuration.
"""

from __future__ import annotations

EXECUTORS = ("process", "thread", "project", "spark")


def local_master(master: str) -> bool:
    """A Spark master that runs every executor in this process's machine (the default: local[parallel])."""
    return not master or master.startswith("local")
