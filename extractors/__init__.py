"""Feature extraction from raw video (ResNet152, R(2+1)D-18, VGGish) and the HDF5 feature store."""
