"""A stateful TDM engine: statistics and projections kept from one pass, so that
adding, removing or editing a template reads only the patterns it touches."""

from __future__ import annotations

import numpy as np

from .apply import apply_masks
from .blocks import is_lazy
from .checks import check_data, detector_mask, region_mask, templates_stack
from .correlate import NORMALIZATIONS, masks_from, statistics_pass, template_sum_of_squares
from .kernels import sparse_projection
from .progress import hyperspy_progressbar


class TDMEngine:
    """Masks and images for ``k`` templates, with cheap template edits.

    The constructor makes the one pass over the data (column statistics and the
    projections of every template given); :meth:`edit`, :meth:`add_template` and
    :meth:`set_template` update projections from the scan positions where a template
    changed only; :meth:`masks` needs no pass; :meth:`images` makes one pass.

    Parameters
    ----------
    data : ndarray or dask.array.Array
        ``(scan_y, scan_x, det_y, det_x)``.
    templates : array_like, optional
        ``(k, scan_y, scan_x)``; none (k = 0) if None: add them later.
    region : ndarray of bool, optional
        Positions whose statistics define the masks (a partial template).
    show_progressbar : bool, optional
        Progress bar for passes longer than a second; None follows
        ``hs.preferences.General.show_progressbar``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> data = rng.poisson(5.0, (6, 5, 4, 4)).astype(np.uint16)
    >>> engine = TDMEngine(data, show_progressbar=False)
    >>> t = np.zeros((6, 5)); t[2, 3] = 1
    >>> engine.add_template(t)
    0
    >>> engine.masks().shape
    (1, 4, 4)
    """

    @hyperspy_progressbar
    def __init__(self, data, templates=None, region=None,
                 show_progressbar: bool | None = None):
        check_data(data)
        self.data = data
        self.scan_shape = tuple(data.shape[:2])
        if templates is None:
            t = np.zeros((0,) + self.scan_shape)
        else:
            t, _ = templates_stack(templates, self.scan_shape)
        self.region = region_mask(region, self.scan_shape)
        self.region_given = region is not None
        self.stats, _, self._sums, self._shift, self._centers = statistics_pass(
            data, t, self.region, show_progressbar)
        self.templates = t.copy()
        #: Scan positions read by edits since the pass (a diagnostic for tests).
        self.patterns_read = 0

    @property
    def k(self) -> int:
        """Number of templates."""
        return self.templates.shape[0]

    def _patterns(self, rows: np.ndarray):
        """The data as ``(p, q)`` rows, or just the listed rows for lazy data."""
        sy, sx, dy, dx = self.data.shape
        if hasattr(self.data, "patterns"):  # corrected data: the listed rows, corrected
            return self.data.patterns(rows), np.arange(len(rows))
        if not is_lazy(self.data):
            return self.data.reshape(sy * sx, dy * dx), rows
        ys, xs = np.unravel_index(rows, (sy, sx))
        picked = self.data.vindex[ys, xs].compute().reshape(len(rows), dy * dx)
        return picked, np.arange(len(rows))

    def _project(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(k, q)`` sums of ``w (D - shift)`` and ``(k,)`` sums of ``w`` over the
        region, reading only the rows where some weight is non-zero."""
        flat = weights.reshape(weights.shape[0], -1)
        rows = np.flatnonzero((flat != 0).any(axis=0) & self.region.reshape(-1))
        q = int(np.prod(self.data.shape[2:]))
        if not rows.size:
            return np.zeros((flat.shape[0], q)), np.zeros(flat.shape[0])
        x, r = self._patterns(rows)
        self.patterns_read += rows.size
        w = flat[:, rows]
        return sparse_projection(x, self._shift, r, w), w.sum(axis=1)

    def edit(self, index: int, delta) -> None:
        """Add ``delta`` (scan-shaped, mostly zero) to template ``index``.

        Only the scan positions where ``delta`` is non-zero (inside the region) are
        read from the data.

        Parameters
        ----------
        index : int
            Template to edit.
        delta : array_like
            ``(scan_y, scan_x)`` change of the template [template units], finite.

        Returns
        -------
        None
            The engine's sums are updated in place.

        Examples
        --------
        >>> data = np.random.default_rng(0).poisson(5.0, (6, 5, 4, 4)).astype(np.uint16)
        >>> engine = TDMEngine(data, show_progressbar=False)
        >>> t = np.zeros((6, 5)); t[2, 3] = 1
        >>> engine.add_template(t)
        0
        >>> delta = np.zeros((6, 5)); delta[4, 1] = 1        # paint one more column
        >>> engine.edit(0, delta)
        >>> float(engine.templates[0].sum())
        2.0
        """
        delta = np.asarray(delta, float)
        if delta.shape != self.scan_shape:
            raise ValueError(f"delta must have the scan shape {self.scan_shape}; got "
                             f"{delta.shape}")
        if not np.isfinite(delta).all():
            raise ValueError("delta contains NaN or inf values")
        self._add_deltas([index], delta[None])

    def _add_deltas(self, indices, deltas: np.ndarray) -> None:
        """Add ``deltas[j]`` to template ``indices[j]``, reading each position where any
        of them is non-zero once."""
        proj, tsum = self._project(deltas)
        self._sums.proj[indices] += proj
        self._sums.tsum[indices] += tsum
        self.templates[indices] += deltas

    def set_template(self, index: int, template) -> None:
        """Replace template ``index``; reads only the positions where it changed."""
        self.set_templates({index: template})

    def set_templates(self, changes: dict) -> None:
        """Replace several templates (index to template) at once; reads each position
        where any of them changed once."""
        if not changes:
            return
        indices = list(changes)
        new = np.stack([templates_stack(changes[i], self.scan_shape)[0][0] for i in indices])
        self._add_deltas(indices, new - self.templates[indices])

    def add_template(self, template) -> int:
        """Append a template; reads only the positions where it differs from its
        median (its background: the columns of a point template).

        Parameters
        ----------
        template : array_like
            ``(scan_y, scan_x)`` template.

        Returns
        -------
        int
            Index of the new template [template number].

        Examples
        --------
        >>> data = np.random.default_rng(0).poisson(5.0, (6, 5, 4, 4)).astype(np.uint16)
        >>> engine = TDMEngine(data, show_progressbar=False)
        >>> t = np.zeros((6, 5)); t[2, 3] = 1
        >>> engine.add_template(t)
        0
        >>> engine.add_template(np.roll(t, 2, axis=1)), engine.k
        (1, 2)
        """
        t, _ = templates_stack(template, self.scan_shape)
        center = float(np.median(t[0][self.region]))
        proj, tsum = self._project(t - center)
        s = self._sums
        s.proj = np.concatenate([s.proj, proj])
        s.tsum = np.concatenate([s.tsum, tsum])
        self._centers = np.append(self._centers, center)
        self.templates = np.concatenate([self.templates, t])
        return self.k - 1

    def remove_template(self, index: int) -> None:
        """Drop template ``index`` (no pass).

        Parameters
        ----------
        index : int
            Template to drop; later templates move down by one.

        Returns
        -------
        None
            The engine is updated in place.

        Examples
        --------
        >>> data = np.random.default_rng(0).poisson(5.0, (6, 5, 4, 4)).astype(np.uint16)
        >>> engine = TDMEngine(data, show_progressbar=False)
        >>> t = np.zeros((6, 5)); t[2, 3] = 1
        >>> engine.add_template(t)
        0
        >>> engine.remove_template(0); engine.k
        0
        """
        keep = np.arange(self.k) != index
        s = self._sums
        s.proj, s.tsum = s.proj[keep], s.tsum[keep]
        self._centers = self._centers[keep]
        self.templates = self.templates[keep]

    def masks(self, normalization: str = "pcc", detector_region=None) -> np.ndarray:
        """``(k, det_y, det_x)`` correlation masks from the kept sums (no pass).

        Parameters
        ----------
        normalization : {"pcc", "pcc_over_mean"}
            Eq 5 or Eq 7, as in :func:`tdm_widgets.pcc_mask`.
        detector_region : ndarray of bool or tuple of float, optional
            Detector pixels the masks may use (a boolean mask; a tuple is read in the
            detector's axis units); all if None.

        Returns
        -------
        ndarray
            ``(k, det_y, det_x)`` float64 correlation coefficients [dimensionless];
            0 at constant and bad pixels.

        Examples
        --------
        >>> data = np.random.default_rng(0).poisson(5.0, (6, 5, 4, 4)).astype(np.uint16)
        >>> engine = TDMEngine(data, show_progressbar=False)
        >>> t = np.zeros((6, 5)); t[2, 3] = 1
        >>> engine.add_template(t)
        0
        >>> m = engine.masks()
        >>> m.shape, bool(np.abs(m).max() <= 1)
        ((1, 4, 4), True)
        """
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}; "
                             f"got {normalization!r}")
        det = detector_mask(detector_region, self.data.shape[2:])
        if not self.k:
            return np.zeros((0,) + tuple(self.data.shape[2:]))
        t_ss = template_sum_of_squares(self.templates, self.region, self.region_given)
        _, _, proj = self._sums.finish(self._shift)
        masks = masks_from(self.stats, proj, t_ss, normalization, det)
        bad = getattr(getattr(self.data, "correction", None), "bad_pixels", None)
        return masks if bad is None else masks * ~bad  # interpolated pixels: weight 0

    @hyperspy_progressbar
    def images(self, masks, normalized: bool = False, show_progressbar: bool | None = None):
        """Images of ``masks`` (one pass); Eq 6 reuses the kept statistics.

        Parameters
        ----------
        masks : array_like
            ``(det_y, det_x)`` or ``(k, det_y, det_x)``, e.g. :meth:`masks`.
        normalized : bool
            Eq 6 instead of Eq 2.
        show_progressbar : bool, optional
            Progress bar for passes longer than a second; None follows HyperSpy's
            preference.

        Returns
        -------
        ndarray
            ``(scan_y, scan_x)`` or ``(k, scan_y, scan_x)`` float64 [data units x
            mask units; dimensionless for Eq 6].

        Examples
        --------
        >>> data = np.random.default_rng(0).poisson(5.0, (6, 5, 4, 4)).astype(np.uint16)
        >>> engine = TDMEngine(data, show_progressbar=False)
        >>> t = np.zeros((6, 5)); t[2, 3] = 1
        >>> engine.add_template(t)
        0
        >>> engine.images(engine.masks(), normalized=True, show_progressbar=False).shape
        (1, 6, 5)
        """
        return apply_masks(self.data, masks, normalized=normalized, stats=self.stats,
                           progress=show_progressbar)
