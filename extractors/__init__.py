"""Feature extraction from raw video (ResNet152, R(2+1)D-18, VGGish; VALOR's CLIP and CLAP) into the HDF5
feature store."""
