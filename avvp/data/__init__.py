"""LLP annotations: classes, label files, dense event tables."""
