"""Live use: TDM masks as physical weighted detectors, and images that grow as
diffraction patterns arrive."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from .core.apply import physical_weights
from .core.checks import masks_stack
from .core.kernels import weighted_sums
from .signals import as_array, as_column_stats, refuse_overwriting_input

logger = logging.getLogger(__name__)


def export_weighted_detector(mask, stats, path) -> dict:
    """Write a mask as the physical detector that applies it to raw data (Eq 6).

    ``image = sum_j D_j w_j + offset`` with ``w = m / sigma`` (0 at constant pixels)
    and ``offset = -sum_j mu_j w_j``, so acquisition software that weights raw frames
    by ``w`` reproduces ``apply_mask(s, mask, normalized=True)``. LiberTEM's
    ``ApplyMasksUDF`` (offline, or on a live stream through LiberTEM-live) is one such
    software: see :mod:`tdm_widgets.libertem_udf` and the documentation page
    "Weighted detectors in LiberTEM and LiberTEM-live".

    Parameters
    ----------
    mask : array_like or Signal2D
        ``(det_y, det_x)`` or ``(k, det_y, det_x)``.
    stats : Signal2D
        Statistics of the data (:func:`tdm_widgets.column_stats`).
    path : str or Path
        Prefix: writes ``PATH.npy`` (float64), ``PATH.tif`` (float32) and
        ``PATH.json`` (offsets and provenance), the folder made if missing; a dot in
        the prefix is kept (``O_0-23.5mrad``), a final ``.npy``/``.tif``/``.json`` is
        taken as one of the set.

    Returns
    -------
    dict
        ``"weights"``: ndarray ``(k, det_y, det_x)`` float64 [1 / data unit];
        ``"offset"``: list of ``k`` float [image unit, dimensionless for Eq 6].

    Examples
    --------
    >>> import tempfile, pathlib
    >>> data = np.random.default_rng(0).poisson(9.0, (8, 6, 16, 16)).astype(np.uint16)
    >>> t = np.zeros((8, 6)); t[::4, ::3] = 1
    >>> mask = tw.pcc_mask(data, t, show_progressbar=False)
    >>> prefix = pathlib.Path(tempfile.mkdtemp()) / "tdm"
    >>> stats = tw.column_stats(data, show_progressbar=False)
    >>> det = tw.export_weighted_detector(mask, stats, prefix)
    >>> det["weights"].shape, sorted(f.name for f in prefix.parent.iterdir())
    ((1, 16, 16), ['tdm.json', 'tdm.npy', 'tdm.tif'])
    >>> image = (data * det["weights"][0]).sum((-2, -1)) + det["offset"][0]
    >>> bool(np.allclose(image, tw.apply_mask(data, mask, normalized=True,
    ...                                       show_progressbar=False).data))
    True
    """
    import tifffile

    path = Path(path)
    if path.suffix in (".npy", ".tif", ".json"):   # a file of the set named: its prefix
        path = path.with_suffix("")
    # appended, not with_suffix: "O_0-23.5mrad" keeps its ".5mrad"
    files = {e: path.with_name(path.name + e) for e in (".npy", ".tif", ".json")}
    refuse_overwriting_input(files.values(), mask, stats)
    path.parent.mkdir(parents=True, exist_ok=True)
    stats = as_column_stats(stats)
    m, _ = masks_stack(as_array(mask, "mask"), stats.mean.shape)
    w, off = physical_weights(m, stats)
    np.save(files[".npy"], w)
    tifffile.imwrite(files[".tif"], w.astype(np.float32))
    meta = {"offset": off.tolist(), "equation": "image = sum(D * w) + offset (Eq 6)",
            "n_positions_in_statistics": stats.n, "n_zero_variance": stats.n_zero_variance}
    if hasattr(mask, "metadata"):
        meta["mask_provenance"] = {k: v for k, v in mask.metadata.TDM.as_dictionary().items()
                                   if k in ("operation", "version", "created", "source")}
    files[".json"].write_text(json.dumps(meta, indent=1))
    logger.info("export_weighted_detector: %d weight image(s) %s to %s.npy/.tif/.json",
                w.shape[0], w.shape[1:], path)
    return {"weights": w, "offset": off.tolist()}


class LiveTDM:
    """TDM images computed while the scan is acquired.

    Memory holds the images and at most one chunk of frames (e.g. one scan row).

    Parameters
    ----------
    masks : array_like or Signal2D
        ``(det_y, det_x)`` or ``(k, det_y, det_x)`` weights applied to raw frames (for
        Eq 6 pass the ``weights`` of :func:`export_weighted_detector` and its
        ``offset``).
    scan_shape : tuple of int
        ``(scan_y, scan_x)``.
    offset : float or sequence of float
        Added to every image pixel.

    Attributes
    ----------
    images : ndarray
        ``(k, scan_y, scan_x)`` images so far [image unit]; NaN where not yet
        scanned.
    n_done : int
        Frames received.

    Examples
    --------
    >>> data = np.random.default_rng(0).poisson(9.0, (8, 6, 16, 16)).astype(np.uint16)
    >>> weights = np.ones((16, 16))                      # a plain BF-like sum
    >>> live = tw.LiveTDM(weights, (8, 6))
    >>> first_row = live.feed(data[0])                   # 6 frames: one scan row
    >>> int(np.isnan(first_row).sum())
    42
    >>> for image in live.consume(data[1:]):             # the other rows as they come
    ...     pass
    >>> bool(np.array_equal(image, data.sum((-2, -1))))
    True
    """

    def __init__(self, masks, scan_shape, offset=0.0):
        arr = as_array(masks, "masks")
        self._m, self._single = masks_stack(arr, arr.shape[-2:])
        self.scan_shape = tuple(scan_shape)
        k = self._m.shape[0]
        self._w = self._m.reshape(k, -1)
        self._offset = np.broadcast_to(np.asarray(offset, float), (k,)).copy()
        self.images = np.full((k,) + self.scan_shape, np.nan)
        self.n_done = 0

    def feed(self, frames) -> np.ndarray:
        """Add the next frames in scan order.

        Parameters
        ----------
        frames : array_like
            One ``(det_y, det_x)`` frame or a chunk ``(n, det_y, det_x)`` (e.g. a scan
            row), finite values.

        Returns
        -------
        ndarray
            The images so far, ``(scan_y, scan_x)`` for one mask or ``(k, scan_y,
            scan_x)`` [image unit]; NaN where not yet scanned. A view: copy it to
            keep it.

        Examples
        --------
        >>> live = tw.LiveTDM(np.ones((4, 4)), (2, 3))
        >>> live.feed(np.ones((3, 4, 4))).tolist()
        [[16.0, 16.0, 16.0], [nan, nan, nan]]
        """
        f = np.asarray(frames)
        if f.ndim == 2:
            f = f[None]
        if f.shape[1:] != self._m.shape[1:]:
            raise ValueError(f"frames must be {self._m.shape[1:]} detector images; got "
                             f"{f.shape[1:]}")
        n = f.shape[0]
        p = self.scan_shape[0] * self.scan_shape[1]
        if self.n_done + n > p:
            raise ValueError(f"more frames than the scan holds ({p})")
        vals = weighted_sums(f.reshape(n, -1), self._w) + self._offset
        if not np.isfinite(vals).all():
            raise ValueError(f"frames {self.n_done}..{self.n_done + n - 1} contain NaN or "
                             "inf values (NaN marks 'not yet scanned' in the images); "
                             "replace them before feeding")
        flat = self.images.reshape(self._m.shape[0], -1)
        flat[:, self.n_done:self.n_done + n] = vals.T
        self.n_done += n
        return self.images[0] if self._single else self.images

    def consume(self, chunks):
        """Feed an iterator of frames or chunks, yielding the growing images.

        Parameters
        ----------
        chunks : iterable of array_like
            Frames ``(det_y, det_x)`` or chunks ``(n, det_y, det_x)`` in scan order,
            e.g. scan rows as a camera delivers them.

        Yields
        ------
        ndarray
            A copy of the images after each chunk [image unit], as :meth:`feed`
            returns them.

        Examples
        --------
        >>> live = tw.LiveTDM(np.ones((4, 4)), (2, 3))
        >>> [int(np.isnan(im).sum()) for im in live.consume(np.ones((2, 3, 4, 4)))]
        [3, 0]
        """
        for c in chunks:
            yield self.feed(c).copy()
