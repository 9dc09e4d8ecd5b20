"""Tested building blocks shared by the U-Net salt-segmentation course notebooks.

Import what you need by name, for example ``from helpers.rle import rle_encode``.
"""

__version__ = "0.1.0"

NATIVE_SIZE = 101
"""Side of a TGS seismic section and its mask, in pixels."""
