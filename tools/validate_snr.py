#!/usr/bin/env python3
"""Shot-noise SNR of the virtual ADF against the Eq 7-optimised ADF (paper Fig 2:
33.7 -> 35.2 dB) on the bundled LiFePO4 series (16 phonon configurations, 1 mrad
pixels to 32 mrad and a 4 mrad ring to 72 mrad), 70 nm, 3 x 3 cells, at several doses.

    python tools/validate_snr.py [--data FILE]

Three Eq 7 masks are compared with the 30-64 mrad annulus, each SNR measured with the
Poisson estimator (``sum m^2 I`` through the mask) on the same counts:

- *same data*: the mask fitted on the counts it is measured on (what a user does; the
  mask is slightly correlated with their noise, which the estimator counts as signal);
- *held out*: the mask fitted on an independent acquisition at the same dose;
- *noise-free*: the mask fitted on the noise-free simulation (the best this weighting
  can do).
"""

from __future__ import annotations

import argparse

import numpy as np

import tdm_widgets as tw
from tdm_widgets.signals import intensity_scale
from tdm_widgets.simulate import select, tile_cells


def snr(counts, mask) -> float:
    return tw.shot_noise_snr_db(counts, mask, method="poisson")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None, help="thickness series (default: bundled)")
    ap.add_argument("--doses", nargs="+", type=float, default=[1e3, 1e4, 1e5],
                    help="[e/probe]")
    args = ap.parse_args()
    series = tw.load(args.data or tw.data_path("lifepo4_thickness"))
    s0 = select(series, thickness_nm=70)
    clean = np.tile(np.asarray(s0.data, float) / intensity_scale(s0), (3, 3, 1, 1))
    cal = dict(mrad_per_px=s0.axes_manager[-1].scale)
    print(f"detector {s0.data.shape[2:]} px, {cal['mrad_per_px']} mrad/px as read; "
          f"patterns sum to {clean.sum((2, 3)).mean():.3f} of the beam")
    ann = tw.detector_annulus(s0, clean.shape[2:], 30, 64).astype(float)
    # noise-free mask from the stored float16 values, so that pixels holding only
    # float16 round-off count as constant (a float64 copy would make them "signal")
    stored = tile_cells(s0, (3, 3))
    ideal = tw.pcc_mask(stored, tw.virtual_image(stored, 30, 64, show_progressbar=False),
                        normalization="pcc_over_mean", show_progressbar=False).data
    rng = np.random.default_rng(1)
    print("dose [e/probe] | virtual ADF [dB] | Eq 7 same data | Eq 7 held out | "
          "Eq 7 noise-free | differences [dB]")
    for dose in args.doses:
        s, other = (tw.from_array(rng.poisson(clean * dose).astype(np.uint32), **cal)
                    for _ in range(2))
        masks = {}
        for name, src in (("same", s), ("held", other)):
            adf = tw.virtual_image(src, 30, 64, show_progressbar=False)
            masks[name] = tw.pcc_mask(src, adf, normalization="pcc_over_mean",
                                      show_progressbar=False).data
        a = snr(s, ann)
        o = [snr(s, m) for m in (masks["same"], masks["held"], ideal)]
        print(f"{dose:8.0e} | {a:6.2f} | {o[0]:6.2f} | {o[1]:6.2f} | {o[2]:6.2f} | "
              + " / ".join(f"{v - a:+.2f}" for v in o), flush=True)


if __name__ == "__main__":
    main()
