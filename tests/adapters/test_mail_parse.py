"""Circular letters as the lists deliver them, read into what a delegate sees: the decoded subject and
sender, the body text without list footer or quoted reply, the attachments listed, and every guess the
parser had to make noted for the moderators."""

from __future__ import annotations

import base64
import quopri
import random
import time
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import pytest

from floorbridge.adapters.mail.parse import MalformedMail, parse_mail
from floorbridge.core.announcements import Attachment, ParsedMail

RU_LETTER = (
    "Уважаемая госпожа,\n"
    "Уважаемый господин,\n"
    "\n"
    "Бюро стандартизации электросвязи МСЭ имеет честь пригласить вас на собрание Оперативной группы\n"
    "по применению технологии распределенного реестра (ОГ-DLT), которое состоится в Женеве.\n"
    "Предельный срок представления – 10 октября 2017 года.\n"
    "\n"
    "С уважением,\n"
    "Чхе Суб Ли\n"
    "Директор Бюро стандартизации электросвязи\n"
)
# KOI8-R has no en dash: letters sent in it use a hyphen.
RU_LETTER_KOI8 = RU_LETTER.replace("–", "-")
RU_FIRST = ("Бюро стандартизации электросвязи МСЭ имеет честь пригласить вас на собрание Оперативной группы "
            "по применению технологии распределенного реестра (ОГ-DLT), которое состоится в Женеве. "
            "Предельный срок представления – 10 октября 2017 года.")

MAILMAN2_FOOTER = (
    "\n_______________________________________________\n"
    "fg-dlt mailing list\n"
    "fg-dlt@lists.itu.int\n"
    "https://lists.itu.int/mailman/listinfo/fg-dlt\n"
)
MAILMAN3_FOOTER = (
    "\n_______________________________________________\n"
    "fg-dlt mailing list -- fg-dlt@lists.itu.int\n"
    "To unsubscribe send an email to fg-dlt-leave@lists.itu.int\n"
)


def encoded_word(text: str, charset: str, encoding: str = "B") -> str:
    data = text.encode(charset)
    if encoding == "B":
        return f"=?{charset}?B?{base64.b64encode(data).decode('ascii')}?="
    payload = quopri.encodestring(data, header=True).decode("ascii")
    return f"=?{charset}?Q?{payload}?="


def raw_message(headers: dict[str, str], body: bytes) -> bytes:
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return head.encode("ascii") + b"\r\n" + body


ITU_HEADERS = {
    "Message-ID": "<circular-45@itu.int>",
    "Date": "Mon, 02 Oct 2017 10:15:00 +0200",
    "List-Id": "ITU-T Focus Group on DLT <fg-dlt.lists.itu.int>",
    "MIME-Version": "1.0",
}


def test_russian_circular_in_koi8r_quoted_printable() -> None:
    raw = raw_message(
        {
            **ITU_HEADERS,
            "From": f"{encoded_word('Бюро стандартизации МСЭ', 'koi8-r')} <TSB-FG@ITU.INT>",
            "Subject": encoded_word("Циркуляр 45: собрание ОГ-DLT", "koi8-r"),
            "Content-Type": "text/plain; charset=KOI8-R",
            "Content-Transfer-Encoding": "quoted-printable",
        },
        quopri.encodestring((RU_LETTER_KOI8 + MAILMAN2_FOOTER).encode("koi8-r")),
    )

    mail = parse_mail(raw)

    assert mail.subject == "Циркуляр 45: собрание ОГ-DLT"
    assert mail.sender == "Бюро стандартизации МСЭ <TSB-FG@ITU.INT>"
    assert mail.sender_address == "tsb-fg@itu.int"
    assert mail.message_id == "circular-45@itu.int"
    assert mail.list_id == "fg-dlt.lists.itu.int"
    assert mail.date == datetime(2017, 10, 2, 8, 15, tzinfo=UTC)
    assert mail.date is not None and mail.date.utcoffset() == timedelta(hours=2)
    assert "Предельный срок представления - 10 октября 2017 года." in mail.text.splitlines()
    assert mail.text.startswith("Уважаемая госпожа,\nУважаемый господин,\n\nБюро стандартизации")
    assert mail.text.endswith("Директор Бюро стандартизации электросвязи")  # footer gone, signature kept
    assert "mailing list" not in mail.text and "listinfo" not in mail.text
    assert mail.first_paragraph == RU_FIRST.replace("–", "-")
    assert mail.attachments == ()
    assert mail.repairs == ()


