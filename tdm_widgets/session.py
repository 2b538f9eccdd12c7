"""A TDM session: one dataset, its one-pass statistics and its named templates.

The session unwraps a signal once and owns what every face of the toolkit needs: the
calibration, the column statistics and template projections (computed lazily in one
pass and kept), named templates (species -> template), the reference region and the
detector region. Masks cost no pass; images cost one pass for the TDM masks and any
virtual detectors together; an edit (a column added or removed, a template replaced)
reads only the scan positions it changes. The plain functions
(:func:`tdm_widgets.pcc_mask`, :func:`tdm_widgets.apply_mask`), the explorer, the CLI
and the demo are built on it.
"""

from __future__ import annotations

import hashlib
import json
import weakref
from pathlib import Path

import numpy as np

from .column_templates import check_positions, point_templates, species_names
from .core.apply import apply_masks, physical_weights
from .core.checks import region_mask
from .core.engine import TDMEngine
from .core.progress import hyperspy_progressbar
from .core.records import packed_bits, unpacked_bits
from .detector import describe_detector_region, detector_annulus, resolve_detector_region
from .signals import (
    column_stats_signal,
    provenance,
    refuse_overwriting_input,
    unwrap,
    wrap_detector_images,
    wrap_scan_images,
)

#: ``written_by`` of the positions file :meth:`TDMSession.save` writes: one without it
#: in the folder is someone's own (with a lattice or notes) and is not replaced.
SAVED_BY = "TDMSession.save"


def _refuse_foreign_positions(path: Path) -> None:
    if not path.exists():
        return
    try:
        doc = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        doc = None
    if not isinstance(doc, dict) or doc.get("written_by") != SAVED_BY:
        raise ValueError(f"{path} exists and was not written by a session save (your "
                         "positions, with their lattice or notes?): choose another folder")


#: Statistics that produced a mask signal, with the data they belong to (weakly held:
#: a mask forgets them when either is gone).
_MASK_STATISTICS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def remember_statistics(mask_signal, data, stats) -> None:
    """Attach the column statistics of ``data`` to a mask signal, so that applying the
    mask to the same data with Eq 6 needs no second statistics pass."""
    try:
        _MASK_STATISTICS[mask_signal] = (weakref.ref(data), stats)
    except TypeError:  # data that cannot be weakly referenced: nothing kept
        pass


def statistics_for(mask_signal, data):
    """The statistics remembered for ``mask_signal`` if they belong to ``data``
    (the very same array), else None."""
    try:
        ref, stats = _MASK_STATISTICS[mask_signal]
    except (KeyError, TypeError):
        return None
    return stats if ref() is data else None


def reference_region_of(mask_signal):
    """The reference region recorded in a mask signal's ``metadata.TDM`` (also after
    saving and loading it), or None: fitted on every position, or not a mask of this
    toolkit."""
    meta = getattr(mask_signal, "metadata", None)
    record = meta.get_item("TDM.parameters.region_bits") if meta is not None else None
    if record is None:
        return None
    return unpacked_bits(record.as_dictionary() if hasattr(record, "as_dictionary")
                         else record)


