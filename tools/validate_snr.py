#!/usr/bin/env python3
"""Shot-noise SNR of the virtual ADF against the Eq 7-optimised ADF (paper Fig 2:
33.7 -> 35.2 dB) on the fine LiFePO4 series (16 phonon configurations, 1 mrad pixels
to 32 mrad and a 4 mrad ring to 72 mrad), 70 nm, 3 x 3 cells, at several doses.

    python tools/validate_snr.py
"""

from __future__ import annotations

import numpy as np

import tdm_widgets as tw
from tdm_widgets.simulate import select


def main(doses=(1e3, 1e4, 1e5)) -> None:
    series = tw.load(tw.data_path("lifepo4_thickness"))
    s0 = select(series, thickness_nm=70)
    clean = np.tile(np.asarray(s0.data, float), (3, 3, 1, 1))
    cal = dict(mrad_per_px=s0.axes_manager[-1].scale)
    print(f"detector {s0.data.shape[2:]} px, {cal['mrad_per_px']} mrad/px as read; "
          f"patterns sum to {clean.sum((2, 3)).mean():.3f} of the beam")
    rng = np.random.default_rng(1)
    for dose in doses:  # electrons per probe position
        s = tw.from_array(rng.poisson(clean * dose).astype(np.uint32), **cal)
        adf = tw.virtual_image(s, 30, 64, progress=False)
        m7 = tw.pcc_mask(s, adf, normalization="pcc_over_mean", progress=False)
        ann = tw.detector_annulus(s, s.data.shape[2:], 30, 64).astype(float)
        a = tw.shot_noise_snr_db(s, ann)
        o = tw.shot_noise_snr_db(s, m7.data)
        print(f"{dose:8.0e} e/probe: virtual ADF {a:6.2f} dB, Eq 7 optimised {o:6.2f} dB, "
              f"difference {o - a:+.2f} dB", flush=True)


if __name__ == "__main__":
    main()
