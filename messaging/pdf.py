"""A minimal, valid PDF (1.4) of plain text lines: what a receipt needs, and nothing more.

Written by hand rather than with a PDF library: a receipt is a title and a list of "label: value"
lines, which takes one font (the standard Helvetica, never embedded), one uncompressed content
stream per page and a cross-reference table — ~80 lines here, against a dependency (reportlab,
fpdf2 + Pillow) of tens of thousands. Text is encoded in WinAnsiEncoding (cp1252), the encoding
the standard fonts carry: Latin scripts print; a character outside it prints as "?" (a full
Unicode receipt would need an embedded TrueType font, and then a library would be worth it).
"""
from __future__ import annotations

import textwrap

PAGE_WIDTH, PAGE_HEIGHT = 595, 842  # A4 in points
MARGIN = 56
TITLE_SIZE, BODY_SIZE, LEADING = 16, 11, 15
WRAP_AT = 88  # characters per line at 11 pt Helvetica inside the margins (average glyph width)
LINES_PER_PAGE = (PAGE_HEIGHT - 2 * MARGIN - 2 * LEADING) // LEADING


def _text(value: str) -> bytes:
    """A PDF literal string: cp1252, control characters dropped, \\ ( ) escaped."""
    clean = "".join(ch for ch in value if ch >= " " or ch == "\t").replace("\t", " ")
    raw = clean.encode("cp1252", errors="replace")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def _wrap(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        out.extend(textwrap.wrap(line, WRAP_AT, break_long_words=True, replace_whitespace=True) or [""])
    return out


def render(title: str, lines: list[str]) -> bytes:
    """The document's bytes: ``title`` on top of the first page, then ``lines``, as many pages as
    they need."""
    body = _wrap(lines)
    pages = [body[i:i + LINES_PER_PAGE] for i in range(0, len(body), LINES_PER_PAGE)] or [[]]
    # Objects: 1 catalog, 2 page tree, 3 font, then a (page, contents) pair per page.
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for number, page_lines in enumerate(pages):
        top = PAGE_HEIGHT - MARGIN
        ops = [b"BT"]
        if number == 0:
            ops += [f"/F1 {TITLE_SIZE} Tf {MARGIN} {top} Td".encode(), _text(title) + b" Tj",
                    f"0 -{2 * LEADING} Td".encode()]
        else:
            ops.append(f"{MARGIN} {top} Td".encode())
        ops.append(f"/F1 {BODY_SIZE} Tf {LEADING} TL".encode())
        for line in page_lines:
            ops.append(_text(line) + b" Tj T*")
        ops.append(b"ET")
        stream = b"\n".join(ops)
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_WIDTH} {PAGE_HEIGHT}] "
                       f"/Resources << /Font << /F1 3 0 R >> >> /Contents {5 + 2 * number} 0 R >>".encode())
        objects.append(f"<< /Length {len(stream)} >>\nstream\n".encode() + stream + b"\nendstream")
    # A binary comment on line 2 tells transfer tools the file is binary (PDF spec 7.5.2).
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + obj + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n".encode() + b"0000000000 65535 f \n"
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)
