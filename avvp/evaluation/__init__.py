"""The LLP evaluation protocol: segment- and event-level F1 for audio, visual and audio-visual events."""

METRIC_NAMES = ("audio", "visual", "audio_visual", "type", "event")
"""The five LLP F1 scores of a level (segment, event): audio, visual, audio-visual, Type@AV, Event@AV."""
