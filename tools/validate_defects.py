#!/usr/bin/env python3
"""Species-faithful defect images (issue #15, paper Fig 4) against the ground truth of
the defect supercell, over several noise draws.

    python tools/validate_defects.py [--data FILE] [--seeds N] [--region LO,HI ...]
                                     [--folds K] [--eq6] [--exact-masks]
                                     [--detector-ridge LAM ...]

Masks are fitted on the perfect reference cell only (the lower-right scan cell). For
each detector region it prints, for the noise-free data and for Poisson counts at
2e3 and 2e4 e/probe (dose split into ``--folds`` parts,
:func:`tdm_widgets.cross_validated_joint_images`),
the contrast of each defect in each criterion image: z at the defect minus the mean z
at the same site of the other three cells [image standard deviations]. Two estimates:
the independent Pearson images and the joint images (:func:`tdm_widgets.unmix_images`):
with the ridge chosen by cross-validation on the counts, and with ridge 1 fixed
beforehand (the combination fitted on the reference cell of the Pearson images, the
cross-validated ones on counts). Noisy rows are mean +- standard deviation
over ``--seeds`` noise draws (seeds 0, 1, ...); a criterion passes when the mean does,
and the count of single draws that pass is given.

``--exact-masks`` adds the masks fitted on the noise-free data (Pearson, and the ridge-1
combination fitted there) applied to each count draw: what a perfect fit of the masks
would give at each dose (whole detector).

``--eq6`` adds the Eq 6 images (each pixel standardised by its mean and standard
deviation on the reference cell before the mask; each held-out fold by its own), whole
detector, Pearson and joint with ridge 1.

``--detector-ridge`` adds the estimate the README calls a prototype (not in the
library): masks fitted jointly in detector space on the reference cell,
``M = argmin |D M - T|^2 + lam |M|^2`` (``lam`` relative to the mean diagonal of the
reference positions' Gram matrix), whole detector, each fold imaged by masks fitted on
the others; rows for every ``lam``, for the one with the least held-out error
(``1 - r^2`` with the template on the reference cell, mean over templates and folds)
and for the one-standard-error rule.

Criteria (issue #15): O vacancy <= -3 in the O image and within +-1.5 in the Li and Fe
images; Fe_Li <= -3 in the Li image; extra Fe >= +3 in the Fe image and within +-1.5 in
the Li and O images.
"""

from __future__ import annotations

import argparse

import numpy as np

import tdm_widgets as tw
from tdm_widgets.simulate import columns_of, select

#: (image, defect, lower bound, upper bound) of issue #15
CRITERIA = (("O", "vacancy_O_px", None, -3.0), ("Li", "vacancy_O_px", -1.5, 1.5),
            ("Fe", "vacancy_O_px", -1.5, 1.5), ("Li", "antisite_FeLi_px", None, -3.0),
            ("Fe", "extra_Fe_px", 3.0, None), ("Li", "extra_Fe_px", -1.5, 1.5),
            ("O", "extra_Fe_px", -1.5, 1.5))
SHORT = {"vacancy_O_px": "O vac", "antisite_FeLi_px": "Fe_Li", "extra_Fe_px": "extra Fe"}