def test_russian_circular_in_windows1251_base64() -> None:
    msg = EmailMessage()
    msg["From"] = "tsb@itu.int"
    msg["Message-ID"] = "<circular-45-cp1251@itu.int>"
    msg.set_content(RU_LETTER + MAILMAN3_FOOTER, charset="windows-1251", cte="base64")
    raw = f"Subject: {encoded_word('Циркуляр 45 – предельный срок', 'windows-1251')}\r\n".encode() + msg.as_bytes()
    assert b"Content-Transfer-Encoding: base64" in raw and b"charset=\"windows-1251\"" in raw

    mail = parse_mail(raw)

    assert mail.subject == "Циркуляр 45 – предельный срок"
    assert mail.sender == "tsb@itu.int" == mail.sender_address
    assert "Предельный срок представления – 10 октября 2017 года." in mail.text
    assert "unsubscribe" not in mail.text.lower()
    assert mail.first_paragraph == RU_FIRST
    assert mail.date is None and mail.list_id == ""
    assert mail.repairs == ()


def test_multipart_alternative_prefers_the_plain_text() -> None:
    msg = EmailMessage()
    msg["From"] = "WIPO Secretariat <secretariat@wipo.int>"
    msg["To"] = "scp@lists.wipo.int"
    msg["Subject"] = "C. 9012 – Standing Committee on the Law of Patents (SCP/36) – “hybrid” session"
    msg["Message-ID"] = "< C9012.scp36@wipo.int >"
    msg.set_content("Dear Sir/Madam,\n\nThe thirty-sixth session of the SCP will take place in Geneva.\n"
                    "Registration closes on 15 September 2024.\n\nWIPO Secretariat\n")
    msg.add_alternative("<html><body><p>Dear Sir/Madam,</p><p>HTML VERSION of the invitation.</p></body></html>",
                        subtype="html")

    mail = parse_mail(msg.as_bytes())

    assert mail.subject == "C. 9012 – Standing Committee on the Law of Patents (SCP/36) – “hybrid” session"
    assert mail.sender == "WIPO Secretariat <secretariat@wipo.int>"
    assert mail.message_id == "C9012.scp36@wipo.int"
    assert mail.text == ("Dear Sir/Madam,\n\nThe thirty-sixth session of the SCP will take place in Geneva.\n"
                         "Registration closes on 15 September 2024.\n\nWIPO Secretariat")
    assert "HTML VERSION" not in mail.text
    assert mail.first_paragraph == ("The thirty-sixth session of the SCP will take place in Geneva. "
                                    "Registration closes on 15 September 2024.")
    assert mail.attachments == ()


def test_alternative_with_an_empty_plain_part_falls_back_to_html() -> None:
    msg = EmailMessage()
    msg["From"] = "secretariat@wipo.int"
    msg.set_content("\n\n")
    msg.add_alternative("<p>The session is <b>postponed</b>.</p>", subtype="html")

    assert parse_mail(msg.as_bytes()).text == "The session is postponed."


HTML_ONLY = """<!DOCTYPE html>
<html><head><title>Newsletter title</title>
<style>p { color: red; } .hidden { display: none }</style>
<script>var tracking = "SECRET-TRACKING-CODE";</script></head>
<body>
<img src="http://tracker.example.com/open.gif?id=42" width="1" height="1" alt="">
<h1>Circular&nbsp;12</h1>
<p>Dear colleagues,</p>
<p>The <a href="https://www.itu.int/en/ITU-T/focusgroups/dlt/Pages/default.aspx">meeting page</a> lists
   the   documents.<br>Contributions are due by <b>10&nbsp;October&nbsp;2017</b>.</p>
<ul><li>Item one</li><li>Item two</li></ul>
<ol><li>First step</li><li>Second step</li></ol>
<table><tr><td>Deadline</td><td>10 October 2017</td></tr></table>
<div>Seong&nbsp;Lee &amp; team</div>
<script type="text/javascript">document.write("<p>INJECTED</p>")</script>
</body></html>"""


