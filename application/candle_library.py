"""Stored candle series a user may name (a chart's series, a backtest's candles): the
series shipped with the package and the CSV files in the server's candle directory
(``TRADETAPE_CANDLE_DIR``). Nothing else: a name is a bare file name, never a path, so no
request reads a file outside those directories (``../``, absolute paths and links out are
refused with CANDLE_FILE_NOT_ALLOWED)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from domain.errors import DomainError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}\.csv")


class CandleFileError(DomainError):
    code = "CANDLE_FILE_NOT_ALLOWED"


class CandleLibrary:
    def __init__(self, directories: Sequence[Path], load: Callable[[Path], Any]):
        """``directories``: searched in order; ``load(path)``: the candles of a file."""
        self.directories = [d.resolve() for d in directories if d.is_dir()]
        self._load = load

    def names(self) -> list[str]:
        """Every series that may be named, each once (the first directory's wins)."""
        found: dict[str, None] = {}
        for directory in self.directories:
            for path in sorted(directory.glob("*.csv")):
                if _NAME.fullmatch(path.name) and self._inside(path, directory):
                    found.setdefault(path.name)
        return list(found)

    def path(self, name: str) -> Path:
        if not isinstance(name, str) or not _NAME.fullmatch(name) or ".." in name:
            raise CandleFileError(
                f"{name!r} is not the name of a stored series: give a file name such as "
                "binance_BTC_USDT-1m-2025-11.csv (candleFiles lists them), not a path",
                field="file")
        for directory in self.directories:
            path = directory / name
            if path.is_file() and self._inside(path, directory):
                return path
        raise CandleFileError(f"no stored series {name!r}", code="CANDLE_FILE_NOT_FOUND",
                              field="file")

    def load(self, name: str) -> Any:
        return self._load(self.path(name))

    @staticmethod
    def _inside(path: Path, directory: Path) -> bool:
        return path.resolve().parent == directory  # a link pointing elsewhere is not
