"""Polling: new and removed version folders, and changes to the model config file.

``poll_filesystem_once`` and ``poll_config_once`` are what the periodic loops call, and what
tests and the ``/tfserve_magic/v1/reload`` endpoint call directly. A config that fails to parse
or validate on reload is logged and the server keeps serving what it served; a label change that
cannot apply yet (its version is still loading) is retried on the next poll.
"""

from __future__ import annotations

import asyncio
import logging

from tfserve_magic.serving.models.config import ModelConfig, read_model_config_file
from tfserve_magic.serving.models.manager import ServableManager
from tfserve_magic.serving.status_errors import ConfigError, FailedPrecondition, InvalidArgument

__all__ = ["Watcher"]

log = logging.getLogger(__name__)


class Watcher:
    def __init__(self, manager: ServableManager, config_file: str = "",
                 config_text: str | None = None) -> None:
        self._manager = manager
        self._config_file = config_file
        self._last_text = config_text
        self._labels_pending = False

    def poll_filesystem_once(self) -> None:
        self._manager.rescan_all()

    def _read_config(self) -> tuple[str, list[ModelConfig]]:
        return read_model_config_file(self._config_file)

    async def poll_config_once(self, force: bool = False) -> bool:
        """Re-read the config file; apply it if it changed (or a label is pending).
        Returns True when something was applied. Raises InvalidArgument/FailedPrecondition
        only when ``force`` (an explicit reload request) so the caller can report it."""
        if not self._config_file:
            if force:
                self.poll_filesystem_once()
            return False
        try:
            text, models = await asyncio.get_running_loop().run_in_executor(None, self._read_config)
        except ConfigError as exc:
            log.error("Not applying the new model config: %s", exc)
            if force:
                raise InvalidArgument(str(exc)) from None
            return False
        if text == self._last_text and not self._labels_pending and not force:
            return False
        self._last_text = text
        try:
            self._manager.apply_config(models)
            self._labels_pending = False
        except FailedPrecondition as exc:
            self._labels_pending = True
            log.warning("Version labels not updated yet: %s", exc.message)
            if force:
                raise
        return True

    async def run_filesystem(self, period: float) -> None:
        while True:
            await asyncio.sleep(period)
            self.poll_filesystem_once()

    async def run_config(self, period: float) -> None:
        while True:
            await asyncio.sleep(period)
            await self.poll_config_once()
