"""Shared by the dashboard console tests: a screenshot that is checked for
content (decoded with zlib, no imaging library), and the page helpers."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from tests.e2e.test_dashboard import OUT, expect, ms


def connected(page) -> None:
    expect(page.get_by_test_id("connection-state")).to_have_attribute(
        "data-state", "connected", timeout=ms(15)
    )


def png_ink(path: Path) -> float:
    """The share of the image's filtered scanline bytes that are not zero: about 0 for a
    blank (one-colour) screenshot, well above 0.01 for a page with text and charts."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8 : pos + 8 + n]
        pos += 12 + n
    raw = zlib.decompress(idat)
    return sum(1 for b in raw[::7] if b) / max(1, len(raw[::7]))


def shot(page, name: str, *, full_page: bool = False, min_text: int = 200) -> Path:
    """Save test-output/<name>.png and check it is not blank: the page shows text and
    the image has ink."""
    OUT.mkdir(exist_ok=True)
    path = OUT / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    text = page.evaluate("document.body.innerText.trim().length")
    assert text >= min_text, f"{name}: only {text} characters of text on the page"
    ink = png_ink(path)
    assert ink > 0.01, f"{name}: the screenshot looks blank (ink {ink:.4f})"
    return path


def page_width(page) -> int:
    return int(page.evaluate("document.scrollingElement.scrollWidth"))
