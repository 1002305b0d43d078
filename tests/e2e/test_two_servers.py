"""Two ``tradetape serve`` processes on one PostgreSQL database, one user creating bots on
both at once: the bot limit and name uniqueness hold across processes (the owner's roster is
saved with each new bot; the loser of a race decides again on fresh state)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx

from application.bootstrap import open_trading
from application.replay import read_log
from domain.bots import Bot
from domain.recording import topic_of
from tests.e2e.conftest import CONFIG, CREATE_BOT, ServerProcess, new_user

LIMIT = 5
STOP_BOT = """mutation($id: ID!) { stopBot(id: $id) { __typename ... on Bot { status } } }"""
REFUSALS = {"BOT_NAME_DUPLICATE", "BOT_LIMIT_REACHED"}


def create(server: ServerProcess, token: str, name: str, start: threading.Barrier) -> dict:
    """One createBot over a connection of its own, fired with the others."""
    start.wait()
    response = httpx.post(f"{server.base_url}/graphql", timeout=60, json={
        "query": CREATE_BOT, "variables": {"name": name, "config": CONFIG}},
        headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert not body.get("errors"), body
    return body["data"]["createBot"]


def fire(servers: list[ServerProcess], token: str, names: list[str]) -> list[dict]:
    start = threading.Barrier(len(names))
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        jobs = [pool.submit(create, servers[i % len(servers)], token, name, start)
                for i, name in enumerate(names)]
        return [job.result() for job in jobs]


def active_over_time(database_url: str, owner: str) -> list[list[str]]:
    """The owner's bots that are not stopped, by name, after each creation or stop in the
    log: what the store itself says, whatever any view shows."""
    trading = open_trading(database_url)
    try:
        names: dict[object, str] = {}
        history = []
        for note in read_log(trading, [topic_of(Bot.Created), topic_of(Bot.Stopped)]):
            event = trading.mapper.to_domain_event(note)
            if isinstance(event, Bot.Created) and event.owner_id == owner:
                names[event.originator_id] = event.name
            elif isinstance(event, Bot.Stopped):
                names.pop(event.originator_id, None)
            history.append(sorted(names.values()))
        return history
    finally:
        trading.close()


def check_log(database_url: str, owner: str) -> list[str]:
    history = active_over_time(database_url, owner)
    for active in history:
        assert len(active) <= LIMIT, active
        folded = [name.strip().casefold() for name in active]
        assert len(folded) == len(set(folded)), active
    return history[-1]


def test_two_servers_never_exceed_one_users_bot_limit_nor_repeat_a_name(postgres_url, launch):
    # postgres_url first: its schema is dropped after the servers stopped
    settings = {"TRADETAPE_MAX_BOTS_PER_USER": str(LIMIT)}
    first = launch(postgres_url, speed=None, env=settings)
    second = launch(postgres_url, speed=None, env=settings)
    token = new_user(first, "racer@example.com")
    owner = first.gql("{ me { id } }", token=token)["me"]["id"]

    # 24 at once, half on each server: six spellings of one name, eighteen other names.
    names = ["Scalper", "scalper", " SCALPER ", "Scalper ", "sCalper", "SCALPER",
             *(f"bot {n}" for n in range(18))]
    answers = fire([first, second], token, names)

    made = [a for a in answers if a["__typename"] == "Bot"]
    refused = [a for a in answers if a["__typename"] == "BotErrors"]
    assert len(made) == LIMIT and len(refused) == len(names) - LIMIT, answers
    for answer in refused:
        codes = {e["code"] for e in answer["errors"]}
        assert codes and codes <= REFUSALS, answer
    assert sum(a["name"].strip().casefold() == "scalper" for a in made) <= 1
    assert sorted(a["name"] for a in made) == check_log(postgres_url, owner)

    # A bot stopped on one server frees its slot and its name on the other.
    freed = made[0]
    assert second.gql(STOP_BOT, {"id": freed["id"]}, token)["stopBot"]["status"] == "STOPPED"
    again = fire([first, first], token, [freed["name"].upper(), "one more"])
    assert sorted(a["__typename"] for a in again) == ["Bot", "BotErrors"], again
    (refusal,) = [a for a in again if a["__typename"] == "BotErrors"]
    assert refusal["code"] == "BOT_LIMIT_REACHED", refusal
    assert len(check_log(postgres_url, owner)) == LIMIT
