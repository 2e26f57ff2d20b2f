"""The deadline finder: real circular letters (Russian seeds), en/fr/es/ru sentences, ranges, years
left out, merging, confidence ordering and robustness on garbage."""

from __future__ import annotations

import random
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from floorbridge.core.announcements import FoundDeadline
from floorbridge.core.deadline import DeadlineKind
from floorbridge.core.deadline_finder import find_deadlines

SEEDS = Path(__file__).resolve().parents[1] / "data" / "seeds"  # copies of ../shared/seeds
REG, CONTRIB, VISA, SPEAK, OTHER = (
    DeadlineKind.REGISTRATION,
    DeadlineKind.CONTRIBUTIONS,
    DeadlineKind.VISA_SUPPORT,
    DeadlineKind.SPEAKING_SLOT,
    DeadlineKind.OTHER,
)


def pairs(found: tuple[FoundDeadline, ...]) -> set[tuple[DeadlineKind, date]]:
    return {(d.kind, d.due) for d in found}


def only(text: str, **kw: object) -> FoundDeadline:
    found = find_deadlines(text, **kw)  # type: ignore[arg-type]
    assert len(found) == 1, found
    return found[0]


def seed(name: str) -> str:
    path = next(SEEDS.glob(f"{name}_*.txt"), None)
    assert path is not None, f"seed {name} is missing from {SEEDS}"
    return path.read_text(encoding="utf-8")


# --- the seeds, read by a human -------------------------------------------------------------------

# ITU-T FG-DLT creation and first meeting (Geneva, 17–19 October 2017):
#   item 8 and Annex 2: written contributions by 10 October 2017;
#   item 10 and the "Основные предельные сроки" table: (pre-)registration by 10 October 2017;
#   the table: requests for visa support letters by 17 September 2017.
# Relative deadlines ("не позднее чем за одну неделю до начала собрания", visas "за месяц до даты
# прибытия", contributions "за двенадцать календарных дней") have no date and are not expected.
FG_DLT = {
    (CONTRIB, date(2017, 10, 10)),
    (REG, date(2017, 10, 10)),
    (VISA, date(2017, 9, 17)),
}
# WIPO ICT Leadership Dialogue, summary of discussions: a report, no deadline at all.
WILD = set[tuple[DeadlineKind, date]]()
# ITU CL-24/2, WSIS+20 Forum High-Level Event 2024: speaking-slot requests by 29 February 2024.
WSIS_2024 = {(SPEAK, date(2024, 2, 29))}
# ITU CL-25/18, WSIS+20 High-Level Event 2025: speaking-slot requests by 30 April 2025.
WSIS_2025 = {(SPEAK, date(2025, 4, 30))}


def test_seed_fg_dlt_letter() -> None:
    found = find_deadlines(seed("000"))
    assert pairs(found) == FG_DLT
    assert all(d.language == "ru" and d.confidence >= 0.8 for d in found)
    dues = {d.due for d in found}
    # the meeting (17–19 October 2017, "с 17 по 19 октября"), the TSAG meeting ("с 1 по 4 мая")
    # and the workshop of 21 March 2017 are not deadlines
    assert not dues & {date(2017, 10, 17), date(2017, 10, 19), date(2017, 5, 4), date(2017, 3, 21)}
    visa = next(d for d in found if d.kind is VISA)
    assert "визы" in visa.excerpt and "17 сентября 2017 г." in visa.excerpt


def test_seed_fg_dlt_letter_order_of_appearance() -> None:
    found = find_deadlines(seed("000"))
    assert [(d.kind, d.due) for d in found] == [
        (CONTRIB, date(2017, 10, 10)),
        (REG, date(2017, 10, 10)),
        (VISA, date(2017, 9, 17)),
    ]


def test_seed_fg_dlt_deadline_table_alone() -> None:
    text = seed("000")
    table = text[text.index("Основные предельные сроки"):text.index("Желаю вам")]
    assert pairs(find_deadlines(table)) == FG_DLT


