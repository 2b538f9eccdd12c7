"""TDM weighted detectors in LiberTEM and LiberTEM-live.

:func:`tdm_widgets.export_weighted_detector` writes a mask as the physical weighted
detector ``w = m / sigma`` with one offset per mask, so that Eq 6 becomes a plain
weighted sum of raw frames plus a constant::

    image = sum_j D_j w_j + offset

That weighted sum is exactly what LiberTEM's ``ApplyMasksUDF`` computes, on files and
(through LiberTEM-live) on detector streams. The helpers here read the exported files,
build the UDF (in float64, so that the result matches
``tw.apply_mask(s, mask, normalized=True)`` to round-off) and turn its result buffer
back into ``(k, scan_y, scan_x)`` images. LiberTEM is imported only when a UDF is made;
it is not a dependency of the toolkit.
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


def load_weighted_detector(path) -> dict:
    """Read a weighted detector written by :func:`tdm_widgets.export_weighted_detector`.

    Parameters
    ----------
    path : str or Path
        The prefix given to ``export_weighted_detector``: ``PATH.npy`` (the weights)
        and ``PATH.json`` (offsets and provenance) are read; a suffix is ignored.

    Returns
    -------
    dict
        ``"weights"``: ndarray ``(k, det_y, det_x)`` float64 [1 / data unit], 0 at
        pixels that were constant in the statistics; ``"offset"``: ndarray ``(k,)``
        [image unit] added to each image; ``"meta"``: the JSON record (equation,
        number of scan positions in the statistics, mask provenance).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np, tdm_widgets as tw
    >>> from tdm_widgets.libertem_udf import load_weighted_detector
    >>> data = np.random.default_rng(0).poisson(50, (6, 5, 8, 8)).astype(float)
    >>> s = tw.from_array(data)
    >>> mask = tw.pcc_mask(s, np.eye(6, 5), show_progressbar=False)
    >>> prefix = Path(tempfile.mkdtemp()) / "tdm"
    >>> _ = tw.export_weighted_detector(mask, tw.column_stats(s), prefix)
    >>> det = load_weighted_detector(prefix)
    >>> det["weights"].shape, det["offset"].shape
    ((1, 8, 8), (1,))
    """
    path = Path(path)
    base = path.with_suffix("") if path.suffix in (".npy", ".json", ".tif") else path
    weights = np.load(base.with_suffix(".npy"))
    if weights.ndim == 2:
        weights = weights[None]
    meta = json.loads(base.with_suffix(".json").read_text())
    offset = np.asarray(meta["offset"], dtype=float).reshape(-1)
    if offset.shape[0] != weights.shape[0]:
        raise ValueError(f"{base}: {weights.shape[0]} weight images but {offset.shape[0]} "
                         "offsets; the .npy and .json files are not from one export")
    return {"weights": weights.astype(np.float64), "offset": offset, "meta": meta}


def _as_detector(detector) -> dict:
    if isinstance(detector, (str, Path)):
        return load_weighted_detector(detector)
    w = np.asarray(detector["weights"], dtype=np.float64)
    if w.ndim == 2:
        w = w[None]
    off = np.broadcast_to(np.asarray(detector.get("offset", 0.0), float).reshape(-1),
                          (w.shape[0],)).copy()
    return {"weights": w, "offset": off, "meta": detector.get("meta", {})}


def apply_masks_udf(detector, **kwargs):
    """LiberTEM's ``ApplyMasksUDF`` for a TDM weighted detector.

    Parameters
    ----------
    detector : dict or str or Path
        What :func:`tdm_widgets.export_weighted_detector` returned (``"weights"`` and
        ``"offset"``), the dict of :func:`load_weighted_detector`, or the path prefix
        of the exported files.
    **kwargs
        Passed to ``ApplyMasksUDF``; the defaults here are ``mask_dtype=float64``,
        ``preferred_dtype=float64`` (frames are weighted in double precision, as
        ``apply_mask`` does) and ``use_torch=False``.

    Returns
    -------
    libertem.udf.masks.ApplyMasksUDF
        One mask per weight image; its result buffer ``"intensity"`` has shape
        ``(*nav_shape, k)`` [image unit] *without* the offset: add it with
        :func:`images_from_result`.

    Examples
    --------
    >>> from libertem.api import Context                       # doctest: +SKIP
    >>> ctx = Context.make_with("inline")                      # doctest: +SKIP
    >>> ds = ctx.load("memory", data=s.data, sig_dims=2)       # doctest: +SKIP
    >>> res = ctx.run_udf(dataset=ds, udf=apply_masks_udf(det))  # doctest: +SKIP
    >>> images = images_from_result(res, det)                  # doctest: +SKIP
    """
    from libertem.udf.masks import ApplyMasksUDF

    det = _as_detector(detector)
    w = np.ascontiguousarray(det["weights"])
    options = {"mask_dtype": np.float64, "preferred_dtype": np.float64, "use_torch": False}
    options.update(kwargs)
    logger.debug("ApplyMasksUDF with %d weight image(s) of %s", w.shape[0], w.shape[1:])
    # a partial of a module-level function pickles (distributed executors), a lambda not
    return ApplyMasksUDF(mask_factories=functools.partial(np.asarray, w),
                         mask_count=w.shape[0], **options)


def images_from_result(result, detector) -> np.ndarray:
    """TDM images from the result of :func:`apply_masks_udf`: weighted sums plus offsets.

    Parameters
    ----------
    result : dict
        What ``Context.run_udf`` (or ``LiveContext.run_udf``) returned for the UDF of
        :func:`apply_masks_udf`: a mapping with the buffer ``"intensity"``
        ``(*nav_shape, k)``; for a partial result of ``run_udf_iter``, its
        ``.buffers[0]``.
    detector : dict or str or Path
        The same weighted detector the UDF was made from (for its offsets).

    Returns
    -------
    ndarray
        ``(k, scan_y, scan_x)`` float64 [image unit], equal to
        ``tw.apply_mask(s, mask, normalized=True).data`` (Eq 6) when the weights came
        from statistics of the same data. A partial result of ``run_udf_iter`` has 0
        in the buffer where no frame has arrived yet, so those pixels hold the
        offset.

    Examples
    --------
    >>> res = ctx.run_udf(dataset=ds, udf=apply_masks_udf(det))  # doctest: +SKIP
    >>> images = images_from_result(res, det)                  # doctest: +SKIP
    >>> images.shape                                           # doctest: +SKIP
    (5, 20, 34)
    """
    det = _as_detector(detector)
    buf = result["intensity"]
    data = np.asarray(getattr(buf, "data", buf), dtype=np.float64)
    if data.shape[-1] != det["offset"].shape[0]:
        raise ValueError(f"the result holds {data.shape[-1]} images, the detector "
                         f"{det['offset'].shape[0]}: not the UDF of this detector")
    return np.moveaxis(data, -1, 0) + det["offset"].reshape((-1,) + (1,) * (data.ndim - 1))


def run_weighted_detector(ctx, dataset, detector, **kwargs) -> np.ndarray:
    """Apply a TDM weighted detector to a LiberTEM dataset or live acquisition.

    Parameters
    ----------
    ctx : libertem.api.Context or libertem_live.api.LiveContext
        The LiberTEM context (any executor).
    dataset : libertem.io.dataset.base.DataSet
        A dataset from ``ctx.load(...)``, or an acquisition from
        ``LiveContext.make_acquisition(...)``; its frames must have the detector shape
        of the weights (same binning and orientation as the data the masks came from).
    detector : dict or str or Path
        See :func:`apply_masks_udf`.
    **kwargs
        Passed to :func:`apply_masks_udf`.

    Returns
    -------
    ndarray
        ``(k, scan_y, scan_x)`` float64 [image unit]: the Eq 6 images.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np, tdm_widgets as tw
    >>> from libertem.api import Context
    >>> from tdm_widgets.libertem_udf import run_weighted_detector
    >>> data = np.random.default_rng(0).poisson(50, (6, 5, 8, 8)).astype(float)
    >>> s = tw.from_array(data)
    >>> mask = tw.pcc_mask(s, np.eye(6, 5), show_progressbar=False)
    >>> prefix = Path(tempfile.mkdtemp()) / "tdm"
    >>> det = tw.export_weighted_detector(mask, tw.column_stats(s), prefix)
    >>> ctx = Context.make_with("inline")
    >>> ds = ctx.load("memory", data=data, sig_dims=2)
    >>> img = run_weighted_detector(ctx, ds, prefix)
    >>> ref = tw.apply_mask(s, mask, normalized=True, show_progressbar=False).data
    >>> bool(np.allclose(img[0], ref, rtol=1e-12, atol=1e-12))
    True
    """
    det = _as_detector(detector)
    result = ctx.run_udf(dataset=dataset, udf=apply_masks_udf(det, **kwargs))
    return images_from_result(result, det)
