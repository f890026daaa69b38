"""The base class every engine shares: one ``run()`` path and one lifecycle (no torch here).

``run(lr)`` is written once, here: check the input, pad it to what the model accepts, call the
engine's own :meth:`BaseEngine._infer`, check the output's shape, crop the padding away.
Closing is written once too: :meth:`close` is idempotent, marks the engine closed (``run``
then refuses with one line) and calls the engine's :meth:`BaseEngine._release` exactly once,
from ``with``, ``close()`` or garbage collection alike.

An engine subclass therefore implements only:

- ``_infer(padded) -> sr``: inference on a checked, padded float32 (N, 3, H, W) batch;
- ``_release()``: free what ``__init__`` acquired (sessions, device memory, streams);
- ``info()``: what it tells the user;

and ends its ``__init__`` with ``self._mark_open()`` once every resource exists, so a
constructor that fails half-way never calls ``_release`` on missing attributes.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from edgesr.errors import EngineUnavailableError
from edgesr.runtime.engines.checks import check_lr, check_sr, crop_sr, pad_for_model
from edgesr.runtime.engines.protocol import EngineInfo
from edgesr.spec import ModelSpec

logger = logging.getLogger(__name__)


class BaseEngine(ABC):
    """Shared ``run``/``close``/context-manager path; see the module notes."""

    #: The engine's table name ("ort", "trt", "torch"): used in error messages.
    name: ClassVar[str] = "engine"
    spec: ModelSpec
    #: What the engine runs (file or model name), for error messages; set by the subclass.
    source: str = "model"
    _closed: bool = True  # class default: a constructor that failed early is "closed"
    #: True when inputs above the model's advised tile are refused or rebuild an engine
    #: (TensorRT's optimisation profile); False lets the tile planner use bigger tiles.
    tiles_limited_to_advice: bool = True

    # ------------------------------------------------------------ what subclasses write

    @abstractmethod
    def _infer(self, padded: np.ndarray) -> np.ndarray:
        """The engine's own inference on an already checked and padded batch."""

    @abstractmethod
    def _release(self) -> None:
        """Free the engine's resources (called once, by ``close``)."""

    @abstractmethod
    def info(self) -> EngineInfo:
        """What ran: engine, device, precision, details."""

    # ------------------------------------------------------------ the shared path

    def _mark_open(self) -> None:
        """Call at the end of ``__init__``: from here on, ``close`` releases resources."""
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def run(self, lr: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 in the spec's input range -> (N, 3, s·H, s·W) float32."""
        if self._closed:
            raise EngineUnavailableError(
                f"this {type(self).__name__} was closed; open a new engine to run more images")
        x = check_lr(lr, self.spec, engine=self.name)
        padded, height, width = pad_for_model(x, self.spec)
        sr = self._infer(padded)
        sr = check_sr(sr, padded.shape, self.spec, source=self.source)
        return crop_sr(sr, height, width, self.spec)

    def close(self) -> None:
        """Release the engine's resources (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._release()

    def __enter__(self) -> BaseEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: libraries may already be gone
            logger.debug("closing %s during garbage collection failed", type(self).__name__)


__all__ = ["BaseEngine"]
