"""The LLP evaluation protocol: segment- and event-level F1 for audio, visual and audio-visual events."""
