"""The mail section: rules per meeting, receivers, IMAP mailboxes and their passwords."""

from __future__ import annotations

from floorbridge.adapters.mail.intake import rules_from
from floorbridge.core.announcements import DkimPolicy, RelayMode

from .conftest import Load, Refuse

GOOD = """
mail:
  smtp: {enabled: true, port: 2525}
  imap:
    - {meeting: wsis-2025, host: imap.example.org, username: wsis, password_env: WSIS_IMAP}
  meetings:
    wsis-2025:
      lists: [{list_id: "<WSIS-Announce.Lists.ITU.int>", mode: Automatic}]
      senders: ["@ITU.int", tsbmail@itu.int]
      dkim: require
      auto_accept_confidence: 0.85
"""


def test_a_full_mail_section_loads_normalised_with_its_secrets(load: Load) -> None:
    s = load(GOOD, {"WSIS_IMAP": "imap-pass", "FLOORBRIDGE_MAIL_HMAC_SECRET": "hmac-key"})
    rules = rules_from(s.mail.rules("wsis-2025"))
    assert rules.mode_for("wsis-announce.lists.itu.int") is RelayMode.AUTOMATIC
    assert rules.mode_for("other.example.org") is None
    assert rules.senders == ("@itu.int", "tsbmail@itu.int") and rules.dkim is DkimPolicy.REQUIRE
    assert rules_from(s.mail.rules("fg-dlt-1")).mode_for("anything") is RelayMode.MODERATED  # not configured
    assert s.mail.smtp.port == 2525 and not s.mail.lmtp.enabled and s.mail.lmtp.port == 8024
    assert s.secret("imap:0") is not None and s.secret("imap:0").get_secret_value() == "imap-pass"  # type: ignore[union-attr]
    assert s.secret("mail-hmac") is not None
    assert "imap-pass" not in repr(s) and "hmac-key" not in repr(s)


def test_an_imap_mailbox_without_its_password_is_refused(refuse: Refuse) -> None:
    problems = refuse(GOOD)
    assert any("mail.imap.0.password_env: the environment variable WSIS_IMAP is not set" in p for p in problems)


def test_bad_rules_are_named(refuse: Refuse) -> None:
    problems = refuse("""
mail:
  meetings:
    wsis-2025:
      lists: [{list_id: "not a list id"}]
      senders: [nobody]
      dkim: sometimes
      auto_accept_confidence: 1.5
""")
    text = "\n".join(problems)
    assert "List-Id identifier" in text
    assert "'nobody' must be an address (secretariat@itu.int) or a whole domain (@itu.int)" in text
    assert "dkim" in text and "sometimes" in text
    assert "auto_accept_confidence" in text
    assert any("'Bad_Id' is not a meeting id" in p for p in refuse("mail:\n  meetings:\n    Bad_Id: {}\n"))