def test_seed_fg_dlt_item_8_kind_from_the_previous_sentence() -> None:
    text = seed("000")
    item = text[text.index("8\tПредлагается"):text.index("9\tОткрытие")]
    found = only(item)
    assert (found.kind, found.due, found.language) == (CONTRIB, date(2017, 10, 10), "ru")
    assert found.excerpt == "Предельный срок представления – 10 октября 2017 года."


def test_seed_wipo_summary_has_no_deadline() -> None:
    text = seed("001")
    assert find_deadlines(text) == ()
    assert find_deadlines(text, sent=date(2026, 5, 27)) == ()


@pytest.mark.parametrize("sent", [None, date(2024, 2, 2)])
def test_seed_wsis_2024(sent: date | None) -> None:
    found = find_deadlines(seed("002"), sent=sent)
    assert pairs(found) == WSIS_2024
    assert found[0].confidence >= 0.8 and found[0].language == "ru"
    assert "не позднее 29 февраля 2024 года" in found[0].excerpt
    assert len(found[0].excerpt) <= 200


@pytest.mark.parametrize("sent", [None, date(2025, 2, 27)])
def test_seed_wsis_2025(sent: date | None) -> None:
    found = find_deadlines(seed("003"), sent=sent)
    assert pairs(found) == WSIS_2025
    assert found[0].confidence >= 0.8 and found[0].language == "ru"
    # the sentence is hard-wrapped over three lines: the excerpt is one line
    assert "\n" not in found[0].excerpt and "не позднее 30 апреля 2025 года" in found[0].excerpt


def test_seed_meeting_dates_are_not_deadlines() -> None:
    assert find_deadlines("Первое собрание: Женева, Швейцария, 17–19 октября 2017 года") == ()
    dues = {d.due for d in find_deadlines(seed("002"), sent=date(2024, 2, 2))}
    assert not dues & {date(2024, 5, 27), date(2024, 5, 28), date(2024, 5, 29), date(2024, 5, 30), date(2024, 5, 31)}
    dues = {d.due for d in find_deadlines(seed("003"), sent=date(2025, 2, 27))}
    assert not dues & {date(2025, 7, d) for d in range(7, 12)}


# --- sentences in the four languages --------------------------------------------------------------


def test_english_speaking_slots() -> None:
    found = only("Requests for speaking slots must be received no later than 30 April 2025.")
    assert (found.kind, found.due, found.language) == (SPEAK, date(2025, 4, 30), "en")
    assert found.confidence >= 0.8
    assert found.excerpt == "Requests for speaking slots must be received no later than 30 April 2025."


def test_french_contributions_with_ordinal() -> None:
    found = only("Les contributions écrites doivent parvenir au plus tard le 1er mars 2024 au secrétariat.")
    assert (found.kind, found.due, found.language) == (CONTRIB, date(2024, 3, 1), "fr")
    assert found.confidence >= 0.8


def test_spanish_visa_support() -> None:
    found = only("Las solicitudes de apoyo para visados deberán enviarse a más tardar el 15 de enero de 2025.")
    assert (found.kind, found.due, found.language) == (VISA, date(2025, 1, 15), "es")
    assert found.confidence >= 0.8


def test_russian_deadline_with_dash_and_no_kind() -> None:
    found = only("Предельный срок – 10 октября 2017 г.")
    assert (found.kind, found.due, found.language) == (OTHER, date(2017, 10, 10), "ru")
    assert 0.5 <= found.confidence < 0.8


