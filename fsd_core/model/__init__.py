"""The network: SparseDNN and its on-disk format (network), Graph Challenge TSV files (tsv),
RadiX-Net networks and synthetic inputs (radixnet). Imports only numpy, scipy and errors."""