def test_html_only_message_is_turned_into_readable_text() -> None:
    msg = EmailMessage()
    msg["From"] = "ITU News <news@itu.int>"
    msg["Subject"] = "Circular 12"
    msg.set_content(HTML_ONLY, subtype="html")

    mail = parse_mail(msg.as_bytes())

    assert mail.text == (
        "Circular 12\n\n"
        "Dear colleagues,\n\n"
        "The meeting page lists the documents.\n"
        "Contributions are due by 10 October 2017.\n\n"
        "- Item one\n- Item two\n\n"
        "1. First step\n2. Second step\n\n"
        "Deadline 10 October 2017\n\n"
        "Seong Lee & team"
    )
    for hidden in ("tracker", "SECRET-TRACKING-CODE", "INJECTED", "color: red", "Newsletter title", "itu.int/en"):
        assert hidden not in mail.text
    assert mail.first_paragraph == "Circular 12"
    assert mail.attachments == ()


def test_html_reply_leaves_out_the_cited_message() -> None:
    msg = EmailMessage()
    msg["From"] = "delegate@example.org"
    msg.set_content(
        '<div dir="ltr">We will attend.</div><div class="gmail_quote"><div class="gmail_attr">'
        "On Mon, 2 Oct 2017 at 10:15, TSB &lt;tsb@itu.int&gt; wrote:<br></div>"
        '<blockquote class="gmail_quote"><div>Please register by 10 October.</div>'
        "<blockquote>nested</blockquote></blockquote></div>", subtype="html")

    assert parse_mail(msg.as_bytes()).text == "We will attend."


def test_outlook_html_reply_keeps_the_answer_only() -> None:
    html = (
        '<html xmlns:o="urn:schemas-microsoft-com:office:office"><head><!--[if gte mso 9]><xml><o:shapedefaults />'
        "</xml><![endif]--><style><!-- p.MsoNormal {margin:0cm;} --></style></head><body lang=EN-US>"
        "<div class=WordSection1><p class=MsoNormal>Dear colleagues,<o:p></o:p></p><p><o:p>&nbsp;</o:p></p>"
        '<p class=MsoNormal>Please note the deadline of <b>10 October 2017</b> for <a href="https://itu.int/x">'
        "SG17</a> contributions.<o:p></o:p></p><p class=MsoNormal>Best regards,<br>TSB</p>"
        "<div style='border:none;border-top:solid #E1E1E1 1.0pt'><p class=MsoNormal><b>From:</b> Rapporteur "
        "&lt;r@example.org&gt;<br><b>Sent:</b> Monday, October 2, 2017 10:00<br><b>Subject:</b> Question</p></div>"
        "<p>The old question.</p></div></body></html>")
    raw = raw_message({"From": "tsb@itu.int", "Content-Type": "text/html; charset=utf-8"}, html.encode())

    mail = parse_mail(raw)

    assert mail.text == ("Dear colleagues,\n\nPlease note the deadline of 10 October 2017 for SG17 contributions.\n\n"
                         "Best regards,\nTSB")
    assert mail.first_paragraph == "Please note the deadline of 10 October 2017 for SG17 contributions."


def test_pdf_attachment_is_listed_with_its_size_and_never_read() -> None:
    pdf = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
    msg = EmailMessage()
    msg["From"] = "TSB <tsb@itu.int>"
    msg["Subject"] = "TSB Circular 45"
    msg.set_content("Please find attached TSB Circular 45.\n")
    msg.add_attachment(pdf, maintype="application", subtype="pdf", filename="TSB-Circular-45.pdf")
    msg.add_attachment("Форма регистрации".encode(), maintype="application", subtype="msword",
                       filename="Форма регистрации.doc")
    msg.add_attachment("line1,line2\n", subtype="csv", filename="participants.csv")

    mail = parse_mail(msg.as_bytes())

    assert mail.text == "Please find attached TSB Circular 45."
    assert mail.attachments == (
        Attachment("TSB-Circular-45.pdf", "application/pdf", len(pdf)),
        Attachment("Форма регистрации.doc", "application/msword", len("Форма регистрации".encode())),
        Attachment("participants.csv", "text/csv", len(b"line1,line2\n")),
    )
    assert "%PDF" not in mail.text and "JVBERi" not in mail.text and "line1" not in mail.text