def test_russian_leap_day() -> None:
    found = only("Просим зарегистрироваться на сайте не позднее 29 февраля 2024 года.")
    assert (found.kind, found.due, found.language) == (REG, date(2024, 2, 29), "ru")
    assert found.confidence >= 0.8


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Registration deadline: 29 February 2024.", "en"),
        ("Registration deadline: February 29, 2024.", "en"),
        ("Registration deadline: Feb 29, 2024.", "en"),
        ("Fecha límite de inscripción: 29 de febrero de 2024.", "es"),
        ("Date limite d'inscription : 29 février 2024.", "fr"),
        ("Date limite d'inscription : 29 fevrier 2024.", "fr"),
        ("DATE LIMITE D'INSCRIPTION : 29 FÉVRIER 2024.", "fr"),
        ("Предельный срок регистрации – 29 февраля 2024 года.", "ru"),
        ("Предельный срок регистрации – 29 февраля 2024 г.", "ru"),
        ("Предельный срок регистрации: 29.02.2024.", "ru"),
        ("Registration deadline: 2024-02-29.", "en"),
    ],
)
def test_date_forms(text: str, language: str) -> None:
    found = only(text)
    assert (found.kind, found.due, found.language) == (REG, date(2024, 2, 29), language)


@pytest.mark.parametrize(
    "text",
    [
        "Registration deadline: 31 February 2024.",
        "Registration deadline: February 30, 2023.",
        "Предельный срок регистрации: 30.02.2024.",
        "Registration deadline: 2024-13-01.",
        "Registration deadline: 29 February 2023.",
        "Registration deadline: 0 March 2024.",
    ],
)
def test_invalid_dates_are_ignored(text: str) -> None:
    assert find_deadlines(text) == ()


@pytest.mark.parametrize(
    "text",
    [
        "The meeting will take place on 15 March 2024 in Geneva.",
        "Женева, 27 февраля 2025 года",
        "La réunion aura lieu le 3 juin 2025 à Genève.",
        "La reunión se celebrará el 3 de junio de 2025.",
        "ДАТА: 27 МАЯ 2026 ГОДА",
        "Hosted by ITU, 15 March 2024.",
    ],
)
def test_no_cue_no_deadline(text: str) -> None:
    assert find_deadlines(text) == ()


@pytest.mark.parametrize(
    "text",
    [
        "The Forum will be held from 17 to 19 October 2017; registration is required.",
        "Geneva, 17-19 October 2017. Registration is required.",
        "Собрание будет проведено с 17 по 19 октября 2017 года включительно.",
        "La réunion se tiendra du 17 au 19 octobre 2017.",
        "La reunión se celebrará del 17 al 19 de octubre de 2017.",
        "High-level event, 30 June – 2 July 2025.",
        "Женева, 14 – 16 апреля 2026 года",
        "Registration deadline: 10 October 2017 (for the meeting on 17–19 October 2017).",
    ],
)
def test_ranges_are_meeting_dates(text: str) -> None:
    assert date(2017, 10, 19) not in {d.due for d in find_deadlines(text)}
    assert all(d.due in {date(2017, 10, 10)} for d in find_deadlines(text))


def test_a_range_governed_by_a_cue_gives_its_last_day() -> None:
    found = only("Registration deadline: 1–5 March 2024.")
    assert (found.kind, found.due) == (REG, date(2024, 3, 5))
    assert found.confidence < only("Registration deadline: 5 March 2024.").confidence


def test_weak_cue_is_less_confident_than_strong_cue() -> None:
    weak = only("Please register by 15 March 2024.")
    strong = only("Please register no later than 15 March 2024.")
    assert (weak.kind, weak.due) == (strong.kind, strong.due) == (REG, date(2024, 3, 15))
    assert weak.confidence < strong.confidence
    ru_weak = only("Регистрация до 10 октября 2017 г.")
    ru_strong = only("Регистрация не позднее 10 октября 2017 г.")
    assert ru_weak.confidence < ru_strong.confidence


def test_kind_keyword_raises_confidence() -> None:
    other = only("The deadline is 15 March 2024.")
    registration = only("The registration deadline is 15 March 2024.")
    assert other.kind is OTHER and registration.kind is REG
    assert other.confidence < registration.confidence


def test_weak_cue_must_be_right_before_the_date() -> None:
    assert find_deadlines("The report prepared by the secretariat on 15 March 2024 is online.") == ()
    found = only("Please register by Friday, 15 March 2024, 12:00 CET.")
    assert found.due == date(2024, 3, 15)


