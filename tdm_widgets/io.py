"""Reading 4D-STEM data into HyperSpy signals with calibrated axes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .core.validate import check_data


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
    """
    import hyperspy.api as hs

    check_data(array)
    lazy = hasattr(array, "dask")
    s = hs.signals.Signal2D(array)
    if lazy:
        s = s.as_lazy()
    sy, sx, dy, dx = array.shape
    cy, cx = (dy // 2, dx // 2) if center_px is None else center_px
    axes = s.axes_manager
    ny, nx = axes.navigation_axes[1], axes.navigation_axes[0]
    ky, kx = axes.signal_axes[1], axes.signal_axes[0]
    ny.name, nx.name, ky.name, kx.name = "y", "x", "ky", "kx"
    if scan_step_A is not None:
        st = np.broadcast_to(np.asarray(scan_step_A, float), (2,))
        if (st <= 0).any():
            raise ValueError(f"scan_step_A must be positive; got {scan_step_A}")
        for ax, v in zip((ny, nx), st):
            ax.scale, ax.units = float(v), "Å"
    if mrad_per_px is not None:
        mp = np.broadcast_to(np.asarray(mrad_per_px, float), (2,))
        if (mp <= 0).any():
            raise ValueError(f"mrad_per_px must be positive; got {mrad_per_px}")
        for ax, v, c in zip((ky, kx), mp, (cy, cx)):
            ax.scale, ax.offset, ax.units = float(v), -float(c) * float(v), "mrad"
    s.metadata.General.title = title
    return s


def load(path, lazy: bool = False, dose_e_per_A2: float | None = None, seed: int = 0,
         **kwargs):
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
    **kwargs
        Passed to :func:`hyperspy.api.load` (e.g. ``navigation_shape=(4, 2)`` for
        Merlin ``.mib``).

    Returns
    -------
    hyperspy.signals.Signal2D
        Navigation = scan, signal = detector, with the file's calibrations (scan in
        angstrom and detector in mrad where the file records them). A simulated
        series keeps its extra navigation axes (thickness, defocus); pick a member
        with :func:`tdm_widgets.simulate.select` or ``s.inav``.
    """
    import hyperspy.api as hs

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
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
        except ValueError as err:
            raise ValueError(f"could not read {path} as a .npy array: {err}") from err
        if lazy:
            import dask.array as da

            arr = da.from_array(arr, chunks=(8, -1, -1, -1) if arr.ndim == 4 else "auto")
        else:
            arr = np.array(arr)
        if np.ndim(arr) != 4:
            raise ValueError(f"{path} holds a {np.ndim(arr)}D array of shape "
                             f"{np.shape(arr)}; 4D (scan_y, scan_x, det_y, det_x) expected")
        s = from_array(arr, title=path.stem)
        s.metadata.General.original_filename = path.name
    else:
        try:
            s = hs.load(str(path), lazy=lazy, **kwargs)
        except Exception as err:  # the readers raise many types for corrupt files
            raise ValueError(f"could not read {path}: {type(err).__name__}: {err}") from err
        if isinstance(s, list):
            four_d = [x for x in s if x.axes_manager.navigation_dimension == 2
                      and x.axes_manager.signal_dimension == 2]
            if len(four_d) != 1:
                raise ValueError(f"{path} holds {len(s)} signals, {len(four_d)} of them "
                                 "4D; load it with hyperspy and pass the one you want")
            s = four_d[0]
        am = s.axes_manager
        if am.navigation_dimension < 2 or am.signal_dimension != 2:
            raise ValueError(
                f"{path} is not 4D scan x detector data: navigation dimension "
                f"{am.navigation_dimension}, signal dimension {am.signal_dimension}")
    if dose_e_per_A2 is not None:
        from .noise import add_poisson_noise

        s = add_poisson_noise(s, dose_e_per_A2, seed=seed)
    return s