def test_attachment_names_in_rfc2047_and_inline_parts_with_a_filename() -> None:
    outer = MIMEMultipart("mixed")
    outer["From"] = "tsb@itu.int"
    outer.attach(MIMEText("Body text.", "plain", "utf-8"))
    part = MIMEApplication(b"x" * 1234, "pdf")
    part["Content-Disposition"] = f'attachment; filename="{encoded_word("Циркуляр 45.pdf", "utf-8")}"'
    outer.attach(part)
    inline = MIMEText("Inline note that is a file.", "plain", "utf-8")
    inline["Content-Disposition"] = 'inline; filename="note.txt"'
    outer.attach(inline)

    mail = parse_mail(outer.as_bytes())

    assert mail.text == "Body text."
    assert [(a.filename, a.content_type) for a in mail.attachments] == [
        ("Циркуляр 45.pdf", "application/pdf"), ("note.txt", "text/plain")]
    assert mail.attachments[0].size == 1234


def test_lying_charset_is_read_as_windows1251_with_a_repair_note() -> None:
    raw = raw_message(
        {"From": "tsb@itu.int", "Content-Type": "text/plain; charset=us-ascii", "Content-Transfer-Encoding": "8bit"},
        RU_LETTER.encode("cp1251"),
    )

    mail = parse_mail(raw)

    assert "Предельный срок представления – 10 октября 2017 года." in mail.text
    assert mail.repairs == ("body part 1: declared charset 'us-ascii' did not decode; read as windows-1251",)


def test_koi8r_declared_as_utf8_and_unknown_charsets_are_read() -> None:
    lying = parse_mail(raw_message(
        {"From": "tsb@itu.int", "Content-Type": "text/plain; charset=utf-8", "Content-Transfer-Encoding": "8bit"},
        RU_LETTER_KOI8.encode("koi8-r")))
    unknown = parse_mail(raw_message(
        {"From": "tsb@itu.int", "Content-Type": 'text/plain; charset="x-unknown"', "Content-Transfer-Encoding": "8bit"},
        RU_LETTER.encode("utf-8")))
    latin1_lie = parse_mail(raw_message(
        {"From": "tsb@itu.int", "Content-Type": "text/plain; charset=iso-8859-1", "Content-Transfer-Encoding": "8bit"},
        RU_LETTER.encode("cp1251")))

    assert "Предельный срок представления - 10 октября 2017 года." in lying.text
    assert lying.repairs == ("body part 1: declared charset 'utf-8' did not decode; read as koi8-r",)
    assert "Предельный срок представления – 10 октября 2017 года." in unknown.text
    assert unknown.repairs == ("body part 1: unknown charset 'x-unknown'; read as utf-8",)
    assert "Предельный срок представления – 10 октября 2017 года." in latin1_lie.text
    assert latin1_lie.repairs == ("body part 1: declared charset 'iso-8859-1' looks wrong; read as windows-1251",)


def test_raw_8bit_and_badly_labelled_encoded_word_headers_are_read() -> None:
    raw = (b"From: \xc1\xfe\xf0\xee \xcc\xd1\xdd <tsb@itu.int>\r\n"
           + f"Subject: {encoded_word('Предельный срок', 'cp1251').replace('cp1251', 'x-unknown')}\r\n".encode()
           + b"\r\nText.\r\n")

    mail = parse_mail(raw)

    assert mail.sender == "Бюро МСЭ <tsb@itu.int>"
    assert mail.subject == "Предельный срок"
    assert "header From: unencoded 8-bit text; read as windows-1251" in mail.repairs
    assert "header Subject: unknown charset 'x-unknown'; read as windows-1251" in mail.repairs


def test_encoded_words_split_mid_character_and_latin1_words_with_windows_quotes() -> None:
    data = "Предельный срок".encode()
    first, second = base64.b64encode(data[:5]).decode(), base64.b64encode(data[5:]).decode()
    raw = (f"From: a@example.org\r\nSubject: =?utf-8?B?{first}?=\r\n =?utf-8?B?{second}?= – "
           "=?iso-8859-1?Q?=93Caf=E9=94?=\r\n\r\nx").encode()

    mail = parse_mail(raw)

    assert mail.subject == "Предельный срок – “Café”"
    assert mail.repairs == ()


