"""Reading 4D-STEM data into HyperSpy signals with calibrated axes."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .core.checks import check_data
from .core.records import SCAN_AXES, SCAN_UNITS, axes_4d

logger = logging.getLogger(__name__)

#: Size of one chunk of a lazily loaded ``.mib`` [bytes, as stored]: whole scan rows
#: of whole patterns (a part of a row when one row is larger).
MIB_CHUNK_BYTES = 32 * 2**20


def _positive_pair(value, name: str) -> np.ndarray:
    """One positive finite value or a (y, x) pair of them, as two floats."""
    try:
        v = np.broadcast_to(np.asarray(value, float), (2,))
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number or a (y, x) pair; got "
                         f"{value!r}") from None
    if not (np.isfinite(v).all() and (v > 0).all()):
        raise ValueError(f"{name} must be positive and finite; got {value!r}")
    return v


def set_scan_step(s, scan_step_A) -> None:
    """Set the scan axes of a 4D signal to ``scan_step_A`` [angstrom], one value or
    (y, x), in place. The origin keeps its place in scan steps (a scan cropped at
    position 10 starts at 10 steps)."""
    st = _positive_pair(scan_step_A, "scan_step_A")
    nx, ny = s.axes_manager.navigation_axes[:2]
    for ax, name, v in zip((ny, nx), SCAN_AXES, st):
        first = float(ax.offset) / float(ax.scale) if ax.scale else 0.0  # [steps]
        ax.name, ax.scale, ax.offset, ax.units = name, float(v), first * float(v), SCAN_UNITS


def mib_frames(path) -> tuple[int, tuple[int, int], np.dtype]:
    """Frames in a Merlin ``.mib`` file, the detector shape (y, x) and the stored dtype,
    from the first frame header and the file size (a partial last frame is not counted).
    """
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(768).split(b",")
    try:
        if head[0] != b"MQ1":
            raise ValueError("no MQ1 frame header")
        header_bytes = int(head[2])
        width, height = int(head[4]), int(head[5])
        dtype = np.dtype({b"U08": ">u1", b"U16": ">u2", b"U32": ">u4"}[head[6]])
    except (IndexError, KeyError, ValueError) as err:
        raise ValueError(f"could not read {path} as a Merlin .mib: unrecognised frame "
                         f"header ({err})") from None
    frame = header_bytes + width * height * dtype.itemsize
    n, rest = divmod(path.stat().st_size, frame)
    if rest:
        logger.warning("%s ends with %d bytes of a partial frame (an interrupted "
                       "acquisition?): %d whole frames are read, the rest is ignored",
                       path.name, rest, n)
    return n, (height, width), dtype


def _load_mib(path: Path, lazy: bool, navigation_shape, **kwargs):
    """A Merlin ``.mib`` as 4D, its frame count checked against the navigation shape."""
    n_file, det, dtype = mib_frames(path)
    # RosettaSciIO's first_frame / last_frame read part of the file (e.g. the whole scan
    # rows of an interrupted acquisition): the navigation shape must hold those frames
    part = slice(kwargs.get("first_frame"), kwargs.get("last_frame"))
    n = len(range(*part.indices(n_file)))
    where = (f"{path.name} holds {n_file} frames of {det[1]} x {det[0]} px"
             + (f" ({n} of them in first_frame={part.start}, last_frame={part.stop})"
                if n != n_file else ""))
    if navigation_shape is not None:
        try:
            nav = tuple(int(v) for v in navigation_shape)
        except (TypeError, ValueError):
            nav = ()
        if len(nav) != 2 or min(nav) < 1 or nav != tuple(navigation_shape):
            raise ValueError(f"navigation_shape must be two positive integers "
                             f"(scan_x, scan_y); got {navigation_shape!r}")
        if nav[0] * nav[1] != n:
            rows = n // nav[0]
            hint = (f"; an interrupted acquisition? Its {rows} whole scan rows are "
                    f"navigation_shape=({nav[0]}, {rows}), last_frame="
                    f"{(part.start or 0) + rows * nav[0]}" if 0 < rows and n % nav[0] else "")
            raise ValueError(
                f"navigation_shape={nav} (scan_x, scan_y) holds {nav[0] * nav[1]} frames "
                f"but {where}: no frame is dropped or invented, so give the frames per "
                f"scan row and the scan rows of the file, or read part of it with "
                f"first_frame / last_frame{hint}")
    else:
        probe = hs_load(path, lazy=True, note_type=False, **kwargs)  # the load says it
        shape = probe.data.shape
        if len(shape) == 4 and shape[0] * shape[1] < n and part == slice(None, None):
            raise ValueError(
                f"{path.name} holds {n} frames, but the scan its .hdr and time stamps give "
                f"has {shape[0]} whole rows of {shape[1]} ({shape[0] * shape[1]} frames; "
                f"an interrupted acquisition?): read those with "
                f"navigation_shape=({shape[1]}, {shape[0]}), "
                f"last_frame={shape[0] * shape[1]}, or pass the navigation_shape "
                "(scan_x, scan_y) of all the frames")
        if len(shape) != 4 or shape[0] * shape[1] != n:
            raise ValueError(
                f"the navigation shape of {path.name} cannot be inferred from the file "
                f"(the reader found {shape[:-2]}, {where}): pass "
                "navigation_shape=(scan_x, scan_y)")
        nav = (shape[1], shape[0])
        if not path.with_suffix(".hdr").exists():
            logger.warning("%s has no .hdr beside it: the scan shape %s (scan_x, scan_y) "
                           "is the reader's guess from the time stamps or a square; pass "
                           "navigation_shape if it is not", path.name, nav)
    if lazy:
        kwargs.setdefault("chunks", scan_chunks(nav[::-1] + tuple(det), dtype,
                                                MIB_CHUNK_BYTES))
    s = hs_load(path, lazy=lazy, navigation_shape=nav, **kwargs)
    if s.axes_manager.navigation_dimension == 1:  # a line scan: the reader drops the 1
        s = _with_navigation(s, nav)
    return s


def _with_navigation(s, nav):
    """``s`` (navigation flattened to one axis) with the 2D scan ``nav = (scan_x,
    scan_y)`` again, its detector calibration and metadata kept."""
    import hyperspy.api as hs

    det_axes = [a.get_axis_dictionary() for a in s.axes_manager.signal_axes[::-1]]
    data = s.data.reshape(nav[1], nav[0], *s.data.shape[-2:])
    scan = [{"name": n, "size": int(k), "navigate": True} for n, k in zip(SCAN_AXES, data.shape)]
    cls = hs.signals.LazySignal2D if getattr(s, "_lazy", False) else hs.signals.Signal2D
    return cls(data, axes=scan + det_axes, metadata=s.metadata.as_dictionary(),
               original_metadata=s.original_metadata.as_dictionary())


class _SignalTypeNotUnderstood(logging.Filter):
    """Holds back HyperSpy's "`signal_type='...'` not understood" warning while the
    toolkit loads a file (see :func:`hs_load`)."""

    def __init__(self):
        super().__init__()
        self.held = []

    def filter(self, record):
        if "not understood" in record.getMessage():
            self.held.append(record.getMessage())
            return False
        return True


class NpyFile:
    """A ``.npy`` file that dask reads chunk by chunk (each read maps the file and copies
    out the chunk): a lazy array that holds no data, which a dask.distributed worker
    opens again by its path. (dask copies a whole memory map given to
    ``da.from_array``.)

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "x.npy")
    >>> np.save(path, np.arange(24.0).reshape(2, 3, 2, 2))
    >>> NpyFile(path, (2, 3, 2, 2), np.float64)[1, 2].tolist()
    [[20.0, 21.0], [22.0, 23.0]]
    """

    def __init__(self, path, shape, dtype):
        self.path, self.shape, self.dtype = str(path), tuple(shape), np.dtype(dtype)
        self.ndim = len(self.shape)

    def __getitem__(self, key):
        return np.array(np.load(self.path, mmap_mode="r")[key])


def scan_chunks(shape, dtype, chunk_bytes: int) -> tuple[int, int, int, int]:
    """Chunks of whole patterns of about ``chunk_bytes`` [bytes, as stored]: whole scan
    rows where a row fits, else part of one row.

    Examples
    --------
    >>> scan_chunks((256, 256, 128, 128), np.uint16, 2**26)    # 32 KiB patterns: 8 rows
    (8, 256, 128, 128)
    >>> scan_chunks((256, 256, 512, 512), np.uint16, 2**26)    # 512 KiB: half a row
    (1, 128, 512, 512)
    """
    per_chunk = max(1, chunk_bytes // (shape[2] * shape[3] * np.dtype(dtype).itemsize))
    if per_chunk >= shape[1]:
        return (min(shape[0], per_chunk // shape[1]), shape[1], shape[2], shape[3])
    return (1, per_chunk, shape[2], shape[3])


def _scan_by_detector(s, path: Path):
    """A signal with four signal axes and no navigation axis (a 4D EMD as py4DSTEM
    writes it) as scan x detector: the first two array axes the scan, the last two the
    detector (no copy); any other signal unchanged."""
    am = s.axes_manager
    if am.navigation_dimension != 0 or am.signal_dimension != 4:
        return s
    logger.info("%s: 4 signal axes and no navigation axis; the first two array axes "
                "are taken as the scan, the last two as the detector", path.name)
    return s.transpose(signal_axes=2)


def hs_load(path: Path, *, note_type: bool = True, **kwargs):
    """:func:`hyperspy.api.load`, its many exception types for corrupt files turned into
    ``ValueError("could not read PATH: ...")``.

    A file whose signal type no installed HyperSpy extension provides (a Merlin
    ``.mib`` says ``"electron_diffraction"``, which pyxem provides) is read as a plain
    Signal2D, which is all this toolkit needs; HyperSpy's "not understood" warning is
    replaced by one INFO line on the ``tdm_widgets.io`` logger, and the type stays in
    ``metadata.Signal.signal_type`` (results on the detector keep it).
    """
    import hyperspy.api as hs

    held = _SignalTypeNotUnderstood()
    hs_logger = logging.getLogger("hyperspy.io")
    hs_logger.addFilter(held)
    try:
        s = hs.load(str(path), **kwargs)
    except Exception as err:
        message = f"could not read {path}: {type(err).__name__}: {err}"
        if Path(path).suffix.lower() == ".zspy" and _zarr_major() >= 3:
            message += (" (HyperSpy's .zspy needs zarr < 3 with RosettaSciIO "
                        f"{_version('rosettasciio')}; this environment has zarr "
                        f"{_version('zarr')}: see the README, 'Install')")
        raise ValueError(message) from err
    finally:
        hs_logger.removeFilter(held)
    if held.held and note_type:
        for sig in s if isinstance(s, list) else [s]:
            t = sig.metadata.get_item("Signal.signal_type", "")
            logger.info("%s: signal_type %r is provided by no installed HyperSpy extension "
                        "(pyxem provides 'electron_diffraction'); read as %s, which is all "
                        "tdm_widgets needs", Path(path).name, t, type(sig).__name__)
    return s


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "(not installed)"


def _zarr_major() -> int:
    try:
        return int(_version("zarr").split(".")[0])
    except ValueError:
        return 0


def from_array(array, scan_step_A: float | tuple[float, float] | None = None,
               mrad_per_px: float | tuple[float, float] | None = None,
               center_px: tuple[float, float] | None = None, title: str = ""):
    """Wrap a 4D array ``(scan_y, scan_x, det_y, det_x)`` as a HyperSpy Signal2D.

    Parameters
    ----------
    array : ndarray or dask.array.Array
        The data; a dask array gives a lazy signal. Not copied.
    scan_step_A : float or tuple of float, optional
        Scan step [angstrom], one value or (y, x). Scan axes in px if None.
    mrad_per_px : float or tuple of float, optional
        Detector pixel size [mrad], one value or (y, x). Detector in px if None.
    center_px : tuple of float, optional
        (y, x) detector pixel of the optical axis (0 mrad); default ``(det_y // 2,
        det_x // 2)``, the FFT convention of simulated patterns.
    title : str
        Signal title.

    Returns
    -------
    hyperspy.signals.Signal2D or LazySignal2D
        Navigation = scan (axes in [A] when ``scan_step_A`` is given, else [px]),
        signal = detector ([mrad] when ``mrad_per_px`` is given, else [px]); the
        values are the array's [data units].

    Examples
    --------
    >>> data = np.zeros((8, 6, 16, 16), np.uint16)
    >>> s = tw.from_array(data, scan_step_A=0.5, mrad_per_px=2.0)
    >>> s.axes_manager.signal_shape, s.axes_manager[0].units, s.axes_manager[2].offset
    ((16, 16), 'Å', -16.0)
    """
    import hyperspy.api as hs

    check_data(array)
    if center_px is not None and not (np.shape(center_px) == (2,)
                                      and np.all(np.isfinite(center_px))):
        raise ValueError(f"center_px must be two finite numbers (y, x) [px]; got {center_px!r}")
    steps = [None if v is None else _positive_pair(v, name)
             for v, name in ((scan_step_A, "scan_step_A"), (mrad_per_px, "mrad_per_px"))]
    s = hs.signals.Signal2D(array, axes=axes_4d(array.shape, *steps, center_px))
    if hasattr(array, "dask"):
        s = s.as_lazy()
    s.metadata.General.title = title
    return s


def load(path, lazy: bool = False, dose_e_per_A2: float | None = None, seed: int = 0,
         navigation_shape=None, scan_step_A=None, **kwargs):
    """Load 4D-STEM data from any 4D format RosettaSciIO reads, ``.npy``, or a plain
    4D ``.zarr`` array (chunked along the scan for out-of-core work).

    Parameters
    ----------
    path : str or Path
        File to read; it is opened read-only and never modified.
    lazy : bool
        Return a lazy (dask) signal.
    dose_e_per_A2 : float, optional
        Turn noise-free intensities into Poisson counts at this dose
        [electrons / angstrom^2] (see :func:`tdm_widgets.add_poisson_noise`).
    seed : int
        Seed of the Poisson noise.
    navigation_shape : tuple of int, optional
        ``(scan_x, scan_y)`` of a file that stores a flat list of frames (Merlin
        ``.mib``): frames per scan row first, as RosettaSciIO counts them, so the data
        comes back as ``(scan_y, scan_x, det_y, det_x)``. Its product must equal the
        frames in the file (``ValueError`` naming ``navigation_shape`` otherwise: no
        frame is dropped). If None, the shape comes from the file where the reader can
        infer it (the ``.hdr`` and the time stamps of the scan-row fly-back), and the
        inferred shape is checked the same way.
    scan_step_A : float or tuple of float, optional
        Scan step [angstrom], one value or (y, x): sets the scan axes.
    **kwargs
        Passed to :func:`hyperspy.api.load`. A lazy ``.mib`` gets chunks of whole
        patterns and whole scan rows (about :data:`MIB_CHUNK_BYTES`) unless ``chunks``
        is given.

    Returns
    -------
    hyperspy.signals.Signal2D
        Navigation = scan, signal = detector, with the file's calibrations (scan in
        [A] and detector in [mrad] where the file records them). A simulated
        series keeps its extra navigation axes (thickness, defocus); pick a member
        with :func:`tdm_widgets.simulate.select` or ``s.inav``.

    Examples
    --------
    >>> s = tdm_widgets.load("scan.mib", navigation_shape=(68, 40), scan_step_A=0.2,
    ...                      lazy=True)  # doctest: +SKIP
    >>> s.data.shape                     # doctest: +SKIP
    (40, 68, 256, 256)
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if navigation_shape is not None and path.suffix.lower() in (".npy", ".zarr"):
        raise ValueError(f"navigation_shape is for files that store a flat list of "
                         f"frames (e.g. .mib); {path.name} stores its own 4D shape")
    if path.suffix.lower() == ".zarr":
        import dask.array as da

        try:
            arr = da.from_zarr(str(path))
        except Exception as err:
            raise ValueError(f"could not read {path} as a zarr array: {err}") from err
        if arr.ndim != 4:
            raise ValueError(f"{path} holds a {arr.ndim}D array; 4D expected")
        s = from_array(arr if lazy else arr.compute(), title=path.stem)
        s.metadata.General.original_filename = path.name
    elif path.suffix.lower() == ".npy":
        try:
            arr = np.load(path, mmap_mode="r")
        except (ValueError, EOFError, OSError) as err:  # EOFError: an empty file
            raise ValueError(f"could not read {path} as a .npy array: "
                             f"{type(err).__name__}: {err or 'empty file'}") from err
        if arr.ndim != 4:  # before reading anything
            raise ValueError(f"{path} holds a {arr.ndim}D array of shape "
                             f"{arr.shape}; 4D (scan_y, scan_x, det_y, det_x) expected")
        if lazy:
            import dask.array as da

            from .core.blocks import CHUNK_BYTES

            arr = da.from_array(NpyFile(path, arr.shape, arr.dtype),
                                chunks=scan_chunks(arr.shape, arr.dtype, CHUNK_BYTES),
                                meta=np.empty((0,) * 4, arr.dtype))
        else:
            arr = np.array(arr)
        s = from_array(arr, title=path.stem)
        s.metadata.General.original_filename = path.name
    elif path.suffix.lower() == ".mib":
        s = _load_mib(path, lazy, navigation_shape, **kwargs)
    elif path.suffix.lower() == ".hdr" and path.with_suffix(".mib").exists():
        raise ValueError(f"{path.name} is the header of a Merlin acquisition: load "
                         f"{path.with_suffix('.mib').name}, its data")
    else:
        if navigation_shape is not None:
            kwargs["navigation_shape"] = navigation_shape
        try:
            s = hs_load(path, lazy=lazy, **kwargs)
        except ValueError as err:  # the reader's TypeError, as hs_load words it
            if navigation_shape is None or "'navigation_shape' is an invalid" not in str(err):
                raise
            raise ValueError(f"navigation_shape is for files that store a flat list of "
                             f"frames (e.g. .mib); {path.name} stores its own shape") from None
        if isinstance(s, list):
            s = [_scan_by_detector(x, path) for x in s]
            four_d = [x for x in s if x.axes_manager.navigation_dimension == 2
                      and x.axes_manager.signal_dimension == 2]
            if len(four_d) != 1:
                raise ValueError(f"{path} holds {len(s)} signals, {len(four_d)} of them "
                                 "4D; load it with hyperspy and pass the one you want")
            s = four_d[0]
        s = _scan_by_detector(s, path)
        am = s.axes_manager
        if am.navigation_dimension < 2 or am.signal_dimension != 2:
            raise ValueError(
                f"{path} is not 4D scan x detector data: navigation dimension "
                f"{am.navigation_dimension}, signal dimension {am.signal_dimension}")
        from .simulate.bundle import assemble_detector

        s = assemble_detector(s)  # a packed bundled simulation: one detector again
    if scan_step_A is not None:
        set_scan_step(s, scan_step_A)
    # where the data came from, for every format alike (RosettaSciIO sets these for
    # its own): results are never written over it (:func:`tdm_widgets.signals.source_file`)
    s.tmp_parameters.set_item("folder", str(path.resolve().parent))
    s.tmp_parameters.set_item("filename", path.stem)
    s.tmp_parameters.set_item("extension", path.suffix)
    if dose_e_per_A2 is not None:
        from .noise import add_poisson_noise

        if np.issubdtype(s.data.dtype, np.integer):
            raise ValueError(f"dose_e_per_A2 turns noise-free simulated intensities into "
                             f"counts; {path.name} holds {s.data.dtype} counts already")
        s = add_poisson_noise(s, dose_e_per_A2, seed=seed)
    logger.info("load %s: %s %s%s", path.name, s.data.shape, s.data.dtype,
                " (lazy)" if getattr(s, "_lazy", False) else "")
    return s
