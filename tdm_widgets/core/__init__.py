"""Pure numerics on numpy or dask arrays: no HyperSpy, no widgets, no I/O.

Arrays are 4D ``(scan_y, scan_x, det_y, det_x)``; templates are scan-shaped, masks are
detector-shaped. Every function takes numpy and dask arrays through the same kernels.
"""
