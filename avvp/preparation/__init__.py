"""Preparing a dataset for training: synthetic demo clips, downloads, shard lists, splits restricted to the
clips with features, feature standardisation (the workflow stages before training)."""
