"""The HTML templates: shipped as package data, every value escaped, a missing value an error."""

from __future__ import annotations

import tomllib
from importlib import resources

import jinja2
import pytest
from markupsafe import Markup
from workflow_helpers import REPO

from avvp.templates import render


def test_templates_are_package_data_of_the_wheel():
    names = {entry.name for entry in resources.files("avvp.templates").iterdir()}
    assert {"page.html.j2", "report.html.j2"} <= names
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["tool"]["setuptools"]["package-data"]["avvp.templates"] == ["*.j2"]
    assert any(dependency.startswith("jinja2") for dependency in project["project"]["dependencies"])


def test_values_are_escaped_unless_marked_safe():
    page = render("report.html.j2", run='<script>alert("x")</script>', body=Markup("<p>kept</p>"))
    assert "<title>AVVP report: &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;</title>" in page
    assert "<p>kept</p>" in page and "<script>" not in page


def test_a_value_the_template_needs_is_required():
    with pytest.raises(jinja2.UndefinedError):
        render("report.html.j2", body=Markup(""))
