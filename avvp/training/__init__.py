"""Training, prediction and diagnostics of parsing models."""