def test_broken_base64_is_survived_with_a_repair_note() -> None:
    body = base64.b64encode(b"Contributions are due by 10 October 2017.")
    raw = raw_message(
        {"From": "tsb@itu.int", "Content-Type": "text/plain; charset=utf-8", "Content-Transfer-Encoding": "base64"},
        body[:-3] + b"!@#\r\n" + b"Q",  # garbage, and a length no base64 can have
    )

    mail = parse_mail(raw)

    assert mail.text.startswith("Contributions are due by 10 October")
    assert any("base64" in note for note in mail.repairs)


def test_mailman_footer_in_its_own_mime_part_is_removed() -> None:
    outer = MIMEMultipart("mixed")
    outer["From"] = "tsb@itu.int"
    outer["List-Id"] = "<FG-DLT.lists.itu.int>"
    outer.attach(MIMEText("The meeting is confirmed.\n\n-- \nTSB Secretariat\n", "plain", "utf-8"))
    outer.attach(MIMEText(MAILMAN3_FOOTER, "plain", "us-ascii"))

    mail = parse_mail(outer.as_bytes())

    assert mail.text == "The meeting is confirmed.\n\n--\nTSB Secretariat"  # the signature stays
    assert mail.list_id == "fg-dlt.lists.itu.int"


def test_underscores_that_are_not_a_list_footer_stay() -> None:
    text = "Please fill in the form:\n\nName: ____________\n\n______________________________\nSignature and date\n"
    msg = EmailMessage()
    msg["From"] = "tsb@itu.int"
    msg.set_content(text)

    assert parse_mail(msg.as_bytes()).text == text.strip()


def test_reply_keeps_the_answer_and_the_thread_but_not_the_quote() -> None:
    msg = EmailMessage()
    msg["From"] = '"Rapporteur, Q4/17" <rapporteur@example.org>'
    msg["Subject"] = "Re: TSB Circular 45"
    msg["In-Reply-To"] = "<circular-45@itu.int>"
    msg.set_content(
        "Thank you, the Rapporteur group will send two contributions.\n\n"
        "On Mon, 2 Oct 2017 at 10:15, TSB <tsb@itu.int>\nwrote:\n"
        "> Dear colleagues,\n>\n> Contributions are due by 10 October 2017.\n"
        "> _______________________________________________\n> fg-dlt mailing list\n"
        + MAILMAN2_FOOTER)

    mail = parse_mail(b"References: <root@itu.int>\r\n <circular-45@itu.int>\r\n\t<root@itu.int>\r\n" + msg.as_bytes())

    assert mail.text == "Thank you, the Rapporteur group will send two contributions."
    assert mail.sender == "Rapporteur, Q4/17 <rapporteur@example.org>"
    assert mail.in_reply_to == "circular-45@itu.int"
    assert mail.references == ("root@itu.int", "circular-45@itu.int")
    assert mail.thread_root == "root@itu.int"


@pytest.mark.parametrize(
    "reply",
    [
        "Le lun. 2 oct. 2017 à 10:15, TSB <tsb@itu.int> a écrit :\n> Madame, Monsieur,\n> Le délai est fixé.",
        "El lun., 2 oct. 2017 a las 10:15, TSB (<tsb@itu.int>) escribió:\n\n> Estimados señores:\n> El plazo vence.",
        "02.10.2017 10:15, Бюро МСЭ пишет:\n> Уважаемые коллеги!\n> Предельный срок – 10 октября.",
        "-----Original Message-----\nFrom: TSB <tsb@itu.int>\nSent: Monday, October 2, 2017 10:15\n"
        "Subject: Circular 45\n\nDear colleagues, the deadline is 10 October 2017.",
        "-----Исходное сообщение-----\nОт: Бюро МСЭ\nОтправлено: 2 октября 2017 г.\n\nПредельный срок.",
        "________________________________\nDe : TSB <tsb@itu.int>\nEnvoyé : lundi 2 octobre 2017\n\nLe délai.",
    ],
)
def test_quoted_reply_headers_in_several_languages_are_removed(reply: str) -> None:
    msg = EmailMessage()
    msg["From"] = "delegate@example.org"
    msg.set_content("Noted, thank you.\n\n" + reply + "\n")

    assert parse_mail(msg.as_bytes()).text == "Noted, thank you."


