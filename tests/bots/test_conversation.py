"""The conversation core as a delegate or moderator meets it, over a real SQLite store."""

from __future__ import annotations

from datetime import UTC, datetime

from floorbridge.core.chats import NoticeKind, Platform, UserRef

from .conftest import GROUP, MODERATOR, PRIVATE, WSIS, World

STRANGER = UserRef(Platform.TELEGRAM, "555")


async def test_start_offers_the_six_languages_and_explains_timezones(world: World) -> None:
    replies = await world.ask("start")
    labels = [b.label for row in replies[0].message.buttons for b in row]
    assert labels == ["English", "Français", "Español", "Русский", "العربية", "中文"]
    assert "tz Nairobi" in replies[1].message.plain() and "Europe/Zurich" in replies[1].message.plain()
    profile = await world.chats.get_profile(PRIVATE)
    assert profile is not None and profile.started


async def test_the_platform_language_is_the_first_guess(world: World) -> None:
    await world.ask("start", hint="fr-CA")
    profile = await world.chats.get_profile(PRIVATE)
    assert profile is not None and profile.language == "fr"


async def test_today_lists_the_days_sessions_in_meeting_time(world: World) -> None:
    text = await world.text("today")
    assert "Wednesday, 9 July 2025" in text
    assert "09:00–10:30 High-level segment: opening and first policy statements · Hall 2" in text
    assert "tentative" in text  # the gender workshop
    assert "Action Line C2" not in text  # that was Monday


async def test_times_are_also_shown_in_the_delegates_own_zone(world: World) -> None:
    assert "Asia/Tokyo" in await world.text("tz Tokyo")
    text = await world.text("today")
    # 09:00 in Geneva (UTC+2) is 16:00 in Tokyo (UTC+9).
    assert "09:00–10:30 (16:00–17:30 your time)" in text


async def test_a_zone_with_the_same_offset_adds_nothing(world: World) -> None:
    await world.text("tz Europe/Paris")
    assert "your time" not in await world.text("today")


async def test_timezone_by_country_code_city_and_with_suggestions(world: World) -> None:
    assert "Europe/Zurich" in await world.text("tz CH")
    assert "Africa/Nairobi" in await world.text("tz nairobi")
    replies = await world.ask("tz US")
    commands = [b.command for row in replies[0].message.buttons for b in row]
    assert "tz America/New_York" in commands and len(commands) <= 8
    suggestion = await world.ask("tz Nairobbi")
    assert [b.command for row in suggestion[0].message.buttons for b in row] == ["tz Africa/Nairobi"]
    unknown = await world.text("tz Gondor")
    assert "I don't know the timezone Gondor" in unknown
    profile = await world.chats.get_profile(PRIVATE)
    assert profile is not None and profile.timezone == "Africa/Nairobi"  # failures changed nothing


async def test_now_and_next(world: World) -> None:
    text = await world.text("now")
    assert "Nothing is in session right now." in text  # 10:30, between sessions
    assert "11:00–12:30" in text and "policy statements (1)" in text and "Action Line C6" in text
    world.clock[0] = datetime(2025, 7, 9, 9, 15, tzinfo=UTC)  # 11:15 in Geneva
    assert "Now" in await world.text("now")


async def test_agenda_by_day_number_date_and_track(world: World) -> None:
    by_track = await world.text("agenda Regulators' Roundtable")
    assert by_track.startswith("WSIS+20 High-Level Event 2025 — Regulators' Roundtable")
    assert "regulators-roundtable" in by_track  # the session's id
    assert "hls-" not in by_track and "alf-" not in by_track  # nothing from other tracks
    assert await world.text("agenda 2025-07-09") == await world.text("agenda 3")
    wrong = await world.text("agenda 2025-13-40")
    assert "neither a day of the meeting" in wrong and "2025-07-07" in wrong


async def test_session_details_and_unknown_ids(world: World) -> None:
    text = await world.text("session hls-opening")
    assert "Hall 2" in text and "Policy statements by ministers" in text
    assert "There is no session nope" in await world.text("session nope")
    assert "session ID" in await world.text("session")


