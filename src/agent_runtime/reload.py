"""`agent-runtime dev`'s reloader: uvicorn's polling reloader, told which folders and files a
project edits, and told to stop when the server never started. No server logic."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import uvicorn
from uvicorn.supervisors.statreload import StatReload

from agent_runtime.startup import STARTUP_FAILED

_SKIPPED_FOLDERS = frozenset({"__pycache__", "node_modules", "site-packages"})


class ProjectReload(StatReload):
    """uvicorn's polling reloader, walking only the folders a project edits.

    Without watchfiles, uvicorn polls every `*.py` under the watched folders four times a second and
    ignores `reload_excludes`; a `.venv` in the project folder would mean tens of thousands of stat
    calls per poll. This walk prunes hidden folders, virtualenvs and caches, and also watches the
    config and `.env` files, which are not Python but change what the server does.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        target: Callable[[list[socket.socket] | None], None],
        sockets: list[socket.socket],
        *,
        files: Sequence[Path],
    ) -> None:
        super().__init__(config, target, sockets)
        self._files = files
        self._absent = {path for path in files if not path.exists()}
        self._restarted = False
        self.first_start_failed = False

    def restart(self) -> None:
        self._restarted = True
        super().restart()

    def should_restart(self) -> list[Path] | None:
        if not self._restarted and self.process.exitcode == STARTUP_FAILED:
            # Nothing ever served: exit, so a supervisor (or the developer) sees it. A reload
            # that fails later keeps watching, since fixing the file brings the server back.
            self.first_start_failed = True
            raise StopIteration
        # StatReload skips what it cannot stat, so a `.env` created after start would go unseen.
        appeared = [path for path in self._absent if path.exists()]
        self._absent = {path for path in self._files if not path.exists()}
        return appeared or super().should_restart()

    def iter_py_files(self) -> Iterator[Path]:
        for root in self.config.reload_dirs:
            for folder, subfolders, names in os.walk(root):
                subfolders[:] = [name for name in subfolders if _watched(Path(folder, name))]
                yield from (Path(folder, name) for name in names if name.endswith(".py"))
        yield from self._files


def _watched(folder: Path) -> bool:
    return not (
        folder.name.startswith(".")
        or folder.name in _SKIPPED_FOLDERS
        or (folder / "pyvenv.cfg").exists()
    )
