"""The chat store under bursts: profiles read from memory (this process's saves seen at once,
another process's within PROFILE_SECONDS), and outbox writes of many callers sharing transactions,
on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from floorbridge.adapters.storage import SqlAgendaStore, SqlChatStore, SqlOutbox, open_store
from floorbridge.adapters.storage import chats as chats_module
from floorbridge.adapters.storage.group_commit import GroupCommit
from floorbridge.core.chats import ChatProfile, ChatRef, Platform
from floorbridge.core.outbox import OutgoingMessage
from floorbridge.core.richtext import message, p


def chat(n: int) -> ChatRef:
    return ChatRef(Platform.TELEGRAM, str(n))


async def test_a_profile_saved_here_is_read_at_once(store: SqlAgendaStore) -> None:
    chats = SqlChatStore(store.engine)
    assert await chats.get_profile(chat(1)) is None  # remembered as absent…
    await chats.save_profile(ChatProfile(chat(1), language="fr"))
    got = await chats.get_profile(chat(1))  # …and forgotten by the save
    assert got is not None and got.language == "fr"
    await chats.save_profile(ChatProfile(chat(1), language="ru"))
    got = await chats.get_profile(chat(1))
    assert got is not None and got.language == "ru"


async def test_another_process_change_is_seen_once_the_copy_expires(
    store: SqlAgendaStore, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chats_module, "PROFILE_SECONDS", 0.2)
    here = SqlChatStore(store.engine)
    await here.save_profile(ChatProfile(chat(2), language="en"))
    assert (await here.get_profile(chat(2))).language == "en"  # type: ignore[union-attr]
    async with await open_store(store_url) as other_process:
        await SqlChatStore(other_process.engine).save_profile(ChatProfile(chat(2), language="es"))
    await asyncio.sleep(0.3)
    assert (await here.get_profile(chat(2))).language == "es"  # type: ignore[union-attr]


async def test_a_burst_of_replies_shares_transactions_and_each_caller_gets_its_count(store: SqlAgendaStore) -> None:
    chats = SqlChatStore(store.engine)
    messages = [OutgoingMessage(chat(n), message(p(f"reply {n}"))) for n in range(300)]
    keyed = OutgoingMessage(chat(1), message(p("once")), dedup_key="once")
    counts = await asyncio.gather(*(chats.enqueue([m]) for m in messages), chats.enqueue([keyed]),
                                  chats.enqueue([keyed]))
    assert counts[:300] == [1] * 300 and sorted(counts[300:]) == [0, 1]  # the key is stored once
    rows = await SqlOutbox(store.engine).rows()
    assert len(rows) == 301
    assert sorted(item.outgoing.message.plain() for item, _, _ in rows if item.outgoing.dedup_key is None) == sorted(
        f"reply {n}" for n in range(300))


async def test_group_commit_batches_what_arrives_meanwhile_and_a_failure_stays_in_its_batch() -> None:
    batches: list[list[int]] = []

    async def run(items: Sequence[int]) -> list[int]:
        batches.append(list(items))
        await asyncio.sleep(0.01)  # a transaction in flight
        if 13 in items:
            raise RuntimeError("disk full")
        return [i * 10 for i in items]

    commit: GroupCommit[int, int] = GroupCommit(run, max_batch=50)
    results = await asyncio.gather(*(commit.submit(i) for i in range(120)), return_exceptions=True)
    assert len(batches) <= 4 and sorted(i for b in batches for i in b) == list(range(120))
    failed = next(b for b in batches if 13 in b)
    assert all(isinstance(results[i], RuntimeError) for i in failed)
    assert all(results[i] == i * 10 for i in range(120) if i not in failed)
    assert await commit.submit(7) == 70  # the writer carries on after a failed batch