async def test_deadlines_show_kind_date_and_days_left(world: World) -> None:
    world.clock[0] = datetime(2025, 4, 20, 8, 0, tzinfo=UTC)
    text = await world.text("deadlines")
    assert "Speaking-slot request: Speaking-slot requests for the WSIS+20 High-Level Event 2025" in text
    assert "Wednesday, 30 April 2025 (end of day, Central European Time) (in 10 days)" in text


async def test_subscribe_to_tracks_and_kinds_then_unsubscribe(world: World) -> None:
    text = await world.text("subscribe high-level-segment deadlines")
    assert "High-Level Segment" in text
    [sub] = await world.chats.subscriptions_of(PRIVATE)
    assert sub.tracks == {"high-level-segment"} and sub.kinds == {NoticeKind.DEADLINES}
    await world.text("subscribe regulators-roundtable agenda")
    [sub] = await world.chats.subscriptions_of(PRIVATE)
    assert sub.tracks == {"high-level-segment", "regulators-roundtable"}
    assert sub.kinds == {NoticeKind.DEADLINES, NoticeKind.AGENDA}
    await world.text("unsubscribe high-level-segment")
    [sub] = await world.chats.subscriptions_of(PRIVATE)
    assert sub.tracks == {"regulators-roundtable"}
    bad = await world.text("subscribe the-moon")
    assert "I don't know the-moon" in bad and "high-level-segment" in bad
    assert "Unsubscribed" in await world.text("unsubscribe")
    assert await world.chats.subscriptions_of(PRIVATE) == []


async def test_only_moderators_subscribe_a_group_or_set_its_meeting(world: World) -> None:
    refused = await world.text("subscribe", chat=GROUP, user=STRANGER, group=True)
    assert refused == "Only the moderators of wsis-2025 can do that."
    assert await world.chats.subscriptions_of(GROUP) == []
    assert "subscribed" in await world.text("subscribe", chat=GROUP, user=MODERATOR, group=True)
    assert "Only the moderators" in await world.text("meeting wsis-2025", chat=GROUP, user=STRANGER, group=True)
    assert "Only the moderators" in await world.text("pin", chat=GROUP, user=STRANGER, group=True)
    assert world.pins == []
    await world.text("pin", chat=GROUP, user=MODERATOR, group=True)
    assert [(p.chat, m) for p, m in world.pins] == [(GROUP, WSIS)]


async def test_ical_gives_a_private_link_and_reset_revokes_it(world: World) -> None:
    first = await world.ask("ical")
    assert first[0].private
    profile = await world.chats.get_profile(PRIVATE)
    assert profile is not None and len(profile.feed_token) >= 43
    assert f"https://fb.example.org/ical/personal/{profile.feed_token}.ics" in first[0].message.plain()
    assert "webcal://fb.example.org/ical/personal/" in first[0].message.plain()
    again = await world.chats.get_profile(PRIVATE)
    await world.ask("ical")
    assert again is not None and (await world.chats.get_profile(PRIVATE)).feed_token == again.feed_token  # type: ignore[union-attr]
    reset = await world.text("ical reset")
    renewed = await world.chats.get_profile(PRIVATE)
    assert renewed is not None and renewed.feed_token != profile.feed_token
    assert "The old link no longer works." in reset
    assert await world.chats.profile_by_feed_token(profile.feed_token) is None
    assert "private chat" in await world.text("ical", chat=GROUP, group=True)


async def test_info_shows_the_practical_information(world: World) -> None:
    text = await world.text("info")
    assert "Palexpo, Geneva, Switzerland" in text
    assert "wsis-info@itu.int" in text and "Online participation" in text


async def test_whoami_names_the_role(world: World) -> None:
    text = await world.text("whoami", user=MODERATOR)
    assert "telegram:42" in text and "moderator — wsis-2025" in text
    assert "moderator" not in await world.text("whoami")


async def test_unknown_commands_and_overlong_input_get_a_clear_answer(world: World) -> None:
    assert "I don't know the command frobnicate." in await world.text("frobnicate now")
    assert "too long (1001 characters)" in await world.text("x" * 1001)
    assert "help" in await world.text("/help@floorbridge_bot")


async def test_injection_in_arguments_is_just_text(world: World) -> None:
    replies = await world.ask("session <b>@everyone</b>")
    plain = replies[0].message.plain()
    assert "<b>@everyone</b>" in plain  # kept as text in the model; each renderer escapes it
