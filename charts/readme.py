"""A chart's README as HTML: Markdown (CommonMark and GitHub tables), sanitised.

A README is someone else's text, so what it renders to goes through an allow-list
sanitiser (nh3, the Ammonia library): only formatting tags, links with http(s) or mailto
URLs, no attributes that run script or style. Wharf runs air-gapped and its pages load
nothing from elsewhere, so no image is ever shown: each becomes a link to its URL (or,
inside a link, that link's text). Links stay links, marked ``noopener noreferrer
nofollow``. The strict Content-Security-Policy stays as it is: nothing here needs an
inline style or script.

No Django and no network here.
"""

from __future__ import annotations

import html
from html.parser import HTMLParser
from urllib.parse import urlsplit

import nh3
from markdown_it import MarkdownIt

__all__ = ["render_readme"]

LINK_REL = "noopener noreferrer nofollow"
URL_SCHEMES = {"http", "https", "mailto"}
TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl", "dt",
    "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "kbd", "li", "ol", "p", "pre", "q",
    "s", "samp", "span", "strike", "strong", "sub", "summary", "sup", "table", "tbody", "td",
    "tfoot", "th", "thead", "tr", "tt", "u", "ul", "var",
}  # fmt: skip
ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "code": {"class"},  # language-yaml, from a fenced code block
    "ol": {"start"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
}
# The script and style elements go with their content, not only their tags.
CONTENT_TAGS = {"script", "style"}

_markdown = MarkdownIt("commonmark", {"html": True}).enable("table")


def render_readme(text: str) -> str:
    """The README's HTML, safe to put in a page as it is."""
    text = text.removeprefix("\ufeff")
    rendered = _markdown.render(text)
    # First pass: the sanitiser's own HTML parser turns whatever the README wrote into
    # well-formed, allowed HTML, images still in; then images become links; then the
    # second pass checks the result again, images no longer allowed.
    with_images = nh3.clean(
        rendered,
        tags=TAGS | {"img"},
        clean_content_tags=CONTENT_TAGS,
        attributes={**ATTRIBUTES, "img": {"src", "alt", "title"}},
        url_schemes=URL_SCHEMES,
        link_rel=None,
    )
    return nh3.clean(
        _images_as_links(with_images),
        tags=TAGS,
        clean_content_tags=CONTENT_TAGS,
        attributes=ATTRIBUTES,
        allowed_classes={"a": {"readme-image"}},
        url_schemes=URL_SCHEMES,
        link_rel=LINK_REL,
    )


class _ImagesAsLinks(HTMLParser):
    """Writes the (already sanitised) HTML back out, each ``<img>`` as a link to its URL."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.link_depth = 0

    def handle_starttag(self, tag, attrs) -> None:
        if tag == "img":
            self.out.append(self._image(dict(attrs)))
            return
        if tag == "a":
            self.link_depth += 1
        self.out.append(f"<{tag}{_attributes(attrs)}>")

    def handle_startendtag(self, tag, attrs) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag) -> None:
        if tag == "a":
            self.link_depth = max(0, self.link_depth - 1)
        self.out.append(f"</{tag}>")

    def handle_data(self, data) -> None:
        self.out.append(html.escape(data, quote=False))

    def _image(self, attrs: dict[str, str | None]) -> str:
        src = attrs.get("src") or ""
        label = html.escape(f"Image: {attrs.get('alt') or attrs.get('title') or src}")
        if self.link_depth or urlsplit(src).scheme not in ("http", "https"):
            return label  # inside a link the link is enough; a relative path leads nowhere
        return f'<a href="{html.escape(src)}" class="readme-image">{label}</a>'


def _attributes(attrs) -> str:
    return "".join(
        f' {name}="{html.escape(value or "")}"' if value is not None else f" {name}"
        for name, value in attrs
    )


def _images_as_links(sanitised: str) -> str:
    parser = _ImagesAsLinks()
    parser.feed(sanitised)
    parser.close()
    return "".join(parser.out)
