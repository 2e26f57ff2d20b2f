"""Every platform's rendering escapes agenda and user text and stays within the platform's limits."""

from __future__ import annotations

import html
from html.parser import HTMLParser

import nh3
import pytest

from floorbridge.adapters.discord import render as discord_render
from floorbridge.adapters.matrix import render as matrix_render
from floorbridge.adapters.telegram import render as telegram_render
from floorbridge.core.richtext import Button, b, code, i, link, message, p, ul

HOSTILE = '<b>x</b> & <script>alert(1)</script> @everyone @here <@123456789012345678> **bold** _it_ `tick` [a](b) #h'
HOSTILE_MESSAGE = message(
    p(b(HOSTILE), " ", i("it"), " ", code("a`b<c>")),
    ul([[link('https://example.org/?a=1&b="2"', HOSTILE)], ["plain"]]),
    buttons=[[Button("Today", "today"), Button("x" * 200, "y" * 200), Button("Web", url="https://example.org")]],
)

# The Matrix client-server spec's allow-list for org.matrix.custom.html (the tags we may use).
MATRIX_TAGS = {"font", "del", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "p", "a", "ul", "ol", "sup", "sub",
               "li", "b", "i", "u", "strong", "em", "strike", "code", "hr", "br", "div", "table", "thead", "tbody",
               "tr", "th", "td", "caption", "pre", "span", "img", "details", "summary"}


class _Tags(HTMLParser):
    ALLOWED = frozenset({"b", "i", "code", "a", "strong", "em"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []
        self.bad: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.ALLOWED:
            self.bad.append(tag)
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack.pop() == tag, "tags must nest"

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_telegram_html_is_escaped_and_balanced() -> None:
    [out] = telegram_render.render(HOSTILE_MESSAGE)
    parser = _Tags()
    parser.feed(out.text)
    assert parser.bad == [] and parser.stack == []
    visible = "".join(parser.text)
    assert HOSTILE in visible  # every character shows as typed
    assert "<script>" not in out.text and "&lt;script&gt;" in out.text
    assert 'href="https://example.org/?a=1&amp;b=&quot;2&quot;"' in out.text
    # the 200-character command cannot be a callback (64 bytes at most): it is dropped, not cut
    assert out.buttons == [[{"text": "Today", "callback_data": "today"}, {"text": "Web", "url": "https://example.org"}]]


def test_telegram_splits_long_messages_under_4096_and_keeps_the_keyboard_last() -> None:
    items = [[f"item {n} ", b("<&>" * 20)] for n in range(400)]
    parts = telegram_render.render(message(p("head"), ul(items), buttons=[[Button("Today", "today")]]))
    assert len(parts) > 1
    assert all(len(x.text) <= 4096 for x in parts)
    assert all(x.buttons == [] for x in parts[:-1]) and parts[-1].buttons
    joined = "\n".join(html.unescape(x.text) for x in parts)
    assert all(f"item {n} " in joined for n in range(400))


def test_telegram_cuts_a_single_overlong_paragraph_at_spaces() -> None:
    words = " ".join(f"w{n}&" for n in range(3000))
    parts = telegram_render.render(message(p(words)))
    assert len(parts) >= 3 and all(len(x.text) <= 4096 for x in parts)
    assert " ".join(html.unescape(x.text) for x in parts).split() == words.split()


def test_discord_markdown_and_mentions_are_neutralised() -> None:
    [out] = discord_render.render(HOSTILE_MESSAGE)
    assert "@everyone" not in out.content and "@\u200beveryone" in out.content
    assert "@here" not in out.content and "<@123456789012345678>" not in out.content
    assert "\\*\\*bold\\*\\*" in out.content and "\\_it\\_" in out.content and "\\[a\\](b)" in out.content
    assert "`a" in out.content and "`" not in out.content.split("`a", 1)[1].split("`", 1)[0]
    assert out.buttons == [[{"label": "Today", "custom_id": "fb:today"}, {"label": "Web", "url": "https://example.org"}]]


def test_discord_long_messages_become_embeds_within_the_limits() -> None:
    items = [[f"item {n} ", b("x" * 50)] for n in range(500)]
    parts = discord_render.render(message(p("head"), ul(items), buttons=[[Button("Today", "today")]]))
    assert len(parts) > 1
    for part in parts:
        assert len(part.content) <= 2000
        assert len(part.embeds) <= 10
        assert all(len(e["description"]) <= 4096 for e in part.embeds)
        assert sum(len(e["description"]) for e in part.embeds) <= 6000
    assert parts[-1].buttons and all(not x.buttons for x in parts[:-1])
    text = "".join(e["description"] for x in parts for e in x.embeds)
    assert all(f"item {n} " in text for n in range(500))


def test_matrix_formatted_body_survives_the_specs_sanitiser_unchanged() -> None:
    [content] = matrix_render.render(HOSTILE_MESSAGE)
    formatted = content["formatted_body"]
    cleaned = nh3.clean(formatted, tags=MATRIX_TAGS, attributes={"a": {"href"}}, url_schemes={"https", "http"},
                        link_rel=None)
    assert cleaned == formatted
    assert "<script>" not in formatted
    assert HOSTILE in content["body"] and "!today" in content["body"]


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,<script>x</script>"])
def test_matrix_drops_links_with_unsafe_schemes(url: str) -> None:
    [content] = matrix_render.render(message(p(link(url, "click"))))
    assert "href" not in content["formatted_body"] and "click" in content["formatted_body"]
