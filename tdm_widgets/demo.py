"""The main job: virtual ABF/ADF, per-species template-derived masks and images on the
bundled LiFePO4 simulation, a figure, .hspy results and a contrast table."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .column_templates import format_specificity, specificity
from .core.progress import hyperspy_progressbar
from .cross_validation import add_null_controls
from .io import load
from .session import TDMSession
from .signals import pick, refuse_overwriting_input
from .simulate.output import columns_of, select

DATA_DIR = Path(__file__).resolve().parent / "data"
BUNDLED = DATA_DIR / "lifepo4_thickness.hspy"
SPECIES = ("Li", "Fe", "P", "O")
#: The virtual detectors of the demo, name to (inner, outer) [mrad].
VIRTUAL = {"virtual ABF": (11.0, 23.5), "virtual ADF": (30.0, 64.0)}
#: Files the demo writes into its output folder.
OUTPUTS = ("virtual_ABF.hspy", "virtual_ADF.hspy", "tdm_masks.hspy", "tdm_images.hspy",
           "tdm_demo.png", "contrast_table.txt")


@hyperspy_progressbar
def run_demo(out: Path, data: Path = BUNDLED, thickness_nm: float | None = None,
             dose_e_per_A2: float | None = None, seed: int = 0,
             show_progressbar: bool | None = None
             ) -> dict:
    """Run the main job and write its outputs to ``out``.

    Parameters
    ----------
    out : Path
        Output folder (created).
    data : Path
        A simulated LiFePO4 file with ``Simulation.columns`` metadata.
    thickness_nm : float, optional
        Member of a thickness series to use [nm] (nearest available); if None, 70 nm
        of a series, or the one member a file saved from a series holds.
    dose_e_per_A2 : float, optional
        Apply Poisson noise at this dose [e / angstrom^2].
    seed : int
        Noise seed.
    show_progressbar : bool, optional
        Progress bars; None follows HyperSpy's preference.

    Returns
    -------
    dict
        Contrast table: image name to {column type: mean z-score}.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plotting import show_image, show_mask, show_pattern

    out = Path(out)
    series = load(data)
    refuse_overwriting_input([out / f for f in OUTPUTS], series)
    out.mkdir(parents=True, exist_ok=True)
    if thickness_nm is None and "thickness" in [a.name for a in
                                                series.axes_manager.navigation_axes]:
        thickness_nm = 70.0
    s = select(series, thickness_nm=thickness_nm)
    if dose_e_per_A2 is not None:
        from .noise import add_poisson_noise

        s = add_poisson_noise(s, dose_e_per_A2, seed=seed)
    try:
        cols = columns_of(series)
    except ValueError:
        raise ValueError(f"{Path(data).name} has no column positions (Simulation.columns): "
                         "tdm demo runs on the bundled simulation or one made by tdm "
                         "simulate; for your own data use tdm apply DATA --positions "
                         "FILE") from None
    cols = dict(sorted(cols.items(), key=lambda kv: SPECIES.index(kv[0])))
    session = TDMSession.from_columns(s, cols, SPECIES, combined="all",
                                      detector_region=(0.0, 23.5),
                                      show_progressbar=show_progressbar)
    judged = add_null_controls(session, cols, seed=seed)
    names = session.names
    # two passes over the data: the statistics, then every image (TDM and virtual) at once
    images = session.images(virtual=VIRTUAL)
    masks = session.masks()
    abf, adf = (pick(images, v) for v in VIRTUAL)
    tdm = pick(images, names)
    for sig, name in ((abf, "virtual_ABF"), (adf, "virtual_ADF"), (masks, "tdm_masks"),
                      (tdm, "tdm_images")):
        sig.save(out / f"{name}.hspy", overwrite=True)

    table = {"virtual ABF": specificity(abf, judged), "virtual ADF": specificity(adf, judged)}
    for n in names:
        table[f"TDM {n}"] = specificity(pick(tdm, n), judged)

    ncol = len(names)
    fig, axes = plt.subplots(3, ncol, figsize=(1.9 * ncol, 6.2), constrained_layout=True)
    show_image(axes[0, 0], abf, "virtual ABF 11-23.5 mrad", cols, bar=2)
    show_image(axes[0, 1], adf, "virtual ADF 30-64 mrad", cols, bar=2)
    axes[0, 0].legend(fontsize=6, loc="upper right", framealpha=0.6)
    cal = session.calibration
    show_pattern(axes[0, 2], session.stats.mean, cal.det_scale, cal.det_offset,
                 radii=(11.0, 23.5, 30.0, 64.0), title="PACBED, ABF and ADF radii")
    for ax in axes[0, 3:]:
        ax.set_axis_off()
    t = s.metadata.get_item("Simulation.selected_thickness_nm", np.nan)
    axes[0, 3].text(0, 0.5, f"LiFePO4 [001], {t:.0f} nm, abTEM\n"
                    "masks within the BF disc (23.5 mrad)\n"
                    "single-pixel templates; 'null N' = N random\npositions away from columns",
                    fontsize=7, va="center")
    for i, n in enumerate(names):
        show_mask(axes[1, i], masks.inav[i], f"mask {n}", limit_mrad=26, bar=10 if i == 0 else None)
        show_image(axes[2, i], tdm.inav[i], f"TDM image {n}")
    fig.savefig(out / "tdm_demo.png", dpi=200)
    plt.close(fig)
    text = format_specificity(table)
    dose = "noise-free" if dose_e_per_A2 is None else f"{dose_e_per_A2:g} e/A^2, seed {seed}"
    (out / "contrast_table.txt").write_text(
        f"# {Path(data).name}, thickness {t:g} nm, {dose}; mean z-score at each column "
        f"type [image standard deviations]\n{text}\n")
    return table
