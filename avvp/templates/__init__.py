"""The HTML templates of the parse pages and the report (jinja2, every value HTML-escaped), package data."""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("avvp", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(name: str, **context: Any) -> str:
    """Template ``name`` of this folder filled with ``context``; every value is escaped unless it is
    :class:`markupsafe.Markup`, and a name the template uses but ``context`` lacks is an error."""
    return _environment().get_template(name).render(**context)
