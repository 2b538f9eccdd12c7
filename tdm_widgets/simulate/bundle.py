"""The bundled-tier storage of a simulation: a fine detector centre plus a coarse ring.

A raw run (:func:`~tdm_widgets.simulate.runner.run_raw`: abTEM's native detector out to
the antialiasing limit, every exit plane, float32) is too large to commit. The packer
integrates each pattern onto a square grid of ``mrad_per_px`` pixels out to
``max_mrad`` (intensity-conserving overlap weights), keeps the pixels within
``fine_mrad`` of the axis at that sampling, and stores the rest as ``ring_factor`` x
``ring_factor`` pixel sums (only the sums outside the fine square, no zeros). The
position-averaged pattern (PACBED) of every exit plane is kept at the native
sampling; the 4D data only for the thicknesses asked for.

The file is an ordinary ``.hspy`` signal (the fine centre, calibrated in mrad) with
the ring and the layout in ``metadata.Simulation``; :func:`assemble_detector`, called
by :func:`tdm_widgets.load`, rebuilds one calibrated detector out to ``max_mrad``: the
fine centre as stored, each ring pixel's intensity spread evenly over the
``ring_factor**2`` fine pixels it covers (so ring sums and totals are exact, detail
within a ring pixel is not).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .runner import SimulationResult, detector_rebin_matrix

#: Name of the layout recorded in ``metadata.Simulation.detector_layout.kind``.
LAYOUT = "fine+ring"


def _layout(mrad_per_px: float, fine_mrad: float, max_mrad: float, ring_factor: int
            ) -> dict:
    n_full = int(round(2 * max_mrad / mrad_per_px))
    half_fine = int(round(fine_mrad / mrad_per_px))
    lo = n_full // 2 - half_fine
    if n_full % (2 * ring_factor) or lo % ring_factor or lo <= 0:
        raise ValueError(
            f"max_mrad={max_mrad} and fine_mrad={fine_mrad} must be whole multiples of "
            f"ring_factor x mrad_per_px = {ring_factor * mrad_per_px} mrad, with "
            "fine_mrad < max_mrad")
    nc = n_full // ring_factor
    inner = np.zeros((nc, nc), bool)
    inner[lo // ring_factor:(lo + 2 * half_fine) // ring_factor,
          lo // ring_factor:(lo + 2 * half_fine) // ring_factor] = True
    iy, ix = np.nonzero(~inner)
    return {"kind": LAYOUT, "mrad_per_px": float(mrad_per_px), "fine_mrad": float(fine_mrad),
            "max_mrad": float(max_mrad), "ring_factor": int(ring_factor), "n_full": n_full,
            "fine_start": lo, "n_fine": 2 * half_fine,
            "ring_index": np.stack([iy, ix]).astype(np.int32)}


def split_detector(full: np.ndarray, layout: dict) -> tuple[np.ndarray, np.ndarray]:
    """Fine centre and ring sums of patterns on the full ``mrad_per_px`` grid.

    Parameters
    ----------
    full : ndarray
        ``(..., n_full, n_full)`` patterns.
    layout : dict
        From the packer (``metadata.Simulation.detector_layout``).

    Returns
    -------
    fine : ndarray
        ``(..., n_fine, n_fine)``.
    ring : ndarray
        ``(..., n_ring)`` sums of ``ring_factor`` x ``ring_factor`` pixels outside the
        fine square.
    """
    f, lo, nf, n = (layout["ring_factor"], layout["fine_start"], layout["n_fine"],
                    layout["n_full"])
    fine = full[..., lo:lo + nf, lo:lo + nf]
    coarse = full.reshape(full.shape[:-2] + (n // f, f, n // f, f)).sum(axis=(-3, -1),
                                                                        dtype=np.float64)
    iy, ix = layout["ring_index"]
    return fine, coarse[..., iy, ix]


def _assemble_block(fine: np.ndarray, ring: np.ndarray, layout: dict) -> np.ndarray:
    f, lo, nf, n = (layout["ring_factor"], layout["fine_start"], layout["n_fine"],
                    layout["n_full"])
    iy, ix = np.asarray(layout["ring_index"])
    coarse = np.zeros(ring.shape[:-1] + (n // f, n // f), fine.dtype)
    coarse[..., iy, ix] = ring / fine.dtype.type(f * f)  # a power of 2: exact in float16
    full = np.repeat(np.repeat(coarse, f, axis=-2), f, axis=-1)
    full[..., lo:lo + nf, lo:lo + nf] = fine
    return full


def assemble_detector(s):
    """One calibrated detector from a packed bundled signal (see the module text).

    Parameters
    ----------
    s : hyperspy.signals.Signal2D
        A signal whose ``metadata.Simulation.detector_layout.kind`` is ``"fine+ring"``
        (numpy-backed or lazy); other signals are returned unchanged.

    Returns
    -------
    hyperspy.signals.Signal2D
        The stored float16 values (``metadata.Simulation.intensity_scale`` times the
        fraction of the incident beam, as in every bundled file) per ``mrad_per_px``
        pixel, detector out to ``max_mrad``, centre pixel ``n_full // 2`` at 0 mrad;
        lazy if ``s`` is. Kept in the storage format so that round-off is judged at
        the data's real precision (a ring pixel holding 0 or one float16 step is
        constant, not signal); ring sums are divided by ``ring_factor**2`` in float16,
        exactly except below the format's smallest normal number.

    Examples
    --------
    >>> s = assemble_detector(hs.load("lifepo4_thickness.hspy"))   # doctest: +SKIP
    """
    lay = s.metadata.get_item("Simulation.detector_layout")
    if lay is None or lay.get_item("kind") != LAYOUT:
        return s
    layout = lay.as_dictionary()
    ring = np.asarray(s.metadata.Simulation.ring)
    n = layout["n_full"]
    fine = s.data
    ring = ring.astype(fine.dtype)
    if hasattr(fine, "dask"):
        import dask.array as da

        lead = "abcdefgh"[:fine.ndim - 2]
        fine = fine.rechunk(fine.chunks[:-2] + ((fine.shape[-2],), (fine.shape[-1],)))
        rg = da.from_array(ring, chunks=fine.chunks[:-2] + ((ring.shape[-1],),))
        full = da.blockwise(lambda a, b: _assemble_block(a, b, layout),
                            lead + "yx", fine, lead + "yi", rg, lead + "r",
                            new_axes={"y": n, "x": n}, concatenate=True, dtype=fine.dtype)
    else:
        full = _assemble_block(np.asarray(fine), ring, layout)
    axes = s.axes_manager._get_axes_dicts()
    for ax in axes[-2:]:
        ax.update(size=n, scale=layout["mrad_per_px"], offset=-(n // 2) * layout["mrad_per_px"])
    out = s.__class__(full, axes=axes, metadata=s.metadata.as_dictionary(),
                      original_metadata=s.original_metadata.as_dictionary())
    sim = out.metadata.Simulation
    del sim.ring
    sim.detector_layout.kind = LAYOUT + " (assembled)"
    return out


def pack_raw(raw_dir, out_path, thickness_nm=None, mrad_per_px: float = 1.0,
             fine_mrad: float = 32.0, max_mrad: float = 72.0, ring_factor: int = 2,
             intensity_scale: float = 1e4, rows_per_block: int = 4, title: str = "",
             command: str = ""):
    """Pack a raw run into a bundled ``.hspy`` file (fine centre + coarse ring).

    Parameters
    ----------
    raw_dir : str or Path, or a sequence of them
        Folder written by :func:`~tdm_widgets.simulate.runner.run_raw` (``raw.npy``,
        ``meta.json``, ``done``). Several folders are runs that differ only in the
        phonon seed: their mean is the run with all their configurations (equal
        numbers each), recorded as ``num_configs`` summed and ``seeds``.
    out_path : str or Path
        ``.hspy`` file to write.
    thickness_nm : sequence of float, optional
        Exit planes [nm] whose 4D data are kept (nearest planes); all if None. The
        PACBED of every plane is kept regardless.
    mrad_per_px : float
        Pixel of the fine grid [mrad]; at most the BF-disc sampling wanted.
    fine_mrad : float
        Half-width of the fine square [mrad].
    max_mrad : float
        Half-width of the whole detector [mrad]; within the antialiasing limit.
    ring_factor : int
        Ring pixels are ``ring_factor`` x ``ring_factor`` fine pixels.
    intensity_scale : float
        Stored values are float16 intensities times this (fraction of the beam per
        pixel x ``intensity_scale``), so that high-angle values stay normal numbers.
    rows_per_block : int
        Scan rows converted at a time (the raw data is never read whole).
    title : str
        Signal title.
    command : str
        The packing command; ``metadata.Simulation.generator_command`` becomes the
        raw run's command and this one joined by ``&&``.

    Returns
    -------
    hyperspy.signals.Signal2D
        The stored signal (fine centre, float16).

    Examples
    --------
    >>> pack_raw("raw/lifepo4", "lifepo4_thickness.hspy", thickness_nm=[40, 70])  # doctest: +SKIP
    """
    from .output import to_signal

    dirs = [Path(raw_dir)] if isinstance(raw_dir, (str, Path)) else [Path(d) for d in raw_dir]
    for d in dirs:
        if not d.is_dir():
            raise ValueError(f"raw_dir {d} is not a folder (it "
                             f"{'is a file' if d.exists() else 'does not exist'})")
        if not (d / "done").exists():
            raise ValueError(f"raw_dir {d} holds no finished run (no 'done' file)")
    metas = [json.loads((d / "meta.json").read_text()) for d in dirs]
    meta = metas[0]
    seeds = [m["parameters"]["seed"] for m in metas]
    free = {"seed", "wall_seconds", "estimated_seconds", "device"}
    for m in metas[1:]:
        keys = (set(m["parameters"]) | set(meta["parameters"])) - free
        if (any(m["parameters"].get(k) != meta["parameters"].get(k) for k in keys)
                or m["shape"] != meta["shape"]):
            raise ValueError(f"raw_dir: {dirs[0]} and the others must differ only in the "
                             "phonon seed")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"raw_dir: the runs repeat a phonon seed ({seeds})")
    raws = [np.load(d / "raw.npy", mmap_mode="r") for d in dirs]
    raw = raws[0]
    ky, kx = np.asarray(meta["ky_mrad"]), np.asarray(meta["kx_mrad"])
    reach = min(np.abs(ky).max(), np.abs(kx).max())
    if max_mrad > reach:
        raise ValueError(f"max_mrad={max_mrad} is beyond the simulated detector "
                         f"({reach:.1f} mrad, the antialiasing limit)")
    layout = _layout(mrad_per_px, fine_mrad, max_mrad, ring_factor)
    n = layout["n_full"]
    all_thick = np.asarray(meta["thickness_nm"], float)
    if thickness_nm is None:
        keep = np.arange(len(all_thick))
    else:
        keep = np.unique([int(np.argmin(np.abs(all_thick - t))) for t in thickness_nm])
    ry = detector_rebin_matrix(ky, n, mrad_per_px)
    rx = detector_rebin_matrix(kx, n, mrad_per_px)
    n_def, _, sy, sx = raw.shape[:4]
    fine = np.empty((n_def, len(keep), sy, sx, layout["n_fine"], layout["n_fine"]),
                    np.float16)
    ring = np.empty((n_def, len(keep), sy, sx, layout["ring_index"].shape[1]), np.float16)
    pacbed = np.zeros((n_def, len(all_thick)) + raw.shape[-2:], np.float64)
    t0 = time.perf_counter()
    for y0 in range(0, sy, rows_per_block):
        block = sum(np.asarray(r[:, :, y0:y0 + rows_per_block], np.float64)
                    for r in raws) / len(raws)
        pacbed += block.sum(axis=(2, 3))
        full = np.einsum("ij,dtyxjk,lk->dtyxil", ry, block[:, keep], rx, optimize=True)
        f, r = split_detector(full, layout)
        fine[:, :, y0:y0 + rows_per_block] = f * intensity_scale
        ring[:, :, y0:y0 + rows_per_block] = r * intensity_scale
    pacbed /= sy * sx
    params = dict(meta["parameters"], pack_seconds=round(time.perf_counter() - t0, 1))
    if len(dirs) > 1:
        params["preset"] = dict(params["preset"], num_configs=sum(
            m["parameters"]["preset"]["num_configs"] for m in metas))
        params["seeds"] = seeds
        params["wall_seconds"] = round(sum(m["parameters"]["wall_seconds"] for m in metas), 1)
    res = SimulationResult(
        data=fine, pacbed=pacbed[:, keep].astype(np.float32),
        thickness_nm=all_thick[keep], scan_step_A=(meta["scan_step_A"][1],
                                                    meta["scan_step_A"][0]),
        mrad_per_px=mrad_per_px,
        pacbed_mrad_per_px=(float(ky[1] - ky[0]), float(kx[1] - kx[0])),
        columns={k: np.asarray(v, float) for k, v in meta["columns"].items()},
        parameters=params, truth={k: np.asarray(v) for k, v in meta["truth"].items()})
    generator = " && ".join(c for c in [m.get("command", "") for m in metas] + [command] if c)
    s = to_signal(res, title or f"{params['structure']} ({params['preset']['name']}, packed)",
                  generator)
    sim = s.metadata.Simulation
    lead = [i for i, v in enumerate((n_def, len(all_thick))) if v > 1]
    sim.pacbed = pacbed.astype(np.float32).reshape(
        tuple(pacbed.shape[i] for i in lead) + pacbed.shape[2:])
    sim.pacbed_thickness_nm = all_thick
    sim.intensity_scale = float(intensity_scale)
    sim.intensity_units = (f"intensity per {intensity_scale:g} incident electrons per "
                           "detector pixel")
    lead4 = [i for i, v in enumerate((n_def, len(keep))) if v > 1]
    sim.ring = ring.reshape(tuple(ring.shape[i] for i in lead4) + ring.shape[2:])
    s.metadata.set_item("Simulation.detector_layout", layout)
    # the fine centre's own calibration: pixel n_fine // 2 at 0 mrad as in the full grid
    for ax in s.axes_manager.signal_axes:
        ax.offset = -(layout["n_fine"] // 2) * mrad_per_px
    s.metadata.set_item("Simulation.raw_meta", {
        "raw_dir": [str(d) for d in dirs], "raw_shape": list(raw.shape),
        "native_mrad_per_px": [float(ky[1] - ky[0]), float(kx[1] - kx[0])]})
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    s.save(out_path, overwrite=True, compression="gzip")
    return s