def test_duplicates_are_merged_most_confident_kept() -> None:
    text = (
        "Please register by 15 March 2024.\n\n"
        "Reminder: registration must be completed no later than 15 March 2024.\n\n"
        "Contributions by 15 March 2024."
    )
    found = find_deadlines(text)
    assert [(d.kind, d.due) for d in found] == [(REG, date(2024, 3, 15)), (CONTRIB, date(2024, 3, 15))]
    assert found[0].confidence == max(
        only("Please register by 15 March 2024.").confidence,
        only("Reminder: registration must be completed no later than 15 March 2024.").confidence,
    )
    assert "no later than" in found[0].excerpt


def test_closest_keyword_wins() -> None:
    text = "Deadlines: registration 1 March 2024, contributions 15 March 2024, visa support 1 February 2024."
    assert [(d.kind, d.due) for d in find_deadlines(text)] == [
        (REG, date(2024, 3, 1)),
        (CONTRIB, date(2024, 3, 15)),
        (VISA, date(2024, 2, 1)),
    ]


def test_a_cue_does_not_reach_past_another_date_without_a_new_kind() -> None:
    text = "The deadline for registration is 1 March 2024 and the meeting takes place on 17 March 2024."
    assert pairs(find_deadlines(text)) == {(REG, date(2024, 3, 1))}


def test_deadline_noun_after_the_date() -> None:
    found = only("15 March 2025 – registration deadline")
    assert (found.kind, found.due) == (REG, date(2025, 3, 15))


def test_deadline_table_under_a_heading() -> None:
    text = (
        "Key deadlines\n"
        "15 March 2025\tVisa support requests\n"
        "1 April 2025\tRegistration and written contributions\n"
        "\n"
        "We look forward to your participation."
    )
    assert [(d.kind, d.due) for d in find_deadlines(text)] == [
        (VISA, date(2025, 3, 15)),
        (REG, date(2025, 4, 1)),
        (CONTRIB, date(2025, 4, 1)),
    ]


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Les demandes de temps de parole doivent être envoyées avant le 5 mai 2025.", SPEAK),
        ("Las solicitudes de turno de palabra deben enviarse antes del 5 de mayo de 2025.", SPEAK),
        ("Заявки на выступление принимаются не позднее 5 мая 2025 года.", SPEAK),
        ("Les inscriptions se clôturent le 5 mai 2025.", REG),
        ("El plazo para la presentación de contribuciones vence el 5 de mayo de 2025.", CONTRIB),
        ("Запросы о визовой поддержке следует направить до 05.05.2025.", VISA),
        ("Written contributions should be submitted by 5 May 2025.", CONTRIB),
        ("Registration is open until 5 May 2025.", REG),
    ],
)
def test_kinds_and_cues(text: str, kind: DeadlineKind) -> None:
    found = only(text)
    assert (found.kind, found.due) == (kind, date(2025, 5, 5))


# --- years left out, the mail's date --------------------------------------------------------------


def test_missing_year_resolved_with_sent() -> None:
    text = "Please register by 15 March."
    assert find_deadlines(text) == ()
    assert only(text, sent=date(2024, 2, 1)).due == date(2024, 3, 15)
    assert only(text, sent=date(2024, 4, 1)).due == date(2024, 3, 15)
    assert only(text, sent=date(2024, 12, 20)).due == date(2025, 3, 15)
    assert only("Registration deadline: March 15.", sent=date(2024, 12, 20)).due == date(2025, 3, 15)
    assert only("Регистрация не позднее 29 февраля.", sent=date(2025, 1, 10)).due == date(2028, 2, 29)
    assert only(text, sent=date(2024, 2, 1)).confidence < only("Please register by 15 March 2024.").confidence


def test_english_lower_case_may_is_not_a_month_without_a_year() -> None:
    assert find_deadlines("The deadline in paragraph 3 may be extended by 15 may be", sent=date(2024, 1, 1)) == ()