def contrast(img, site, shape) -> float:
    """z at ``site`` minus the mean z at the same site of the other three scan cells."""
    sy, sx = shape
    z = (img - img.mean()) / img.std()
    y, x = np.rint(site).astype(int)
    same = [z[(y + i * (sy // 2)) % sy, (x + j * (sx // 2)) % sx]
            for i in (0, 1) for j in (0, 1) if (i, j) != (0, 0)]
    return float(z[y % sy, x % sx] - np.mean(same))


def passes(value: float, lo, hi) -> bool:
    return (lo is None or value >= lo) and (hi is None or value <= hi)


def criteria_row(images, names, truth, shape) -> np.ndarray:
    """The seven criterion contrasts of one stack of species images."""
    return np.array([contrast(images[names.index(n)], truth[k][0], shape)
                     for n, k, _, _ in CRITERIA])


def fmt(values: np.ndarray) -> list[str]:
    """Cells: ``mean`` (one draw) or ``mean +- sd (passing draws/draws)``; a failed
    criterion is marked with ``**``."""
    cells = []
    for j, (_, _, lo, hi) in enumerate(CRITERIA):
        v = values[:, j]
        mark = "" if passes(v.mean(), lo, hi) else "**"
        if len(v) == 1:
            cells.append(f"{mark}{v[0]:+.2f}{mark}")
        else:
            ok = sum(passes(x, lo, hi) for x in v)
            cells.append(f"{mark}{v.mean():+.2f} +- {v.std(ddof=1):.2f}{mark} ({ok}/{len(v)})")
    return cells


def detector_ridge(counts, templates, reference, lams, folds, seed):
    """Images of every template by detector-space ridge masks, for each ``lam``: each
    fold of the counts imaged by masks fitted on the others. Returns ``{lam: (images,
    held-out error per fold)}``."""
    from tdm_widgets.cross_validation import thinned_folds

    t = np.asarray(templates, float)[:, reference]
    t = (t - t.mean(axis=1, keepdims=True)).T                  # (p, k)
    parts = thinned_folds(counts, seed, folds) if folds > 1 else [counts]
    shape = counts.shape[:2]
    out = {lam: ([], []) for lam in lams}
    for held in parts:
        fit = (counts - held if folds > 1 else counts)[reference]
        x = fit.reshape(len(fit), -1).astype(float)
        x -= x.mean(axis=0)
        gram = x @ x.T
        scale = np.trace(gram) / len(gram)
        h = np.asarray(held, float).reshape(shape[0] * shape[1], -1)
        for lam in lams:
            masks = x.T @ np.linalg.solve(gram + lam * scale * np.eye(len(gram)), t)
            img = (h @ masks).T.reshape(-1, *shape)
            err = np.mean([1 - np.corrcoef(i[reference], tt)[0, 1] ** 2
                           for i, tt in zip(img, np.asarray(templates, float)[:, reference])])
            out[lam][0].append(img)
            out[lam][1].append(err)
    return {lam: (np.mean(imgs, axis=0), np.array(errs)) for lam, (imgs, errs) in out.items()}


def ridge_rows(runs, names, truth, shape, label):
    """Print the detector-ridge rows: each ``lam``, the least held-out error, 1 SE."""
    lams = sorted(runs[0])
    rows = {lam: np.array([criteria_row(r[lam][0], names, truth, shape) for r in runs])
            for lam in lams}
    best, one_se = [], []
    for r in runs:
        err = {lam: r[lam][1].mean() for lam in lams}
        b = min(lams, key=err.get)
        se = r[b][1].std(ddof=1) / np.sqrt(len(r[b][1])) if len(r[b][1]) > 1 else 0.0
        best.append(b)
        one_se.append(max(lam for lam in lams if err[lam] <= err[b] + se))
    for rule, picks in (("least held-out error", best), ("one standard error", one_se)):
        picked = np.array([rows[lam][i] for i, lam in enumerate(picks)])
        print(f"| whole | {label} | detector ridge, {rule} {sorted(set(picks))} | "
              + " | ".join(fmt(picked)) + " |")
    for lam in lams:
        err = np.mean([r[lam][1].mean() for r in runs])
        print(f"| whole | {label} | detector ridge {lam:g} (held-out error {err:.3f}) | "
              + " | ".join(fmt(rows[lam])) + " |", flush=True)


def eq6_rows(s, templates, names, truth, reference, dose, folds, seeds, label):
    """Print the rows of the Eq 6 images (the data standardised before the mask): the
    dose split done here, each held-out fold standardised by its own statistics on the
    reference cell; Pearson and joint (ridge 1) as for Eq 2."""
    from tdm_widgets.cross_validation import thinned_folds

    shape = s.data.shape[:2]
    step = s.axes_manager[1].scale * s.axes_manager[0].scale
    kw = dict(show_progressbar=False)
    pearson, joint = [], []
    for seed in range(seeds):
        counts = tw.add_poisson_noise(s, dose / step, seed=seed).data
        images = []
        for held in thinned_folds(counts, seed, folds):
            m = tw.pcc_mask(counts - held, templates, region=reference, **kw)
            stats = tw.column_stats(held, region=reference, **kw)
            images.append(tw.apply_mask(held, m.data, normalized=True, stats=stats, **kw).data)
        p = np.mean(images, axis=0)
        pearson.append(criteria_row(p, names, truth, shape))
        joint.append(criteria_row(tw.unmix_images(p, templates, 1.0, region=reference)[0],
                                  names, truth, shape))
    for est, rows in (("Pearson, Eq 6", pearson), ("joint, ridge 1, Eq 6", joint)):
        print(f"| whole | {label} | {est} | " + " | ".join(fmt(np.array(rows))) + " |",
              flush=True)


def exact_mask_rows(s, templates, names, truth, reference, doses, seeds):
    """Rows of the masks fitted on the noise-free data applied to Poisson counts."""
    shape = s.data.shape[:2]
    masks = tw.pcc_mask(s, templates, region=reference, show_progressbar=False)
    clean = tw.apply_mask(s, masks, show_progressbar=False).data
    weights = tw.unmix_images(clean, templates, 1.0, region=reference)[1]
    area = s.axes_manager[0].scale * s.axes_manager[1].scale
    for dose in doses:
        pearson, joint = [], []
        for seed in range(seeds):
            counts = tw.add_poisson_noise(s, dose / area, seed=seed)
            images = tw.apply_mask(counts, masks, show_progressbar=False).data
            pearson.append(criteria_row(images, names, truth, shape))
            joint.append(criteria_row(np.tensordot(weights.T, images, 1), names, truth,
                                      shape))
        data = f"{dose:.0e} e/probe, noise-free masks"
        print(f"| whole | {data} | Pearson | " + " | ".join(fmt(np.array(pearson))) + " |")
        print(f"| whole | {data} | joint, ridge 1 | " + " | ".join(fmt(np.array(joint)))
              + " |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None, help="defect supercell (default: bundled)")
    ap.add_argument("--thickness", type=float, default=None,
                    help="member of a defect series with several exit planes [nm]")
    ap.add_argument("--seeds", type=int, default=5, help="noise draws per dose")
    ap.add_argument("--region", nargs="+", default=["0,23.5", "0,1000"],
                    help="detector regions LO,HI [mrad] (1000: the whole detector)")
    ap.add_argument("--doses", nargs="+", type=float, default=[2e3, 2e4], help="[e/probe]")
    ap.add_argument("--folds", type=int, default=2,
                    help="parts of the dose split (each imaged by masks fitted on the others)")
    ap.add_argument("--bin", type=int, default=1,
                    help="sum detector pixels in bin x bin blocks first (fewer mask pixels "
                         "than reference positions at low dose)")
    ap.add_argument("--detector-ridge", nargs="+", type=float, default=None, metavar="LAM",
                    help="also the detector-space ridge prototype at these lam "
                         "(whole detector), e.g. 0.3 1 2 3 5 10 20")
    ap.add_argument("--exact-masks", action="store_true",
                    help="also the masks fitted on the noise-free data (Pearson, and the "
                         "ridge-1 combination fitted there) applied to each count draw: "
                         "what a perfect mask fit would give at each dose, whole detector")
    ap.add_argument("--eq6", action="store_true",
                    help="also the Eq 6 images (data standardised before the mask), whole "
                         "detector")
    args = ap.parse_args()

    s = tw.load(args.data or tw.data_path("lifepo4_defects"))
    if args.thickness is not None or s.data.ndim > 4:
        s = select(s, thickness_nm=args.thickness)
    if args.bin > 1:
        s = s.rebin(scale=(1, 1, args.bin, args.bin))  # keeps dtype, calibration, metadata
    truth = {k: np.asarray(v) for k, v in s.metadata.Simulation.truth.as_dictionary().items()}
    cols = {k: columns_of(s)[k] for k in ("Li", "Fe", "P", "O")}
    shape = s.data.shape[:2]
    sy, sx = shape
    reference = tw.rectangle_region(shape, sy // 2, sy, sx // 2, sx)  # the perfect cell
    templates, names = tw.point_templates(cols, shape)
    step_y, step_x = s.axes_manager[1].scale, s.axes_manager[0].scale
    head = [f"{SHORT[k]} in {n}" for n, k, _, _ in CRITERIA]
    print(f"{s.data.shape} {s.axes_manager[-1].scale} mrad/px, "
          f"{s.metadata.get_item('Simulation.parameters.preset.num_configs', '?')} phonon configs")
    print("| detector | data | estimate | " + " | ".join(head) + " |")
    print("| --- " * (3 + len(head)) + "|")
    for reg in args.region:
        lo, hi = (float(v) for v in reg.split(","))
        label = f"{lo:g}-{hi:g} mrad" if hi < 1000 else "whole"
        masks = tw.pcc_mask(s, templates, region=reference, detector_region=(lo, hi),
                            show_progressbar=False)
        images = tw.apply_mask(s, masks, show_progressbar=False).data
        joint = tw.unmix_images(images, templates, 1.0, region=reference)[0]
        for est, imgs in (("Pearson", images), ("joint, ridge 1", joint)):
            row = fmt(criteria_row(imgs, names, truth, shape)[None])
            print(f"| {label} | noise-free | {est} | " + " | ".join(row) + " |", flush=True)
        for dose in args.doses:
            pearson, joint, joint1, ridges = [], [], [], []
            for seed in range(args.seeds):
                # add_poisson_noise reads metadata.Simulation.intensity_scale itself
                counts = tw.add_poisson_noise(s, dose / (step_y * step_x), seed=seed)
                cv = tw.cross_validated_joint_images(counts, templates, fit_region=reference,
                                                     detector_region=(lo, hi), seed=seed,
                                                     folds=args.folds, show_progressbar=False)
                pearson.append(criteria_row(cv.pearson.data, names, truth, shape))
                joint.append(criteria_row(cv.joint.data, names, truth, shape))
                fixed = tw.unmix_images(cv.pearson.data, templates, 1.0, region=reference)[0]
                joint1.append(criteria_row(fixed, names, truth, shape))
                ridges.append(cv.ridge)
            data = f"{dose:.0e} e/probe, CV ({args.folds} folds)"
            print(f"| {label} | {data} | Pearson | " + " | ".join(fmt(np.array(pearson)))
                  + " |")
            print(f"| {label} | {data} | joint, ridge by CV {sorted(set(ridges))} | "
                  + " | ".join(fmt(np.array(joint))) + " |")
            print(f"| {label} | {data} | joint, ridge 1 | " + " | ".join(fmt(np.array(joint1)))
                  + " |", flush=True)
    if args.exact_masks:
        exact_mask_rows(s, templates, names, truth, reference, args.doses, args.seeds)
    if args.eq6:
        masks = tw.pcc_mask(s, templates, region=reference, show_progressbar=False)
        images = tw.apply_mask(s, masks, normalized=True, show_progressbar=False).data
        joint = tw.unmix_images(images, templates, 1.0, region=reference)[0]
        for est, imgs in (("Pearson, Eq 6", images), ("joint, ridge 1, Eq 6", joint)):
            row = fmt(criteria_row(imgs, names, truth, shape)[None])
            print(f"| whole | noise-free | {est} | " + " | ".join(row) + " |", flush=True)
        for dose in args.doses:
            eq6_rows(s, templates, names, truth, reference, dose, args.folds, args.seeds,
                     f"{dose:.0e} e/probe, CV ({args.folds} folds)")
    if args.detector_ridge:
        for dose in args.doses:
            runs = [detector_ridge(tw.add_poisson_noise(s, dose / (step_y * step_x),
                                                        seed=seed).data,
                                   templates, reference, args.detector_ridge, args.folds, seed)
                    for seed in range(args.seeds)]
            ridge_rows(runs, names, truth, shape, f"{dose:.0e} e/probe, CV ({args.folds} folds)")


if __name__ == "__main__":
    main()
