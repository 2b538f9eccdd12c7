"""The main job: virtual ABF/ADF, per-species template-derived masks and images on the
bundled LiFePO4 simulation, a figure, .hspy results and a contrast table."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import apply_mask, load, pcc_mask, virtual_image
from .columns import format_specificity, point_templates, random_positions_template, specificity
from .core.progress import hyperspy_progressbar
from .simulate.output import columns_of, select

DATA_DIR = Path(__file__).resolve().parent / "data"
BUNDLED = DATA_DIR / "lifepo4_thickness.hspy"
SPECIES = ("Li", "Fe", "P", "O")


@hyperspy_progressbar
def run_demo(out: Path, data: Path = BUNDLED, thickness_nm: float = 70.0,
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
    thickness_nm : float
        Member of a thickness series to use [nm] (nearest available).
    dose_e_per_A2 : float, optional
        Apply Poisson noise at this dose [e / angstrom^2].
    seed : int
        Noise seed.

    Returns
    -------
    dict
        Contrast table: image name to {column type: mean z-score}.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plotting import show_image, show_mask, show_pattern
    from .signals import unwrap

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    series = load(data)
    s = select(series, thickness_nm=thickness_nm)
    if dose_e_per_A2 is not None:
        from .noise import add_poisson_noise

        s = add_poisson_noise(s, dose_e_per_A2, seed=seed)
    cols = {k: v for k, v in sorted(columns_of(series).items(), key=lambda kv: SPECIES.index(kv[0]))}
    shape = s.data.shape[:2]
    abf = virtual_image(s, 11.0, 23.5, show_progressbar=show_progressbar)
    adf = virtual_image(s, 30.0, 64.0, show_progressbar=show_progressbar)
    templates, names = point_templates(cols, shape, SPECIES, combined="all")
    null = random_positions_template(cols, shape, len(cols["Li"]), seed=seed)
    templates = np.concatenate([templates, null[None]])
    names.append("null")
    masks = pcc_mask(s, templates, detector_region=(0.0, 23.5), show_progressbar=show_progressbar)
    images = apply_mask(s, masks, show_progressbar=show_progressbar)
    masks.metadata.set_item("TDM.names", names)
    images.metadata.set_item("TDM.names", names)
    for sig, name in ((abf, "virtual_ABF"), (adf, "virtual_ADF"), (masks, "tdm_masks"),
                      (images, "tdm_images")):
        sig.save(out / f"{name}.hspy", overwrite=True)

    table = {"virtual ABF": specificity(abf, cols), "virtual ADF": specificity(adf, cols)}
    for i, n in enumerate(names):
        table[f"TDM {n}"] = specificity(images.data[i], cols)

    ncol = len(names)
    fig, axes = plt.subplots(3, ncol, figsize=(1.9 * ncol, 6.2), constrained_layout=True)
    show_image(axes[0, 0], abf, "virtual ABF 11-23.5 mrad", cols, bar=2)
    show_image(axes[0, 1], adf, "virtual ADF 30-64 mrad", cols, bar=2)
    axes[0, 0].legend(fontsize=6, loc="upper right", framealpha=0.6)
    cal = unwrap(s)[1]
    mean_pattern = s.data.mean(axis=(0, 1), dtype=np.float64)
    show_pattern(axes[0, 2], mean_pattern, cal.det_scale, cal.det_offset,
                 radii=(11.0, 23.5, 30.0, 64.0), title="PACBED, ABF and ADF radii")
    for ax in axes[0, 3:]:
        ax.set_axis_off()
    t = s.metadata.get_item("Simulation.selected_thickness_nm", np.nan)
    axes[0, 3].text(0, 0.5, f"LiFePO4 [001], {t:.0f} nm, abTEM\n"
                    "masks within the BF disc (23.5 mrad)\n"
                    "single-pixel templates; 'null' = random\npositions away from columns",
                    fontsize=7, va="center")
    for i, n in enumerate(names):
        show_mask(axes[1, i], masks.inav[i], f"mask {n}", limit_mrad=26, bar=10 if i == 0 else None)
        show_image(axes[2, i], images.inav[i], f"TDM image {n}")
    fig.savefig(out / "tdm_demo.png", dpi=200)
    plt.close(fig)
    text = format_specificity(table)
    (out / "contrast_table.txt").write_text(text + "\n")
    return table