def test_dates_long_before_sent_are_less_confident() -> None:
    text = "Please register no later than 15 March 2020."
    assert only(text, sent=date(2024, 1, 10)).confidence < only(text, sent=date(2020, 1, 10)).confidence
    assert only(text).confidence == only(text, sent=date(2020, 1, 10)).confidence


def test_sent_may_be_a_datetime() -> None:
    found = only("Please register no later than 15 March 2024.", sent=datetime(2024, 1, 1, 9, tzinfo=UTC))
    assert found.due == date(2024, 3, 15)


# --- subject, sentences, excerpts -----------------------------------------------------------------


def test_subject_gives_the_kind_when_the_text_has_none() -> None:
    found = only("Deadline: 1 March 2024.", subject="Call for contributions")
    assert (found.kind, found.due) == (CONTRIB, date(2024, 3, 1))


def test_deadline_in_the_subject() -> None:
    found = only("", subject="Reminder: registration deadline 15 March 2025")
    assert (found.kind, found.due) == (REG, date(2025, 3, 15))


def test_sentences_are_not_split_on_abbreviations_and_numbered_points() -> None:
    found = only("Contributions (e.g. position papers) must be received no later than 1 March 2024.")
    assert found.kind is CONTRIB
    found = only("8.\tWritten contributions are invited. The deadline is 1 March 2024.")
    assert found.kind is CONTRIB
    found = only("Регистрация в г. Женеве. Запросы о визах – не позднее 1 марта 2024 г. Спасибо.")
    assert found.kind is VISA and found.excerpt == "Запросы о визах – не позднее 1 марта 2024 г."


def test_sentence_boundaries_keep_kinds_apart() -> None:
    text = "Registration is open online. The meeting takes place in Geneva; visa letters no later than 1 March 2024."
    assert pairs(find_deadlines(text)) == {(VISA, date(2024, 3, 1))}


def test_excerpt_is_collapsed_and_at_most_200_characters() -> None:
    filler = "delegates   are\n\tinvited to take note of the arrangements " * 10
    text = f"{filler} and to register no later than 15 March 2024, {filler}."
    found = only(text)
    assert len(found.excerpt) <= 200
    assert "15 March 2024" in found.excerpt
    assert found.excerpt.startswith("…") and found.excerpt.endswith("…")
    assert "  " not in found.excerpt and "\n" not in found.excerpt and "\t" not in found.excerpt


# --- robustness -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["", " ", "\n\n\n", ".", ";;;", "\x00\x01", "İ" * 1000, "31.31.3131", "9999-99-99", "by", "до", "deadline",
     "deadline\n", "no later than 99 March 99999", "1" * 10000, "г. г. г.", "…" * 100],
)
def test_odd_inputs(text: str) -> None:
    assert isinstance(find_deadlines(text, subject=text, sent=date(2024, 1, 1)), tuple)
    assert isinstance(find_deadlines(text), tuple)


def test_200_kb_of_garbage_completes() -> None:
    rng = random.Random(7)
    tokens = ["no later than ", "15 ", "March ", "2024", ". ", "\n", "\n\n", "registration ", "до ", "октября ",
              "–", "de ", "г. ", "deadline\n", "1er ", "février ", "a más tardar el ", "29.02.2024 ", "x" * 30,
              "Предельный срок ", "17-19 ", ";", "\t", "by ", "visa ", "10.10.2017", "2017-10-10"]
    text = "".join(rng.choice(tokens) for _ in range(40_000))[:200_000]
    start = time.perf_counter()
    found = find_deadlines(text, sent=date(2024, 1, 1))
    assert time.perf_counter() - start < 5
    assert isinstance(found, tuple)
    assert all(0 <= d.confidence <= 1 and len(d.excerpt) <= 200 for d in found)
    assert len({(d.kind, d.due) for d in found}) == len(found)
    noise = "".join(chr(rng.randrange(32, 0x500)) for _ in range(200_000))
    start = time.perf_counter()
    assert isinstance(find_deadlines(noise), tuple)
    assert time.perf_counter() - start < 5