def test_forwarded_circular_keeps_the_forwarded_text() -> None:
    msg = EmailMessage()
    msg["From"] = "coordinator@example.org"
    msg["Subject"] = "Fwd: TSB Circular 45"
    msg.set_content("FYI.\n\n-----Original Message-----\nFrom: TSB <tsb@itu.int>\nSent: Monday\n\n"
                    "Contributions are due by 10 October 2017.\n")

    assert "Contributions are due by 10 October 2017." in parse_mail(msg.as_bytes()).text


def test_a_message_that_is_only_a_quote_is_kept() -> None:
    msg = EmailMessage()
    msg["From"] = "delegate@example.org"
    msg.set_content("> Contributions are due by 10 October 2017.\n")

    assert parse_mail(msg.as_bytes()).text == "> Contributions are due by 10 October 2017."


def test_french_circular_in_iso_8859_1() -> None:
    text = ("Madame, Monsieur,\n\n"
            "J'ai l'honneur de vous informer que la réunion du Groupe spécialisé se tiendra à Genève.\n"
            "La date limite de soumission des contributions est fixée au 10 octobre 2017.\n\n"
            "Veuillez agréer, Madame, Monsieur, l'assurance de ma considération distinguée.\n")
    msg = MIMEText(text, "plain", "iso-8859-1")
    name = encoded_word("Bureau de la normalisation des télécommunications", "iso-8859-1", "Q")
    msg["From"] = f"{name} <tsb@itu.int>"
    msg["Subject"] = encoded_word("Réunion du Groupe spécialisé – délai", "utf-8")

    mail = parse_mail(msg.as_bytes())

    assert mail.subject == "Réunion du Groupe spécialisé – délai"
    assert mail.sender == "Bureau de la normalisation des télécommunications <tsb@itu.int>"
    assert mail.text == text.strip()
    assert mail.first_paragraph == (
        "J'ai l'honneur de vous informer que la réunion du Groupe spécialisé se tiendra à Genève. "
        "La date limite de soumission des contributions est fixée au 10 octobre 2017.")
    assert mail.repairs == ()


def test_spanish_circular_in_iso_8859_1_8bit() -> None:
    text = ("Estimados señores:\n\n"
            "Tengo el honor de invitarles a la reunión que se celebrará en Ginebra. El plazo para la "
            "presentación de contribuciones vence el 10 de octubre de 2017.\n\nAtentamente,\nDirector\n")
    raw = raw_message(
        {"From": "TSB <tsb@itu.int>", "Subject": "=?ISO-8859-1?Q?Reuni=F3n_del_Grupo?=",
         "Content-Type": "text/plain; charset=ISO-8859-1", "Content-Transfer-Encoding": "8bit"},
        text.encode("latin-1"))

    mail = parse_mail(raw)

    assert mail.subject == "Reunión del Grupo"
    assert mail.text == text.strip()
    assert mail.first_paragraph.startswith("Tengo el honor de invitarles a la reunión")
    assert mail.repairs == ()


def test_whitespace_is_normalised_and_flowed_text_joined() -> None:
    flowed = raw_message(
        {"From": "a@example.org", "Content-Type": "text/plain; charset=utf-8; format=flowed"},
        b"The meeting will take place \r\nin Geneva on 10 October.  \r\n\r\n\r\n\r\n"
        b"Second\tparagraph   with   gaps.\xc2\xa0\r\n\r\n-- \r\nSecretariat\r\n")

    mail = parse_mail(flowed)

    assert mail.text == ("The meeting will take place in Geneva on 10 October.\n\n"
                         "Second paragraph with gaps.\n\n--\nSecretariat")


def test_first_paragraph_is_cut_at_a_word_boundary() -> None:
    msg = EmailMessage()
    msg["From"] = "a@example.org"
    msg.set_content("Dear All,\n\n" + "deadline " * 100)

    first = parse_mail(msg.as_bytes()).first_paragraph

    assert len(first) <= 600 and first.endswith("deadline…")


