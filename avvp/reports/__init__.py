"""The run report: scores beside the papers' numbers, figures, coverage and feature identity (Markdown + HTML)."""
