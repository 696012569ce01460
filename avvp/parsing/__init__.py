"""Parsing users' own videos: windows, timelines, pages (``avvp parse``)."""
