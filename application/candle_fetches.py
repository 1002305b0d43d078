"""Candle series a user asks the server to fetch from an exchange (GraphQL ``fetchCandles``):
the same download as ``tradetape candles fetch`` (``candle_download``), run in the
background one at a time, with its progress in memory for the subscription that watches it.

The series is written to the server's candle directory under a name made from the request
(``binance_BTC_USDT-1m-20251101T0000.csv``; a sandbox's as ``binance-sandbox_...``), so it
appears in ``candleFiles`` and can be backtested by name. Asking again for the same name goes
on after its last candle. The download is written to ``NAME.part`` first and renamed when it
ends, so no reader ever sees a half-written series under the name.

A series is market data, not any aggregate's state: nothing here is an event.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from application.candle_download import download_candles
from domain.errors import DomainError
from domain.ports import IdSource

log = logging.getLogger("tradetape.candles")
PART = ".part"
# The most candles one request may ask for (a year of 1-minute candles, about 30 MB): one
# user's request cannot fill the server's disk or hold the queue for hours.
MAX_CANDLES = 525_600


@dataclass(frozen=True)
class FetchRequest:
    exchange: str
    pair: str
    timeframe: str
    from_ms: int
    to_ms: int  # exclusive; far in the future for "up to the last closed candle"
    sandbox: bool = False

    @property
    def file_name(self) -> str:
        def part(text: str) -> str:
            return re.sub(r"[^A-Za-z0-9]", "", text)

        base, _, quote = self.pair.partition("/")
        venue = part(self.exchange.lower()) + ("-sandbox" if self.sandbox else "")
        start = datetime.fromtimestamp(self.from_ms / 1000, UTC).strftime("%Y%m%dT%H%M")
        return f"{venue}_{part(base)}_{part(quote)}-{part(self.timeframe)}-{start}.csv"


@dataclass
class FetchProgress:
    id: UUID
    owner_id: str
    file: str
    pair: str
    timeframe: str
    status: str = "queued"  # queued, running, completed, failed
    done: int = 0
    total: int = 0
    written: int = 0
    gaps: int = 0
    error_code: str | None = None
    error_message: str | None = None


class CandleFetches:
    def __init__(self, directory: Path | None, open_history: Callable[[str, bool], Any],
                 open_writer: Callable[[Path], Any], ids: IdSource,
                 max_candles: int = MAX_CANDLES):
        """``directory``: where series are written (None: the server has none, and every
        request is refused with CANDLE_DIR_NOT_SET); ``open_history(exchange, sandbox)``:
        the exchange's candle history (``CcxtCandleHistory``); ``open_writer(path)``: the
        CSV appender that resumes ``path``."""
        self.directory, self.ids, self.max_candles = directory, ids, max_candles
        self._open_history, self._open_writer = open_history, open_writer
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="candle-fetch")
        self._lock = threading.Lock()
        self.progress: dict[UUID, FetchProgress] = {}
        self._stopping = threading.Event()

    def prepare(self, asked: FetchRequest) -> Any:
        """The exchange's history once the request is known to be one it can answer:
        EXCHANGE_NOT_SUPPORTED, INVALID_TIMEFRAME, PAIR_NOT_TRADED, EXCHANGE_UNAVAILABLE or
        TOO_MANY_CANDLES otherwise (the exchange's markets and clock are asked for here:
        call it off the event loop)."""
        if self.directory is None:
            raise DomainError("this server has no candle directory to store series in "
                              "(set TRADETAPE_CANDLE_DIR)", code="CANDLE_DIR_NOT_SET")
        history = self._open_history(asked.exchange, asked.sandbox)
        timeframe_ms = history.timeframe_ms(asked.timeframe)
        history.check_pair(asked.pair)
        now = history.exchange_time_ms()  # no later than the exchange's clock
        end = asked.to_ms if now is None else min(asked.to_ms, now)
        if (end - asked.from_ms) // timeframe_ms > self.max_candles:
            raise DomainError(f"that is more than {self.max_candles:,} candles: fetch a "
                              "shorter period (ask again with a later start to go on)",
                              code="TOO_MANY_CANDLES", field="to")
        return history

    def submit(self, owner_id: str, asked: FetchRequest, history: Any) -> FetchProgress:
        """Queue the download (``history`` from :meth:`prepare`); its progress at once. A
        download of the same series already under way is answered instead of a second."""
        with self._lock:
            for state in self.progress.values():
                if state.file == asked.file_name and state.status in ("queued", "running"):
                    return state
            state = FetchProgress(self.ids.new_id(), owner_id, asked.file_name, asked.pair,
                                  asked.timeframe)
            self.progress[state.id] = state
        self._pool.submit(self._work, state, asked, history)
        return state

    def find(self, fetch_id: UUID) -> FetchProgress | None:
        with self._lock:
            return self.progress.get(fetch_id)

    def _work(self, state: FetchProgress, asked: FetchRequest, history: Any) -> None:
        state.status = "running"
        final = self.directory / state.file
        part = final.with_name(final.name + PART)

        def advance(done: int, total: int) -> None:
            state.done, state.total = done, total
            if self._stopping.is_set():
                raise DomainError("the server is stopping", code="SERVER_STOPPING")

        try:
            if final.exists():  # resumed: carry on from a copy, the series stays readable
                shutil.copyfile(final, part)
            out = self._open_writer(part)
            try:
                timeframe_ms = history.timeframe_ms(asked.timeframe)
                if out.interval_ms is not None and out.interval_ms != timeframe_ms:
                    raise DomainError(f"{state.file} holds candles {out.interval_ms // 1000} s "
                                      f"apart, not {asked.timeframe}",
                                      code="CANDLES_FILE_MISMATCH")
                report = download_candles(
                    history, out, pair=asked.pair, timeframe=asked.timeframe,
                    timeframe_ms=timeframe_ms,
                    from_ms=asked.from_ms, to_ms=asked.to_ms, page=history.page_limit(),
                    on_progress=advance)
            finally:
                out.close()
            os.replace(part, final)
        except Exception as error:  # the request's state says it; the server goes on
            code = error.code if isinstance(error, DomainError) else "FETCH_FAILED"
            message = error.message if isinstance(error, DomainError) else "the fetch failed"
            if not isinstance(error, DomainError):
                log.exception("candle fetch %s failed", state.id)
            else:
                log.warning("candle fetch %s failed: %s", state.id, code)
            part.unlink(missing_ok=True)
            state.status, state.error_code, state.error_message = "failed", code, message
            return
        state.written, state.gaps = report.written, len(report.gaps)
        state.done = state.total
        state.status = "completed"

    def close(self) -> None:
        """Queued fetches are dropped; one under way stops at its next page (its series
        stays as it was before it)."""
        self._stopping.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
