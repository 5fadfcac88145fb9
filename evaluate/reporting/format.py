"""Writing a report once and getting Markdown, self-contained HTML and W&B media from it.

A report is a list of blocks (``Heading``, ``Text``, ``Table``, ``Image``, ``Audio``);
``render_markdown`` links the PNG / WAV files beside the Markdown, ``render_html`` embeds
them as data URIs so the page can be mailed or attached, and both agree by construction.
Every family's report (``evaluate.report``, ``evaluate.heart.report``,
``evaluate.emotion.report``) is written through this module.
"""

from __future__ import annotations

import base64
import html
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = [
    "CHECK_SCRIPT",
    "CSS",
    "Audio",
    "Heading",
    "Image",
    "Table",
    "Text",
    "data_uri",
    "fmt",
    "html_table",
    "log_blocks_to_wandb",
    "md_inline",
    "md_table",
    "render_html",
    "render_markdown",
    "save_figure",
    "write_pages",
]


def fmt(value: float, ci: float | None = None) -> str:
    """A number (and its 95% half-width) with three decimals, scientific when tiny."""
    digits = 3 if abs(value) < 100 else 0
    text = f"{value:.{digits}f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
    if ci is None:
        return text
    ci = 0.0 if abs(ci) < 1e-12 else ci  # rounding noise of a constant, not a spread
    ci_text = f"{ci:.{digits}f}" if abs(ci) >= 1e-3 or ci == 0 else f"{ci:.1e}"
    return f"{text} ± {ci_text}"


def save_figure(fig: Figure, path: Path) -> Path:
    """Save a pyplot-free ``Figure`` (thread-safe, no global state) as PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=100)
    return path


def md_table(table: list[list[str]]) -> str:
    header, *rows = table
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def html_table(table: list[list[str]]) -> str:
    header, *rows = table
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(text: str) -> str:
    """A table cell as HTML: ``**best**`` in bold, a whole ``*reference*`` row label in
    italics."""
    if len(text) > 2 and text[0] == text[-1] == "*" and text[1] != "*":
        return f"<i>{md_inline(text[1:-1])}</i>"
    return md_inline(text)


def md_inline(text: str) -> str:
    """The little Markdown reports use (**bold**, `code`) as HTML."""
    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def data_uri(path: Path) -> str:
    mime = {"png": "image/png", "wav": "audio/wav"}[path.suffix.lstrip(".").lower()]
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


# ----------------------------------------------------------------------------- blocks


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Text:
    """A paragraph, or a bullet list when ``bullets``."""

    text: str | list[str]
    bullets: bool = False


@dataclass
class Table:
    rows: list[list[str]]  # header first
    caption: str = ""


@dataclass
class Image:
    path: Path
    alt: str


@dataclass
class Audio:
    """Labelled players, one per (label, wav path)."""

    items: list[tuple[str, Path]]


Block = Heading | Text | Table | Image | Audio


def render_markdown(blocks: list[Block], out: Path) -> str:
    """Markdown with files linked relative to ``out`` (the folder the .md is written to)."""

    def rel(p: Path) -> str:
        try:
            return Path(p).resolve().relative_to(out.resolve()).as_posix()
        except ValueError:
            return Path(p).as_posix()

    md: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            md += ["#" * b.level + " " + b.text, ""]
        elif isinstance(b, Text):
            lines = b.text if isinstance(b.text, list) else [b.text]
            md += [f"- {t}" for t in lines] if b.bullets else [" ".join(lines)]
            md.append("")
        elif isinstance(b, Table):
            md += ([b.caption, ""] if b.caption else []) + [md_table(b.rows), ""]
        elif isinstance(b, Image):
            md += [f"![{b.alt}]({rel(b.path)})", ""]
        elif isinstance(b, Audio):
            md += [f"- [{label}]({rel(path)})" for label, path in b.items] + [""]
    return "\n".join(md) + "\n"


def render_html(blocks: list[Block], title: str) -> str:
    """One self-contained page: images and audio embedded as data URIs."""
    h = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        f"<style>{CSS}</style></head><body>",
    ]
    for b in blocks:
        if isinstance(b, Heading):
            h.append(f"<h{b.level}>{md_inline(b.text)}</h{b.level}>")
        elif isinstance(b, Text):
            if b.bullets:
                items = b.text if isinstance(b.text, list) else [b.text]
                h.append("<ul>" + "".join(f"<li>{md_inline(t)}</li>" for t in items) + "</ul>")
            else:
                text = " ".join(b.text) if isinstance(b.text, list) else b.text
                h.append(f"<p>{md_inline(text)}</p>")
        elif isinstance(b, Table):
            if b.caption:
                h.append(f"<p>{md_inline(b.caption)}</p>")
            h.append(html_table(b.rows))
        elif isinstance(b, Image):
            h.append(
                f"<img alt='{html.escape(b.alt)}' style='max-width:100%' "
                f"src='{data_uri(Path(b.path))}'>"
            )
        elif isinstance(b, Audio):
            h.append("<div class='audio'>")
            for label, path in b.items:
                h.append(
                    f"<span>{html.escape(label)}</span>"
                    f"<audio controls preload='auto' src='{data_uri(Path(path))}'></audio>"
                )
            h.append("</div>")
    h += [CHECK_SCRIPT, "</body></html>"]
    return "\n".join(h)


def write_pages(blocks: list[Block], out: Path, title: str) -> dict[str, Path]:
    """``report.md`` and ``report.html`` in ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    md_path, html_path = out / "report.md", out / "report.html"
    md_path.write_text(render_markdown(blocks, out))
    html_path.write_text(render_html(blocks, title))
    return {"md": md_path, "html": html_path}


def log_blocks_to_wandb(blocks: list[Block], prefix: str, sample_rate: int) -> None:
    """Tables, images and audio of a report into the active W&B run, if there is one."""
    wandb = sys.modules.get("wandb")  # an active run means wandb is already imported
    if wandb is None or getattr(wandb, "run", None) is None:
        return
    payload: dict[str, Any] = {}
    for k, b in enumerate(blocks):
        if isinstance(b, Table):
            payload[f"{prefix}/table{k}"] = wandb.Table(columns=b.rows[0], data=b.rows[1:])
        elif isinstance(b, Image):
            payload[f"{prefix}/{Path(b.path).stem}"] = wandb.Image(str(b.path))
        elif isinstance(b, Audio):
            for label, path in b.items:
                payload[f"{prefix}/audio/{label}"] = wandb.Audio(str(path), sample_rate)
    wandb.log(payload)


CHECK_SCRIPT = """
<script>
// Marks on the body element how many images decoded and audio elements loaded (read by tests).
function reportMedia() {
  const imgs = [...document.images];
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  const auds = [...document.querySelectorAll('audio')];
  const aok = auds.filter(a => a.readyState >= 1 && a.duration > 0).length;
  document.body.dataset.imagesTotal = imgs.length;
  document.body.dataset.imagesLoaded = ok;
  document.body.dataset.audioTotal = auds.length;
  document.body.dataset.audioLoaded = aok;
}
document.querySelectorAll('audio').forEach(a => {
  a.addEventListener('loadedmetadata', reportMedia);
  a.addEventListener('error', reportMedia);
  a.load();
});
window.addEventListener('load', reportMedia);
</script>
"""

CSS = """
body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:8px}
.grid img{width:100%}
.audio{display:grid;grid-template-columns:220px 1fr;gap:4px;align-items:center}
"""
