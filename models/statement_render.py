"""Rendering a statement in the format asked for: `md`, `csv` or `html`."""

from collections.abc import Callable
from typing import Literal, get_args

from models.statement import Statement
from models.statement_html import render_html
from models.statement_text import render_csv, render_markdown

StatementFormat = Literal["md", "csv", "html"]
FORMATS: tuple[str, ...] = get_args(StatementFormat)

_RENDERERS: dict[str, Callable[[Statement], str]] = {
    "md": render_markdown,
    "csv": render_csv,
    "html": render_html,
}


def render_statement(statement: Statement, fmt: str) -> str:
    """The statement as text in `fmt`, one of `FORMATS`."""
    renderer = _RENDERERS.get(fmt)
    if renderer is None:
        msg = f"statement format {fmt!r} is unknown; choose one of {', '.join(FORMATS)}"
        raise ValueError(msg)
    return renderer(statement)
