"""Hand-made one-page PDFs with exactly the content stream a test needs (standard Type 1 fonts, no
embedding): operators reportlab never writes, or a stream no producer would, such as a Flate bomb."""

from __future__ import annotations

import zlib
from collections.abc import Iterable

FONTS = {"F1": "Helvetica", "F2": "Helvetica-Bold"}


def one_page_pdf(content: bytes | Iterable[bytes], *, flate: bool = False) -> bytes:
    """A valid one-page PDF (US Letter) whose page draws `content`; `content` may be an iterable of
    chunks, compressed as they come when `flate` is set (so a huge stream never sits in memory)."""
    chunks = [content] if isinstance(content, bytes) else content
    if flate:
        z = zlib.compressobj(9)
        stream = b"".join(z.compress(c) for c in chunks) + z.flush()
        stream_dict = f"<< /Length {len(stream)} /Filter /FlateDecode >>".encode()
    else:
        stream = b"".join(chunks)
        stream_dict = f"<< /Length {len(stream)} >>".encode()
    fonts = " ".join(
        f"/{key} << /Type /Font /Subtype /Type1 /BaseFont /{name} /Encoding /WinAnsiEncoding >>"
        for key, name in FONTS.items()
    )
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        f"/Resources << /Font << {fonts} >> >> >>".encode(),
        stream_dict + b"\nstream\n" + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)
