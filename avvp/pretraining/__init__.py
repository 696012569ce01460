"""Self-supervised audio-visual grounding pretraining (paper 002): ground-truth graphs, later the models."""
