"""The change feed offers a subscriber the events appended after it subscribed, in log
order; what was appended while nobody subscribed is passed over, not kept for later."""

from __future__ import annotations

import asyncio

from application.bootstrap import open_trading
from application.change_feed import ChangeFeed
from tests.stubs import ACCOUNT_ID, OWNER_ID, a_config


def create_bot(trading, name: str) -> str:
    return str(trading.create_bot(owner_id=OWNER_ID, name=name, config=a_config(),
                                  exchange_account_id=ACCOUNT_ID))


def test_a_subscriber_gets_what_is_appended_after_it_joined_not_before():
    trading = open_trading("memory")
    feed = ChangeFeed(trading)
    first = create_bot(trading, "before anyone listened")
    assert feed.publish_new() == 0  # no one to offer it to
    joined_at = trading.recorder.max_notification_id()

    async def listen() -> tuple[str, int, list[str]]:
        key, queue = feed.subscribe(lambda event: True)
        later = create_bot(trading, "while listened")
        offered = feed.publish_new()
        feed.unsubscribe(key)
        await asyncio.sleep(0)  # the deliveries hop onto this loop
        events = [queue.get_nowait() for _ in range(queue.qsize())]
        return later, offered, [str(event.originator_id) for event in events]

    later, offered, received = asyncio.run(listen())
    appended = trading.recorder.max_notification_id() - joined_at  # the bot, its roster
    assert offered == len(received) == appended
    assert later in received and first not in received