def test_dates_without_zone_and_unreadable_dates() -> None:
    no_zone = parse_mail(b"From: a@example.org\r\nDate: Mon, 2 Oct 2017 10:15:00 -0000\r\n\r\nx")
    garbage = parse_mail(b"From: a@example.org\r\nDate: next Tuesday\r\n\r\nx")

    assert no_zone.date == datetime(2017, 10, 2, 10, 15, tzinfo=UTC) and no_zone.date.tzinfo is not None
    assert garbage.date is None
    assert garbage.repairs == ("header Date: unreadable date 'next Tuesday'",)
    tz = parse_mail(b"From: a@example.org\r\nDate: 2 Oct 2017 10:15 -0500\r\n\r\nx").date
    assert tz == datetime(2017, 10, 2, 10, 15, tzinfo=timezone(timedelta(hours=-5)))


def test_mime_defects_are_noted_not_raised() -> None:
    raw = (b"From: tsb@itu.int\r\nContent-Type: multipart/mixed; boundary=XYZ\r\n\r\n"
           b"--XYZ\r\nContent-Type: text/plain\r\n\r\nThe text.\r\n")  # no closing boundary

    mail = parse_mail(raw)

    assert mail.text == "The text."
    assert mail.repairs == ("message: MIME closing boundary missing",)


def test_a_line_that_is_not_a_header_ends_the_headers_with_a_note() -> None:
    mail = parse_mail(b"From: a@example.org\r\nThe text starts without a blank line.\r\n")

    assert mail.text == "The text starts without a blank line."
    assert mail.repairs == ("message: no blank line between the headers and the body",)


def test_forwarded_message_is_listed_as_an_attachment() -> None:
    inner = EmailMessage()
    inner["From"] = "tsb@itu.int"
    inner["Subject"] = "TSB Circular 45"
    inner.set_content("Contributions are due by 10 October 2017.")
    outer = EmailMessage()
    outer["From"] = "coordinator@example.org"
    outer.set_content("See the circular attached.")
    outer.add_attachment(inner)

    mail = parse_mail(outer.as_bytes())

    assert mail.text == "See the circular attached."
    assert [(a.filename, a.content_type) for a in mail.attachments] == [("TSB Circular 45.eml", "message/rfc822")]
    assert mail.attachments[0].size > 0


def test_hostile_sizes_are_read_in_linear_time() -> None:
    started = time.perf_counter()
    html = parse_mail(b"From: a@example.org\r\nContent-Type: text/html\r\n\r\n" + b'<a href="x <a ' * 100_000)
    subject = parse_mail(b"From: a@example.org\r\nSubject: " + b"=?koi8-r?B?8NLJ18XU?= " * 20_000 + b"\r\n\r\nx")
    senders = parse_mail(b"From: " + b"a@example.org, " * 50_000 + b"\r\n\r\nx")
    quotes = parse_mail(b"From: a@example.org\r\n\r\n" + b"Answer.\n> quoted -- line\n" * 100_000)

    assert time.perf_counter() - started < 20  # quadratic behaviour would take minutes
    assert html.text.startswith('<a href="x <a')
    assert subject.repairs == ("header Subject: longer than 4000 characters; the rest ignored",)
    assert senders.sender_address == "a@example.org"
    assert quotes.text == "\n".join(["Answer."] * 100_000)


def test_bytes_like_inputs_are_accepted() -> None:
    raw = b"From: a@example.org\r\n\r\nHello."

    assert parse_mail(bytearray(raw)).text == parse_mail(memoryview(raw)).text == "Hello."