class TDMSession:
    """One 4D dataset with named templates: masks, images, edits, export and save.

    Parameters
    ----------
    s : hyperspy.signals.Signal2D or ndarray
        4D data ``(scan_y, scan_x, det_y, det_x)``, numpy-backed or lazy.
    templates : dict of str to array_like, optional
        Name (species) to ``(scan_y, scan_x)`` template.
    region : ndarray of bool, optional
        Reference region: positions whose statistics define the masks (a partial
        template); the masks apply to every position.
    detector_region : ndarray of bool or tuple of float, optional
        Detector pixels the masks may use, a boolean array or ``(inner_mrad,
        outer_mrad)``.
    normalization : {"pcc", "pcc_over_mean"}
        Eq 5 or Eq 7.
    show_progressbar : bool, optional
        Progress bars for passes longer than a second; None follows HyperSpy's
        preference (``progress=`` is a deprecated alias).

    Examples
    --------
    >>> import numpy as np, tdm_widgets as tw
    >>> rng = np.random.default_rng(0)
    >>> s = tw.from_array(rng.poisson(9.0, (8, 8, 6, 6)).astype(np.uint16),
    ...                   scan_step_A=0.3, mrad_per_px=2.0)
    >>> session = tw.TDMSession.from_columns(s, {"A": [[1, 1], [5, 5]]},
    ...                                      show_progressbar=False)
    >>> session.masks().data.shape            # no pass beyond the statistics
    (2, 6, 6)
    >>> session.add_column("A", 3, 4)         # reads one scan position
    >>> session.images(virtual={"BF": (0, 4)}).metadata.TDM.names
    ['A', 'all', 'BF']
    """

    @hyperspy_progressbar
    def __init__(self, s, templates: dict | None = None, region=None,
                 detector_region=None, normalization: str = "pcc",
                 show_progressbar: bool | None = None):
        self.data, self.calibration, self.source = unwrap(s)
        self.signal = s if self.source is not None else None
        self.scan_shape = tuple(self.data.shape[:2])
        self.det_shape = tuple(self.data.shape[2:])
        self.progress = show_progressbar  # resolved to a bool by the decorator
        self.normalization = normalization
        self._region = None if region is None else region_mask(region, self.scan_shape)
        self.detector_region = detector_region
        self._det = resolve_detector_region(detector_region, self.det_shape,
                                            self.calibration)
        self._names: list[str] = []
        self._pending: list[np.ndarray] = []
        self._engine: TDMEngine | None = None
        #: The last computed images and a checksum of the weights that made them: the
        #: same weights again (e.g. ``save`` right after ``images``) cost no pass.
        self._last_images: tuple[bytes, np.ndarray] | None = None
        self.columns: dict[str, np.ndarray] | None = None
        self.sigma_px = 0.0
        #: Gaussian templates wrap across the scan's edges (a simulated unit cell).
        self.periodic = True
        self.combined: str | None = None
        #: Name of the stack axis of saved masks ("species" when made from columns).
        self.stack_name = "template"
        for name, t in (templates or {}).items():
            self.set_template(name, t)

    @classmethod
    def from_columns(cls, s, columns: dict, species=None, sigma_px: float = 0.0,
                     combined: str | None = "all", periodic: bool = True,
                     **kwargs) -> TDMSession:
        """A session whose templates are made from column positions.

        Parameters
        ----------
        s : hyperspy.signals.Signal2D or ndarray
            4D data.
        columns : dict of str to array_like
            Species to ``(n, 2)`` (row, col) positions [scan px].
        species : sequence of str, optional
            Which species, in order (all if None).
        sigma_px : float
            0 for single-pixel templates, else the Gaussian width [scan px].
        combined : str or None
            Name of an extra template holding every column (None for none).
        periodic : bool
            Gaussian templates wrap across the scan's edges (a simulated unit cell);
            False for an experimental scan (see :func:`point_templates`).
        **kwargs
            As for :class:`TDMSession`.
        """
        session = cls(s, **kwargs)
        session.periodic = bool(periodic)
        names = species_names(columns, species, combined)
        session.columns = {n: np.asarray(columns[n], float).reshape(-1, 2) for n in names}
        session.sigma_px = float(sigma_px)
        session.combined = combined
        session.stack_name = "species"
        session._sync_columns()
        return session

    # --- templates -------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """Template names, in order: for a session made from columns, the species in
        the order of ``columns`` and the combined template last (however often a
        species was emptied and filled again); otherwise the order they were set."""
        return sorted(self._names, key=self._rank)

    def _rank(self, name: str) -> tuple[int, int]:
        if self.columns is not None:
            if name == self.combined:
                return (2, 0)
            if name in self.columns:
                return (0, list(self.columns).index(name))
        return (1, self._names.index(name))

    def _stack(self):
        return self._engine.templates if self._engine is not None else self._pending

    @property
    def templates(self) -> dict[str, np.ndarray]:
        """Name to template (copies), in the order of :attr:`names`."""
        stack = self._stack()
        return {n: np.array(stack[self._names.index(n)]) for n in self.names}

    def set_template(self, name: str, template) -> None:
        """Add a named template, or replace one.

        Before the statistics exist this costs nothing; after, replacing reads only
        the scan positions where the template changed and adding reads the new
        template's columns (where it differs from its median).

        Parameters
        ----------
        name : str
            Template name (e.g. a species); an existing name is replaced.
        template : array_like or Signal2D
            ``(scan_y, scan_x)`` template [arbitrary units: only its correlation with
            the data matters].

        Raises
        ------
        ValueError
            For a template that does not have the scan shape, holds NaN or inf, or is
            constant, naming it.

        See Also
        --------
        set_templates : Several templates at once (one read of the changed positions).

        Examples
        --------
        >>> data = np.random.default_rng(0).poisson(9.0, (6, 5, 8, 8)).astype(np.uint16)
        >>> s = tw.from_array(data, scan_step_A=0.4, mrad_per_px=2.0)
        >>> session = tw.TDMSession.from_columns(s, {"A": [[1, 1], [4, 3]]}, show_progressbar=False)
        >>> t = np.zeros((6, 5)); t[0, 0] = 1
        >>> session.set_template("corner", t)
        >>> session.names
        ['A', 'corner', 'all']
        """
        self.set_templates({name: template})

    def set_templates(self, templates: dict) -> None:
        """Add or replace named templates.

        Once the statistics exist, replacing reads each position where any of them
        changed once, and adding reads a new template's columns (where it differs
        from its median); before, it costs nothing. New names are appended in order.

        Parameters
        ----------
        templates : dict of str to array_like
            Name to ``(scan_y, scan_x)`` template (array or Signal2D) [arbitrary
            units]; existing names are replaced.

        Raises
        ------
        ValueError
            For a template that does not have the scan shape, holds NaN or inf, or is
            constant, naming it (nothing is changed).

        Examples
        --------
        >>> data = np.random.default_rng(0).poisson(9.0, (6, 5, 8, 8)).astype(np.uint16)
        >>> s = tw.from_array(data, scan_step_A=0.4, mrad_per_px=2.0)
        >>> session = tw.TDMSession.from_columns(s, {"A": [[1, 1], [4, 3]]}, show_progressbar=False)
        >>> t = np.zeros((6, 5)); t[0, 0] = 1
        >>> session.set_templates({"A": t, "B": t[::-1]})   # A replaced, B added
        >>> session.names, float(session.templates["B"][5, 0])
        (['A', 'B', 'all'], 1.0)
        """
        new = {}
        for name, template in templates.items():
            if not isinstance(name, str) or not name.strip():
                raise ValueError(f"a template name must be a non-empty string; got {name!r}")
            t = np.asarray(getattr(template, "data", template), float)
            if t.shape != self.scan_shape:
                raise ValueError(f"template {name!r} must have the scan shape "
                                 f"{self.scan_shape}; got {t.shape}")
            if not np.isfinite(t).all():
                raise ValueError(f"template {name!r} contains NaN or inf values")
            if np.ptp(t) == 0:
                raise ValueError(f"template {name!r} is constant (all-zero or uniform): it "
                                 "cannot be correlated with the data")
            new[name] = t
        replace = {self._names.index(n): t for n, t in new.items() if n in self._names}
        if self._engine is not None:
            self._engine.set_templates(replace)
        else:
            for i, t in replace.items():
                self._pending[i] = t
        for name, t in new.items():
            if name in self._names:
                continue
            if self._engine is not None:
                self._engine.add_template(t)
            else:
                self._pending.append(t)
            self._names.append(name)

    def remove_template(self, name: str) -> None:
        """Drop a named template (no pass); its columns are forgotten too.

        Parameters
        ----------
        name : str
            A name in :attr:`names`.

        Raises
        ------
        ValueError
            For an unknown name.

        Examples
        --------
        >>> data = np.random.default_rng(0).poisson(9.0, (6, 5, 8, 8)).astype(np.uint16)
        >>> s = tw.from_array(data, scan_step_A=0.4, mrad_per_px=2.0)
        >>> session = tw.TDMSession.from_columns(s, {"A": [[1, 1], [4, 3]]},
        ...                                      show_progressbar=False)
        >>> session.remove_template("all")
        >>> session.names
        ['A']
        """
        self._drop(name)
        if self.columns is not None:
            self.columns.pop(name, None)

    def _drop(self, name: str) -> None:
        i = self._index(name)
        if self._engine is not None:
            self._engine.remove_template(i)
        else:
            del self._pending[i]
        del self._names[i]

    def _names_arg(self, names) -> list[str]:
        """The names a method was given: all if None, one name as a string."""
        if names is None:
            return self.names
        return [names] if isinstance(names, str) else list(names)

    def _index(self, name: str) -> int:
        if name not in self._names:
            raise ValueError(f"no template named {name!r}; have {self._names}")
        return self._names.index(name)

    def _sync_columns(self, species=None) -> None:
        """Templates of ``species`` (all if None) and the combined template made again
        from the columns; only the positions where a template changed are read, and
        the other species' templates are not touched."""
        todo = list(self.columns) if species is None else list(species)
        changes = {}
        for n in todo:
            if len(self.columns[n]):
                (changes[n],), _ = point_templates({n: self.columns[n]}, self.scan_shape,
                                                   sigma_px=self.sigma_px, combined=None,
                                                   periodic=self.periodic)
            elif n in self._names:
                self._drop(n)
        live = [n for n in self.columns if len(self.columns[n])]
        if self.combined is not None and not live and self.combined in self._names:
            self._drop(self.combined)
        elif self.combined is not None and live:
            stack = self._stack()
            per = [changes[n] if n in changes else stack[self._names.index(n)] for n in live]
            # as point_templates combines them: a sum of Gaussians, a union of points
            changes[self.combined] = (np.sum(per, axis=0) if self.sigma_px > 0
                                      else np.maximum.reduce(per))
        if changes:  # one read of every position where any of them changed
            self.set_templates(changes)

    def _require_columns(self, species: str) -> None:
        if self.columns is None:
            raise ValueError("this session was not made from columns: use "
                             "TDMSession.from_columns, or set_template")
        if species not in self.columns:
            self.columns[species] = np.zeros((0, 2))

    def add_column(self, species: str, y: float, x: float) -> None:
        """Add a column of ``species`` at a scan position.

        The templates are made again from the columns (a new species gets a new
        template, and the combined template, if any, changes too); once the
        statistics exist, only the positions whose template values change are read.

        Parameters
        ----------
        species : str
            Species (template name) of the column.
        y, x : float
            Scan position (row, column) [scan px], inside the scan.

        Raises
        ------
        ValueError
            For a position outside the scan, or a session not made from columns
            (:meth:`from_columns`).

        Examples
        --------
        >>> data = np.random.default_rng(0).poisson(9.0, (6, 5, 8, 8)).astype(np.uint16)
        >>> s = tw.from_array(data, scan_step_A=0.4, mrad_per_px=2.0)
        >>> session = tw.TDMSession.from_columns(s, {"A": [[1, 1], [4, 3]]}, show_progressbar=False)
        >>> session.add_column("A", 2, 2)
        >>> session.add_column("B", 3, 0)                   # a new species
        >>> session.columns["A"].tolist(), session.names
        ([[1.0, 1.0], [4.0, 3.0], [2.0, 2.0]], ['A', 'B', 'all'])
        """
        self._require_columns(species)
        p = np.array([[y, x]], float)
        if not (np.isfinite(p).all() and -0.5 <= y < self.scan_shape[0] - 0.5
                and -0.5 <= x < self.scan_shape[1] - 0.5):
            raise ValueError(f"column position (y, x) = ({y}, {x}) is outside the scan "
                             f"of shape {self.scan_shape} [px]")
        self.columns[species] = np.vstack([self.columns[species], p])
        self._sync_columns([species])

    def remove_column(self, species: str, y: float, x: float) -> None:
        """Remove the column of ``species`` nearest to a scan position.

        The templates are made again from the remaining columns (a species left
        without columns loses its template); only changed positions are read.

        Parameters
        ----------
        species : str
            Species (template name) of the column.
        y, x : float
            Scan position (row, column) [scan px]; the nearest column of ``species``
            must lie within 1 px.

        Raises
        ------
        ValueError
            For no column of ``species`` within 1 px, or a session not made from
            columns.

        Examples
        --------
        >>> data = np.random.default_rng(0).poisson(9.0, (6, 5, 8, 8)).astype(np.uint16)
        >>> s = tw.from_array(data, scan_step_A=0.4, mrad_per_px=2.0)
        >>> session = tw.TDMSession.from_columns(s, {"A": [[1, 1], [4, 3]]}, show_progressbar=False)
        >>> session.remove_column("A", 4.2, 2.9)
        >>> session.columns["A"].tolist()
        [[1.0, 1.0]]
        """
        self._require_columns(species)
        pos = self.columns[species]
        if not len(pos):
            raise ValueError(f"species {species!r} has no column to remove")
        d = np.hypot(pos[:, 0] - y, pos[:, 1] - x)
        if d.min() > 1.0:
            raise ValueError(f"no {species} column within 1 px of ({y}, {x})")
        self.columns[species] = np.delete(pos, int(np.argmin(d)), axis=0)
        self._sync_columns([species])

    def set_columns(self, columns: dict) -> None:
        """Replace the positions of the species in ``columns``; the other species are
        kept. Only the positions where a template changed are read, once.

        Parameters
        ----------
        columns : dict of str to array_like
            Species to ``(n, 2)`` (row, col) positions [scan px]; an empty array
            empties that species.

        Raises
        ------
        ValueError
            For a session not made from columns, or positions outside the scan or NaN.

        Examples
        --------
        >>> data = np.random.default_rng(0).poisson(9.0, (6, 5, 8, 8)).astype(np.uint16)
        >>> s = tw.from_array(data, scan_step_A=0.4, mrad_per_px=2.0)
        >>> session = tw.TDMSession.from_columns(s, {"A": [[1, 1]], "B": [[4, 3]]},
        ...                                      show_progressbar=False)
        >>> session.set_columns({"A": [[2, 2], [5, 4]]})
        >>> session.columns["A"].tolist(), session.columns["B"].tolist()
        ([[2.0, 2.0], [5.0, 4.0]], [[4.0, 3.0]])
        """
        if self.columns is None:
            raise ValueError("set_columns needs a session made from columns")
        new = {n: check_positions(p, self.scan_shape, f"columns[{n!r}]")
               for n, p in columns.items()}
        self.columns.update(new)
        self._sync_columns(list(new))

    def set_width(self, sigma_px: float) -> None:
        """Change the Gaussian width of every column template.

        Gaussians touch every position, so this reads the scan once (when the
        statistics exist).

        Parameters
        ----------
        sigma_px : float
            Gaussian standard deviation [scan px], >= 0; 0 for single-pixel
            templates.

        Raises
        ------
        ValueError
            For a negative or non-finite width, or a session not made from columns.

        Examples
        --------
        >>> data = np.random.default_rng(0).poisson(9.0, (6, 5, 8, 8)).astype(np.uint16)
        >>> s = tw.from_array(data, scan_step_A=0.4, mrad_per_px=2.0)
        >>> session = tw.TDMSession.from_columns(s, {"A": [[1, 1], [4, 3]]}, show_progressbar=False)
        >>> session.set_width(0.8)
        >>> session.sigma_px, int(np.count_nonzero(session.templates["A"]))
        (0.8, 30)
        """
        if not np.isfinite(sigma_px) or sigma_px < 0:
            raise ValueError(f"sigma_px must be >= 0; got {sigma_px}")
        if self.columns is None:
            raise ValueError("set_width needs a session made from columns")
        self.sigma_px = float(sigma_px)
        self._sync_columns()

    # --- region and statistics -------------------------------------------------
    @property
    def region(self):
        """The reference region (None: every position)."""
        return self._region

    def set_region(self, region) -> None:
        """A new reference region: the positions whose statistics define the masks.

        The statistics (one pass) are made again at their next use; the masks still
        apply to every position. Setting the same region again costs nothing.

        Parameters
        ----------
        region : ndarray of bool or None
            ``(scan_y, scan_x)`` mask of the reference positions; None for every
            position.

        Raises
        ------
        ValueError
            For a region within which a template is constant (none of its columns
            inside), naming the templates.

        Examples
        --------
        >>> data = np.random.default_rng(0).poisson(9.0, (6, 5, 8, 8)).astype(np.uint16)
        >>> s = tw.from_array(data, scan_step_A=0.4, mrad_per_px=2.0)
        >>> session = tw.TDMSession.from_columns(s, {"A": [[1, 1], [4, 3]]}, show_progressbar=False)
        >>> upper = np.zeros((6, 5), bool); upper[:3] = True
        >>> session.set_region(upper)
        >>> session.stats.n, session.masks().data.shape      # 15 positions' statistics
        (15, (2, 8, 8))
        """
        new = None if region is None else region_mask(region, self.scan_shape)
        if new is not None:  # named here, before a pass finds them by number
            flat = [n for n, t in self.templates.items() if np.ptp(t[new]) == 0]
            if flat:
                raise ValueError(f"template(s) {flat} are constant within the region (no "
                                 "column of theirs inside it?): choose a region holding "
                                 "columns of every template")
        if (new is None and self._region is None) or (
                new is not None and self._region is not None and np.array_equal(new, self._region)):
            return
        if self._engine is not None:
            self._pending = list(self._engine.templates)
            self._engine = None
        self._region = new

    def set_detector_region(self, detector_region) -> None:
        """Detector pixels the masks may use (no pass); the masks are 0 elsewhere.

        Parameters
        ----------
        detector_region : ndarray of bool or tuple of float or None
            A boolean ``(det_y, det_x)`` array, or ``(inner_mrad, outer_mrad)``
            [mrad] for an annulus about 0 mrad; None for every pixel.

        Examples
        --------
        >>> data = np.random.default_rng(0).poisson(9.0, (6, 5, 8, 8)).astype(np.uint16)
        >>> s = tw.from_array(data, scan_step_A=0.4, mrad_per_px=2.0)
        >>> session = tw.TDMSession.from_columns(s, {"A": [[1, 1], [4, 3]]}, show_progressbar=False)
        >>> session.set_detector_region((0, 6))             # r < 6 mrad = 3 px
        >>> session.mask_array()[:, 0, 0].tolist()          # a corner, 11 mrad out
        [0.0, 0.0]
        """
        self._det = resolve_detector_region(detector_region, self.det_shape,
                                            self.calibration)
        self.detector_region = detector_region

    @property
    def engine(self) -> TDMEngine:
        """The array engine, made (one pass) on first use."""
        if self._engine is None:
            stack = np.stack(self._pending) if self._pending else None
            self._engine = TDMEngine(self.data, stack, region=self._region,
                                     show_progressbar=self.progress)
            self._pending = []
        return self._engine

    @property
    def stats(self):
        """Column statistics of the reference region (the one pass, made once)."""
        return self.engine.stats

    # --- results ---------------------------------------------------------------
    def _provenance(self, operation: str, **extra) -> dict:
        return provenance(operation, self.source, names=self.names,
                          templates=self.templates, normalization=self.normalization,
                          region=self._region, region_bits=None if self._region is None
                          else packed_bits(self._region),
                          detector_region=describe_detector_region(self.detector_region),
                          n_positions=self.stats.n,
                          n_zero_variance=self.stats.n_zero_variance, **extra)

    def mask_array(self, names=None, whole_detector: bool = False) -> np.ndarray:
        """The masks of the named templates as a plain array (no pass beyond the
        statistics, made once).

        Parameters
        ----------
        names : sequence of str, optional
            Template names, in the order wanted; all (:attr:`names`) if None.
        whole_detector : bool
            Ignore the detector region: every pixel correlated, as in Fig 2d.

        Returns
        -------
        ndarray
            ``(k, det_y, det_x)`` float64 masks: correlation coefficients in [-1, 1]
            [dimensionless] for ``normalization="pcc"`` (Eq 5), divided by each
            pixel's mean [1 / data unit] for ``"pcc_over_mean"`` (Eq 7); 0 outside
            the detector region and at zero-variance pixels.

        Raises
        ------
        ValueError
            For an unknown name.

        Examples
        --------
        >>> data = np.random.default_rng(0).poisson(9.0, (6, 5, 8, 8)).astype(np.uint16)
        >>> s = tw.from_array(data, scan_step_A=0.4, mrad_per_px=2.0)
        >>> session = tw.TDMSession.from_columns(s, {"A": [[1, 1], [4, 3]]},
        ...                                      show_progressbar=False)
        >>> m = session.mask_array(["A"])
        >>> m.shape, bool(np.abs(m).max() <= 1)
        ((1, 8, 8), True)
        """
        names = self._names_arg(names)
        det = None if whole_detector else self._det
        m = self.engine.masks(self.normalization, det)
        if det is not None and not np.any(self.stats.valid & det):
            given = (f"{self.detector_region!r} " if not isinstance(self.detector_region,
                                                                   np.ndarray) else "")
            raise ValueError(f"detector_region {given}holds no detector "
                             f"pixel that varies over the scan ({int(det.sum())} pixels, "
                             "all constant, e.g. outside the camera's signal): its masks "
                             "would be zero")
        return m[[self._index(n) for n in names]]

    def image_array(self, names=None, normalized: bool = False) -> np.ndarray:
        """TDM images of the named templates as a plain array (one pass): what
        :meth:`images` wraps, without the signal and its provenance (for a widget's
        redraw).

        Parameters
        ----------
        names : sequence of str, optional
            Template names, in the order wanted; all (:attr:`names`) if None.
        normalized : bool
            Eq 6 instead of Eq 2.

        Returns
        -------
        ndarray
            ``(k, scan_y, scan_x)`` float64 images [data units for Eq 2;
            dimensionless for Eq 6 with Eq 5 masks]; computed for lazy data.

        Examples
        --------
        >>> data = np.random.default_rng(0).poisson(9.0, (6, 5, 8, 8)).astype(np.uint16)
        >>> s = tw.from_array(data, scan_step_A=0.4, mrad_per_px=2.0)
        >>> session = tw.TDMSession.from_columns(s, {"A": [[1, 1], [4, 3]]},
        ...                                      show_progressbar=False)
        >>> img = session.image_array(["A"])
        >>> bool(np.allclose(img, session.images(["A"]).data))
        True
        """
        names = self._names_arg(names)
        m = self.mask_array(names)
        off = np.zeros(len(names))
        if normalized:
            m, off = physical_weights(m, self.stats)
        img = apply_masks(self.data, m, progress=self.progress)
        if hasattr(img, "compute"):
            from .core.blocks import compute_with_progress

            (img,) = compute_with_progress(img, progress=self.progress)
        return np.asarray(img) + off[:, None, None]

    def masks(self, names=None, squeeze: bool = False):
        """Calibrated, named masks; no pass beyond the statistics (made once).

        Parameters
        ----------
        names : sequence of str, optional
            Template names, in the order wanted; all if None.
        squeeze : bool
            For a single name, return one ``(det_y, det_x)`` mask instead of a stack
            of one.

        Returns
        -------
        hyperspy.signals.Signal2D
            ``(k, det_y, det_x)`` (or ``(det_y, det_x)``) masks, values as
            :meth:`mask_array` ([dimensionless] for Eq 5, [1 / data unit] for Eq 7),
            detector axes in [mrad] when calibrated; ``metadata.TDM.names`` lists the
            templates and ``metadata.TDM`` records the provenance. The masks keep the
            session's statistics, so ``tw.apply_mask(s, masks, normalized=True)``
            needs no second statistics pass.

        Raises
        ------
        ValueError
            For an unknown name.

        Examples
        --------
        >>> data = np.random.default_rng(0).poisson(9.0, (6, 5, 8, 8)).astype(np.uint16)
        >>> s = tw.from_array(data, scan_step_A=0.4, mrad_per_px=2.0)
        >>> session = tw.TDMSession.from_columns(s, {"A": [[1, 1], [4, 3]]}, show_progressbar=False)
        >>> masks = session.masks()
        >>> masks.data.shape, masks.metadata.TDM.names, masks.axes_manager[-1].units
        ((2, 8, 8), ['A', 'all'], 'mrad')
        >>> session.masks(["A"], squeeze=True).data.shape
        (8, 8)
        """
        names = self._names_arg(names)
        m = self.mask_array(names)
        sig = wrap_detector_images(m[0] if squeeze and len(names) == 1 else m,
                                   self.calibration, f"TDM mask ({self.normalization})",
                                   self._provenance("pcc_mask", names_shown=names),
                                   stack_name=self.stack_name, names=names)
        remember_statistics(sig, self.data, self.stats)
        return sig

    def images(self, names=None, virtual: dict | None = None, normalized: bool = False,
               compute: bool = True):
        """Images of the TDM masks and of virtual annular detectors, in one pass.

        Parameters
        ----------
        names : sequence of str, optional
            Templates whose images to make (all if None; ``[]`` for none).
        virtual : dict of str to (float, float), optional
            Virtual detectors, name to ``(inner_mrad, outer_mrad)``, applied in the
            same pass.
        normalized : bool
            TDM images by Eq 6 (the masks on the column-normalised data) instead
            of Eq 2.
        compute : bool
            Compute lazy results (False keeps them lazy).

        Returns
        -------
        hyperspy.signals.Signal2D
            ``(k, scan_y, scan_x)`` images, the templates' first and then the virtual
            detectors', scan axes in [A] when calibrated; ``metadata.TDM.names`` lists
            them. Virtual images are sums of the data [data units]; TDM images by Eq 2
            are the data times the mask, so [data units] for "pcc" masks and
            [dimensionless] for "pcc_over_mean"; by Eq 6 (standardised data) they
            take the mask's unit: [dimensionless] for "pcc", [1 / data unit] for
            "pcc_over_mean".
            Lazy with ``compute=False`` and lazy data.

        Raises
        ------
        ValueError
            For no template name and no virtual detector, or an unknown name.

        Examples
        --------
        >>> data = np.random.default_rng(0).poisson(9.0, (6, 5, 8, 8)).astype(np.uint16)
        >>> s = tw.from_array(data, scan_step_A=0.4, mrad_per_px=2.0)
        >>> session = tw.TDMSession.from_columns(s, {"A": [[1, 1], [4, 3]]}, show_progressbar=False)
        >>> img = session.images(virtual={"BF": (0, 4), "ADF": (6, 20)})
        >>> img.data.shape, img.metadata.TDM.names, img.axes_manager[-1].units
        ((4, 6, 5), ['A', 'all', 'BF', 'ADF'], 'Å')
        >>> session.images(["A"], normalized=True).metadata.TDM.parameters.equation
        'Eq 6'
        """
        names = self._names_arg(names)
        virtual = dict(virtual or {})
        all_names = names + list(virtual)
        twice = sorted({n for n in all_names if all_names.count(n) > 1})
        if twice:
            raise ValueError(f"image names must differ: {twice} asked for twice (a virtual "
                             "detector named like a template?)")
        weights, offsets = [], []
        if names:
            m = self.mask_array(names)
            if normalized:
                m, off = physical_weights(m, self.stats)
            else:
                off = np.zeros(len(names))
            weights.append(m)
            offsets.append(off)
        for inner, outer in virtual.values():
            weights.append(detector_annulus(self.calibration, self.det_shape, inner,
                                            outer)[None].astype(float))
            offsets.append(np.zeros(1))
        if not weights:
            raise ValueError("images needs at least one template name or virtual detector")
        w = np.concatenate(weights)
        off = np.concatenate(offsets)
        key = hashlib.sha256(w.tobytes() + off.tobytes()).digest()
        if compute and self._last_images is not None and self._last_images[0] == key:
            img = self._last_images[1].copy()  # the same weights: no pass
        else:
            img = apply_masks(self.data, w, progress=self.progress)
            img = img + off[:, None, None]
            if compute and hasattr(img, "compute"):
                from .core.blocks import compute_with_progress

                (img,) = compute_with_progress(img, progress=self.progress)
            if compute:
                self._last_images = (key, np.array(img, copy=True))
        meta = self._provenance("images", images=all_names, normalized=bool(normalized),
                                equation="Eq 6" if normalized else "Eq 2",
                                virtual={k: [float(a), float(b)] for k, (a, b) in virtual.items()})
        return wrap_scan_images(img, self.calibration, "TDM and virtual images", meta,
                                stack_name="image", names=all_names)

    def cross_validated(self, split: str = "dose", names=None, normalized: bool = False,
                        seed: int = 0, fit_region=None):
        """Cross-validated images of the named templates: the masks never see the
        data they image (see :func:`tdm_widgets.cross_validated_image`).

        The session's normalisation and detector region are used; its reference
        region and kept statistics are not (two passes for ``split="dose"``, one
        statistics pass and one image pass for ``split="cells"``).

        Parameters
        ----------
        split : {"dose", "cells"}
            Binomial thinning of the counts (integer data only), or a split of the
            scan positions.
        names : sequence of str, optional
            Template names; all if None.
        normalized : bool
            Eq 6 instead of Eq 2.
        seed : int
            Seed of the thinning (``split="dose"``).
        fit_region : ndarray of bool, optional
            ``split="cells"``: the positions that fit the masks (default the left
            half of the scan); the images are judged on the others.

        Returns
        -------
        hyperspy.signals.Signal2D
            ``(k, scan_y, scan_x)`` images (a stack even for one name), units as
            :meth:`images` (with ``split="dose"`` each half holds about half the
            counts, so Eq 2 images are at half the dose [data units]), scan axes in
            [A] when calibrated; ``metadata.TDM.names`` lists them and
            ``metadata.TDM.held_out`` is the boolean ``(scan_y, scan_x)`` array of
            positions not used to fit the masks.

        Examples
        --------
        >>> data = np.random.default_rng(0).poisson(9.0, (6, 5, 8, 8)).astype(np.uint16)
        >>> s = tw.from_array(data, scan_step_A=0.4, mrad_per_px=2.0)
        >>> session = tw.TDMSession.from_columns(s, {"A": [[1, 1], [4, 3]]}, show_progressbar=False)
        >>> cv = session.cross_validated(split="cells")
        >>> cv.data.shape, cv.metadata.TDM.names, int(cv.metadata.TDM.held_out.sum())
        ((2, 6, 5), ['A', 'all'], 18)
        """
        from .cross_validation import cross_validated_image

        names = self._names_arg(names)
        templates = self.templates
        t = np.stack([templates[n] for n in names])
        sig = self.signal if self.signal is not None else self.data
        return cross_validated_image(sig, t, split=split, normalization=self.normalization,
                                     detector_region=self._det, fit_region=fit_region,
                                     normalized=normalized, seed=seed,
                                     show_progressbar=self.progress, names=names)

    def column_stats(self):
        """The column statistics of the reference region (see
        :func:`tdm_widgets.column_stats`); no pass beyond the one the session makes
        once.

        Returns
        -------
        hyperspy.signals.Signal2D
            ``(2, det_y, det_x)``: the per-pixel mean and population standard
            deviation over the reference positions [data units], named ``mean`` and
            ``std`` in ``metadata.TDM.names``; the std is 0 at zero-variance pixels.
            Detector axes in [mrad] when calibrated; ``metadata.TDM.n_positions``
            counts the positions used.

        Examples
        --------
        >>> data = np.random.default_rng(0).poisson(9.0, (6, 5, 8, 8)).astype(np.uint16)
        >>> s = tw.from_array(data, scan_step_A=0.4, mrad_per_px=2.0)
        >>> session = tw.TDMSession.from_columns(s, {"A": [[1, 1], [4, 3]]}, show_progressbar=False)
        >>> stats = session.column_stats()
        >>> stats.data.shape, stats.metadata.TDM.names, stats.metadata.TDM.n_positions
        ((2, 8, 8), ['mean', 'std'], 30)
        """
        return column_stats_signal(self.stats, self.calibration, provenance(
            "column_stats", self.source, region=self._region,
            n_zero_variance=self.stats.n_zero_variance))

    def export_weighted_detector(self, name: str, path) -> dict:
        """Write the mask of template ``name`` as a physical weighted detector (Eq 6),
        see :func:`tdm_widgets.export_weighted_detector`; uses the session's
        statistics (no pass).

        Parameters
        ----------
        name : str
            Template name.
        path : str or Path
            Prefix: writes ``PATH.npy`` (float64), ``PATH.tif`` (float32) and
            ``PATH.json`` (offsets and provenance).

        Returns
        -------
        dict
            ``"weights"``: ndarray ``(1, det_y, det_x)`` float64 [1 / data unit] for
            a "pcc" mask; ``"offset"``: list of one float [dimensionless], so that
            ``sum(D * weights) + offset`` is the Eq 6 image.

        Examples
        --------
        >>> import pathlib, tempfile
        >>> data = np.random.default_rng(0).poisson(9.0, (6, 5, 8, 8)).astype(np.uint16)
        >>> s = tw.from_array(data, scan_step_A=0.4, mrad_per_px=2.0)
        >>> session = tw.TDMSession.from_columns(s, {"A": [[1, 1], [4, 3]]}, show_progressbar=False)
        >>> prefix = pathlib.Path(tempfile.mkdtemp()) / "A"
        >>> det = session.export_weighted_detector("A", prefix)
        >>> det["weights"].shape, sorted(f.name for f in prefix.parent.iterdir())
        ((1, 8, 8), ['A.json', 'A.npy', 'A.tif'])
        """
        from .live import export_weighted_detector

        return export_weighted_detector(self.masks([name], squeeze=True), self.stats, path)

    def save(self, folder, normalized: bool = False, virtual: dict | None = None,
             split: str | None = None, seed: int = 0, record: dict | None = None) -> Path:
        """Write the masks, images, positions and provenance to a folder.

        Writes ``masks.hspy`` (:meth:`masks`), ``images.hspy`` (:meth:`images` of
        every template and the virtual detectors, or :meth:`cross_validated`),
        ``positions.json`` (when made from columns) and ``session.json``
        (provenance). The input file is never written: a file that would overwrite it
        is refused (the input's own folder is fine). Virtual images are written only
        when ``virtual`` names them here, also after :meth:`images` made them.

        Parameters
        ----------
        folder : str or Path
            Output folder, made if missing; files an earlier save wrote there are
            overwritten, a ``positions.json`` of the user's (not written by a save) is
            not.
        normalized : bool
            TDM images by Eq 6 instead of Eq 2.
        virtual : dict of str to (float, float), optional
            Virtual detectors to image too, name to ``(inner_mrad, outer_mrad)``
            [mrad].
        split : {None, "dose", "cells"}
            Save cross-validated images (:meth:`cross_validated`) instead of
            same-data ones.
        seed : int
            Seed of a dose split.
        record : dict, optional
            Extra provenance written into ``metadata.TDM.parameters`` of every file
            and into ``session.json`` (e.g. a widget's settings; arrays are recorded
            by shape and checksum).

        Returns
        -------
        pathlib.Path
            The folder.

        Raises
        ------
        ValueError
            When a file to write would overwrite the input file.

        Examples
        --------
        >>> import tempfile
        >>> data = np.random.default_rng(0).poisson(9.0, (6, 5, 8, 8)).astype(np.uint16)
        >>> s = tw.from_array(data, scan_step_A=0.4, mrad_per_px=2.0)
        >>> session = tw.TDMSession.from_columns(s, {"A": [[1, 1], [4, 3]]},
        ...                                      show_progressbar=False)
        >>> out = session.save(tempfile.mkdtemp(), virtual={"BF": (0, 4)})
        >>> sorted(f.name for f in out.iterdir())
        ['images.hspy', 'masks.hspy', 'positions.json', 'session.json']
        """
        folder = Path(folder)
        targets = [folder / f for f in ("masks.hspy", "images.hspy", "session.json")]
        if self.columns is not None:
            targets.append(folder / "positions.json")
        refuse_overwriting_input(targets, self.source)
        _refuse_foreign_positions(folder / "positions.json")
        extra = provenance("save", None, **(record or {}))["parameters"]
        base = self._provenance("save", normalized=bool(normalized), split=split)
        clash = set(extra) & (set(base["parameters"]) | {"names_shown", "images", "equation",
                                                         "virtual"})
        if clash:
            raise ValueError(f"record may not redefine what the session records: "
                             f"{sorted(clash)}")
        base["parameters"].update(extra)
        folder.mkdir(parents=True, exist_ok=True)
        masks = self.masks()
        if split in (None, "none"):
            images = self.images(normalized=normalized, virtual=virtual)
        elif virtual:
            raise ValueError("virtual detectors are not cross-validated: save them with "
                             "split=None")
        else:
            images = self.cross_validated(split, normalized=normalized, seed=seed)
        for sig in (masks, images):
            for key, value in extra.items():
                sig.metadata.set_item(f"TDM.parameters.{key}", value)
        for sig, fname in ((masks, "masks.hspy"), (images, "images.hspy")):
            sig.save(folder / fname, overwrite=True)
        if self.columns is not None:
            from .positions import save_positions

            save_positions(folder / "positions.json",
                           {n: np.round(p, 6) for n, p in self.columns.items()},
                           scan_shape=self.scan_shape, written_by=SAVED_BY)
        (folder / "session.json").write_text(json.dumps(base, indent=1, default=str))
        return folder
