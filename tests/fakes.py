"""Fakes of the ports, for tests: deterministic, observable, in memory."""

from __future__ import annotations

from dataclasses import dataclass

from domain.ports import Mailer


class CountingSecrets:
    """Predictable, distinct secrets: ``secret-1``, ``secret-2``, ..."""

    def __init__(self, prefix: str = "secret") -> None:
        self._prefix, self._count = prefix, 0

    def new_secret(self) -> str:
        self._count += 1
        return f"{self._prefix}-{self._count}"


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str

    @property
    def token(self) -> str:
        """The token the mail carries (the line ``or use this token: TOKEN``)."""
        for line in self.body.splitlines():
            if line.startswith("or use this token: "):
                return line.removeprefix("or use this token: ")
        raise AssertionError(f"no token in {self.body!r}")


class RecordingMailer(Mailer):
    def __init__(self) -> None:
        self.sent: list[Mail] = []

    def send(self, to: str, subject: str, body: str) -> None:
        self.sent.append(Mail(to, subject, body))

    def last_to(self, to: str) -> Mail:
        return [mail for mail in self.sent if mail.to == to][-1]


class FakeCandleHistory:
    """A ``CandleHistory`` over a fixed candle list, answering as Binance's klines do: the
    candles that have opened by ``now_ms`` (the latest possibly still open, then showing only
    its open price), from ``since`` on, at most ``limit``; prices with Binance's eight
    decimals (``"42283.58000000"``). ``down = True`` makes every request fail as an
    unreachable exchange; ``requests`` counts the candle requests."""

    def __init__(self, candles, now_ms: int, interval_ms: int = 60_000,
                 pairs: tuple[str, ...] = ("BTC/USDT",)) -> None:
        from decimal import Decimal

        eight = Decimal("0.00000001")
        self.series = [type(c)(c.ts_ms, *(v.quantize(eight) for v in c[1:])) for c in candles]
        self.now_ms, self.interval_ms, self.pairs = now_ms, interval_ms, pairs
        self.down = False
        self.requests = 0

    def exchange_time_ms(self) -> int | None:
        self._check_up()
        return self.now_ms

    def candles_of(self, pair: str):
        return self.series

    def candles(self, pair: str, timeframe: str, since_ms: int, limit: int):
        from domain.errors import DomainError

        self._check_up()
        self.requests += 1
        if pair not in self.pairs:
            raise DomainError(f"fake does not list {pair}", code="PAIR_NOT_TRADED")
        opened = [c for c in self.candles_of(pair) if since_ms <= c.ts_ms <= self.now_ms]
        page = opened[:limit]
        if page and page[-1].ts_ms + self.interval_ms > self.now_ms:  # still open
            last = page[-1]
            page[-1] = type(last)(last.ts_ms, last.open, last.open, last.open, last.open,
                                  last.volume * 0)
        return page

    def _check_up(self) -> None:
        from domain.errors import DomainError

        if self.down:
            raise DomainError("the exchange could not be reached (fake: down)",
                              code="EXCHANGE_UNAVAILABLE")
