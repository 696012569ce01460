"""Teachers: pretrained image-text and audio-text models that label segments (VALOR's pseudo-labels)."""
