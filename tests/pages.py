"""Reading the HTML pages creditwatch writes: a strict ``html.parser`` and what a page loads.

``html.parser`` forgives everything; :class:`StrictPage` records what a validator would
complain about (an end tag that closes nothing, elements left open, a duplicate id, a stray
declaration), and every reference that would make a browser fetch something.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

VOID = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
    "track", "wbr",
}  # fmt: skip
# SVG shapes written as <rect .../> arrive as start-and-end tags (handle_startendtag).
FETCHING_ATTRIBUTES = {"src", "href", "xlink:href", "srcset", "poster", "data", "action"}
_URL = re.compile(r"url\(\s*['\"]?([^'\")]+)", re.IGNORECASE)
_IMPORT = re.compile(r"@import", re.IGNORECASE)


class StrictPage(HTMLParser):
    """Parses a whole page; ``errors`` and ``fetches`` are empty for a clean, closed page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.fetches: list[str] = []
        self.tags: list[str] = []
        self.ids: set[str] = set()
        self.text: list[str] = []
        self._in_style = False
        self.doctype = False

    def handle_decl(self, decl: str) -> None:
        if decl.lower() == "doctype html" and not self.tags:
            self.doctype = True
        else:
            self.errors.append(f"unexpected declaration {decl!r}")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs)
        if tag not in VOID:
            self.stack.append(tag)
        self._in_style = tag == "style"

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False
        if tag in VOID:
            self.errors.append(f"end tag for the void element <{tag}>")
        elif not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes nothing open (open: {self.stack[-3:]})")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self._check_css(data)
        else:
            self.text.append(data)

    def close(self) -> None:
        super().close()
        if self.stack:
            self.errors.append(f"left open: {self.stack}")
        if not self.doctype:
            self.errors.append("no <!DOCTYPE html>")

    def _start(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "script":
            self.fetches.append("a <script> element")
        for name, given in attrs:
            value = given or ""
            if name == "id":
                if value in self.ids:
                    self.errors.append(f"duplicate id {value!r}")
                self.ids.add(value)
            if name in FETCHING_ATTRIBUTES and not value.startswith("#"):
                self.fetches.append(f"<{tag} {name}={value!r}>")
            if name == "style":
                self._check_css(value)
            if name.startswith("on"):
                self.fetches.append(f"<{tag} {name}=…> (an event handler)")

    def _check_css(self, css: str) -> None:
        self.fetches += [f"url({u})" for u in _URL.findall(css) if not u.startswith("#")]
        if _IMPORT.search(css):
            self.fetches.append("@import")


def parse_strictly(html: str) -> StrictPage:
    page = StrictPage()
    page.feed(html)
    page.close()
    return page