def test_sender_without_address_and_message_without_from() -> None:
    no_address = parse_mail(b"From: ITU Secretariat\r\n\r\nHello.")
    no_from = parse_mail(b"Subject: Notice\r\n\r\nHello.")

    assert (no_address.sender, no_address.sender_address) == ('"ITU Secretariat"', "")
    assert (no_from.sender, no_from.sender_address, no_from.text) == ("", "", "Hello.")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty"),
        (b"  \r\n\r\n ", "empty"),
        ("From: a@example.org\r\n\r\nHello.", "expected bytes, got str"),
        (None, "expected bytes, got NoneType"),
        (b"Hello there,\nthis is not an e-mail.\n", "no header block"),
        (bytes(range(256)) * 3, "no header block"),
        (b"\r\nFrom: a@example.org\r\n\r\nbody", "no header block"),
        (b"Subject: nothing else\r\n\r\n", "neither a sender"),
    ],
)
def test_unreadable_input_raises_malformed_mail_with_a_reason(raw: object, reason: str) -> None:
    with pytest.raises(MalformedMail) as caught:
        parse_mail(raw)  # type: ignore[arg-type]

    assert reason in caught.value.reason
    assert str(caught.value) == caught.value.reason


def test_oversize_message_names_its_size_and_the_cap() -> None:
    raw = b"From: a@example.org\r\n\r\n" + b"x" * 2000

    with pytest.raises(MalformedMail) as caught:
        parse_mail(raw, max_bytes=1000)

    assert str(len(raw)) in caught.value.reason and "1000" in caught.value.reason
    assert parse_mail(raw, max_bytes=len(raw)).text == "x" * 2000


def _samples() -> list[bytes]:
    msg = EmailMessage()
    msg["From"] = f"{encoded_word('Бюро МСЭ', 'koi8-r')} <tsb@itu.int>"
    msg["Subject"] = "Circular"
    msg["References"] = "<a@b> <c@d>"
    msg.set_content(RU_LETTER)
    msg.add_alternative(HTML_ONLY, subtype="html")
    msg.add_attachment(b"%PDF" * 300, maintype="application", subtype="pdf", filename="c.pdf")
    return [
        msg.as_bytes(),
        raw_message({"From": "tsb@itu.int", "Content-Type": "text/plain; charset=koi8-r",
                     "Content-Transfer-Encoding": "quoted-printable"},
                    quopri.encodestring(RU_LETTER_KOI8.encode("koi8-r"))),
        raw_message({"From": "tsb@itu.int", "Content-Type": "text/html; charset=utf-8",
                     "Content-Transfer-Encoding": "base64"}, base64.encodebytes(HTML_ONLY.encode())),
    ]


def test_fuzz_only_parsed_mail_or_malformed_mail_comes_back() -> None:
    rng = random.Random(20171010)
    samples = _samples()
    specials = [b"\r\n", b"\n\n", b"--", b"=?", b"?=", b":", b"<", b">", b"=", b"\x00", b"\xff", b"boundary=",
                b"Content-Type: multipart/mixed; boundary=\"\"\r\n", b"charset=x-bad\r\n", b"<![CDATA[", b"<!x[",
                b"Content-Transfer-Encoding: base64\r\n", b"=?utf-8?b?!!!?=", b"From: <>,,@@\r\n"]
    inputs: list[bytes] = []
    for i in range(200):
        kind = i % 4
        if kind == 0:
            data = rng.randbytes(rng.randrange(1, 600))
        elif kind == 1:
            sample = rng.choice(samples)
            data = sample[: rng.randrange(1, len(sample))]
        elif kind == 2:
            data = bytearray(rng.choice(samples))
            for _ in range(rng.randrange(1, 40)):
                pos = rng.randrange(len(data))
                data[pos:pos + rng.randrange(0, 8)] = rng.choice(specials) if rng.random() < 0.5 else rng.randbytes(3)
            data = bytes(data)
        else:
            data = b"From: a@b.c\r\n" + b"".join(rng.choice(specials) + rng.randbytes(rng.randrange(0, 5))
                                                for _ in range(rng.randrange(1, 60)))
        inputs.append(data)

    parsed = malformed = 0
    for data in inputs:
        try:
            mail = parse_mail(data)
        except MalformedMail as exc:
            assert exc.reason
            malformed += 1
            continue
        assert isinstance(mail, ParsedMail)
        # Whatever came back can be stored and sent: no lone surrogates from undecodable bytes.
        for value in (mail.subject, mail.sender, mail.text, mail.first_paragraph, mail.message_id,
                      *mail.references, *mail.repairs, *(a.filename for a in mail.attachments)):
            value.encode("utf-8")
        assert mail.date is None or mail.date.tzinfo is not None
        parsed += 1
    assert parsed and malformed
