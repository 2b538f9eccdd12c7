"""Command line: ``tdm demo``, ``tdm simulate``, ``tdm pack``, ``tdm apply``, ``tdm data``.

Bad input to any subcommand (a bad option value, a file that cannot be read, positions
that do not fit the scan, an output that would overwrite the input) prints one line
``tdm: error: ...`` to stderr and exits with code 2, without a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from pathlib import Path

import numpy as np

#: Scale of float16 simulation files: intensities per 10^4 incident electrons.
FLOAT16_SCALE = 1e4

#: Files ``tdm apply`` writes into ``--out``.
APPLY_OUTPUTS = ("masks.hspy", "images.hspy", "specificity.txt", "parameters.json")


class UsageError(Exception):
    """Bad input found after parsing: reported as one ``tdm: error:`` line, exit 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (no usage block), exit code 2."""

    def error(self, message):
        self.exit(2, f"tdm: error: {self.prog.split()[-1]}: {message}\n"
                  if " " in self.prog else f"tdm: error: {message}\n")


def _finite(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not np.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be finite; got {text!r}")
    return v


def _positive(text: str) -> float:
    v = _finite(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be positive; got {text!r}")
    return v


def _non_negative(text: str) -> float:
    v = _finite(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0; got {text!r}")
    return v


def _integer(minimum: int, what: str):
    """An argparse type: an integer >= ``minimum``, refused as ``must be WHAT``."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"must be {what}; got {text!r}")
        return v
    return parse


_count = _integer(1, "a positive integer")
_seed = _integer(0, "a non-negative integer")


def _out_folder(out: Path) -> Path:
    """An output folder that is not an existing file."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder")
    return out


def _check_out_not_input(out: Path, inputs) -> None:
    """Refuse an output folder that is an input file, or would overwrite one."""
    from .signals import refuse_overwriting_input

    for f in inputs:
        if out.resolve() == Path(f).resolve():
            raise UsageError(f"--out {out} would overwrite the input {f}; choose another "
                             "folder")
    try:
        refuse_overwriting_input([out / name for name in APPLY_OUTPUTS], *inputs)
    except ValueError as err:
        raise UsageError(f"--out {out}: {err}") from None


def _notebook(args) -> int:
    import shutil

    from .datasets import your_data_notebook

    src = your_data_notebook()
    out = _out_folder(Path(args.out))
    target = out / src.name
    if target.exists():
        raise UsageError(f"{target} exists: it is not overwritten (give another --out)")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, target)
    print(f"Wrote {target}: set PATH in its second cell to your file, then run all "
          "(jupyter lab " + shlex.quote(str(target)) + ")")
    return 0


def _demo(args) -> int:
    from .column_templates import format_specificity
    from .demo import BUNDLED, run_demo

    table = run_demo(_out_folder(Path(args.out)), Path(args.data or BUNDLED), args.thickness,
                     args.dose, args.seed)
    print("Mean z-score of each image at each column type (image standard deviations):")
    print(format_specificity(table))
    print("Same-data contrast: a mask fitted to the data it images reproduces its template "
          "even with no atomic meaning (the 'null N' image of N random positions, at its "
          "own positions, column 'null N'). Read each species against the null of its "
          "own number of columns; a cross-validated report read so shows what is "
          "column-specific: tdm apply --split dose on counts removes the noise self-fit, "
          "--split cells on a scan of several cells also the positional one (README).")
    print(f"Wrote {args.out}/tdm_demo.png, *.hspy and contrast_table.txt")
    return 0


def _simulate(args) -> int:
    from .simulate import simulate

    command = "tdm " + shlex.join(args.argv)
    overrides = {k: v for k, v in (("num_configs", args.configs),
                                   ("scan_step_A", args.scan_step)) if v is not None}
    logging.basicConfig(level=logging.INFO, format="[tdm simulate] %(message)s")
    if args.raw:
        from dataclasses import replace

        from .simulate import PRESETS, STRUCTURES
        from .simulate.runner import run_raw

        out = run_raw(STRUCTURES[args.structure](), replace(PRESETS[args.preset], **overrides),
                      args.thickness, args.raw, defocus_nm=args.defocus, seed=args.seed,
                      command=command, scheduler=args.scheduler, device=args.device)
        print(f"Wrote {out}/raw.npy and meta.json")
        return 0
    if not args.out:
        raise UsageError("tdm simulate needs --out FILE or --raw DIR")
    s = simulate(args.preset, args.structure, args.thickness, args.defocus, args.seed,
                 command=command, scheduler=args.scheduler, device=args.device, **overrides)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.float16:
        # float16 keeps ~3 significant digits per value; scale so that high-angle
        # intensities (~1e-6 of the beam per pixel) stay out of the subnormal range
        s.data = (s.data * FLOAT16_SCALE).astype("float16")
        s.metadata.set_item("Simulation.intensity_scale", FLOAT16_SCALE)
        s.metadata.Simulation.intensity_units = (
            f"intensity per {FLOAT16_SCALE:g} incident electrons per detector pixel")
    s.save(out, overwrite=True, compression="gzip")
    print(f"Wrote {out} {s.data.shape} {s.data.dtype}")
    return 0


def _pack(args) -> int:
    from .simulate.bundle import pack_raw

    command = "tdm " + shlex.join(args.argv)
    s = pack_raw(args.raw_dir, args.out, thickness_nm=args.thickness,
                 mrad_per_px=args.mrad_per_px, fine_mrad=args.fine_mrad,
                 max_mrad=args.max_mrad, ring_factor=args.ring_factor, command=command)
    print(f"Wrote {args.out}: fine centre {s.data.shape} {s.data.dtype}, ring "
          f"{s.metadata.Simulation.ring.shape}, {Path(args.out).stat().st_size / 1e6:.1f} MB")
    return 0


def _apply(args) -> int:
    import json

    from .column_templates import format_specificity, specificity
    from .cross_validation import add_null_controls
    from .io import load
    from .positions import load_positions
    from .session import TDMSession
    from .signals import pick
    from .simulate.output import select

    out = Path(args.out)
    _check_out_not_input(out, (args.datafile, args.positions))
    _out_folder(out)
    nav = tuple(args.navigation_shape) if args.navigation_shape else None
    frames = {k: v for k, v in (("first_frame", args.first_frame),
                                ("last_frame", args.last_frame)) if v is not None}
    if frames and Path(args.datafile).suffix.lower() != ".mib":
        raise UsageError("--first-frame / --last-frame read part of a Merlin .mib; "
                         f"{Path(args.datafile).name} is not one")
    s = select(load(args.datafile, lazy=args.lazy, navigation_shape=nav,
                    scan_step_A=args.scan_step, **frames),
               thickness_nm=args.thickness, defocus_nm=args.defocus)
    if args.flyback:
        if args.flyback >= s.axes_manager.navigation_shape[0]:
            raise UsageError(f"--flyback {args.flyback} drops every one of the "
                             f"{s.axes_manager.navigation_shape[0]} scan columns")
        s = s.inav[args.flyback:, :]  # the scan axes keep their offset
    corrections = _correct(s, args)
    member = {k: s.metadata.get_item(f"Simulation.selected_{k}_nm")
              for k in ("thickness", "defocus")}
    member = {k: v for k, v in member.items() if v is not None}
    shape = s.data.shape[:2]
    columns, _, _ = load_positions(args.positions, shape)
    det = tuple(args.detector_region) if args.detector_region else None
    if det is not None and s.axes_manager.signal_axes[0].units != "mrad":
        raise UsageError("--detector-region is in mrad and this file's detector is in px: "
                         "add --semiangle MRAD to calibrate it from the bright-field disc")
    # Gaussian templates wrap across the edges of a simulated cell only: an
    # experimental scan's opposite edges do not meet
    periodic = s.metadata.has_item("Simulation")
    session = TDMSession.from_columns(s, columns, sigma_px=args.sigma, periodic=periodic,
                                      normalization=args.normalization, detector_region=det)
    names = session.names  # the species and "all"
    judged = columns
    nulls = []
    if args.split:  # the null controls of the cross-validated rows, imaged with the rest
        judged = add_null_controls(session, columns)
        nulls = [n for n in judged if n not in columns]
    images = session.images(normalized=args.normalized)  # with the statistics: two passes
    masks = session.masks(names)
    out.mkdir(parents=True, exist_ok=True)
    masks.save(out / "masks.hspy", overwrite=True)
    pick(images, names).save(out / "images.hspy", overwrite=True)
    table = {f"TDM {n}": specificity(pick(images, n), judged) for n in names}
    if args.split:
        cv = session.cross_validated(args.split, list(columns) + list(nulls),
                                     normalized=args.normalized)
        table.update({f"{n} cross-validated": specificity(pick(cv, n), judged)
                      for n in columns})
        for n in nulls:
            table[f"{n} same-data"] = specificity(pick(images, n), judged)
            table[f"{n} cross-validated"] = specificity(pick(cv, n), judged)
    text = format_specificity(table)
    (out / "specificity.txt").write_text(text + "\n")
    params = {k: (v if not isinstance(v, Path) else str(v)) for k, v in vars(args).items()
              if k not in ("func", "argv")}
    (out / "parameters.json").write_text(json.dumps(
        {"command": "tdm " + shlex.join(args.argv), "arguments": params,
         "species": names, "periodic_templates": periodic, "series_member_nm": member,
         "corrections": corrections,
         "n_zero_variance": int(session.stats.n_zero_variance),
         "scan_shape": list(map(int, shape))}, indent=1, default=str))
    print(text)
    used = "".join(f", {k} {v:g} nm member" for k, v in member.items())
    print(f"Wrote {out}/masks.hspy, images.hspy, specificity.txt, parameters.json{used}")
    return 0


def _correct(s, args) -> dict:
    """``tdm apply``'s corrections of a raw camera file, stored on the signal (the file
    is not touched): bad pixels, detector calibration from the disc, descan. Returns
    what they found, for ``parameters.json``."""
    import warnings

    from .badpixels import find_bad_pixels, set_bad_pixels
    from .descan import correct_descan, measure_descan
    from .imaging import bf_disk, calibrate_detector

    if args.descan and args.semiangle is None:
        raise UsageError("--descan measures the descan from the bright-field disc: give "
                         "--semiangle MRAD too")
    found = {}
    if args.bad_pixels:
        bad = find_bad_pixels(s)
        set_bad_pixels(s, bad)
        found["bad_pixels"] = bad.report["counts"]
    if args.semiangle is not None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            disk = bf_disk(s, semiangle_mrad=args.semiangle)
        for w in caught:
            text = " ".join(str(w.message).split())
            if "descan" in text:
                if args.descan:  # bf_disk's "the disc moves" warning: corrected next
                    continue
                text = text.split("; correct it with")[0] + "; add --descan to correct it"
            print(f"tdm: warning: {text}", file=sys.stderr)
        calibrate_detector(s, disk)
        found["mrad_per_px"] = disk.mrad_per_px
        found["disc_center_px"] = list(disk.center_px)
        if args.descan:
            descan = measure_descan(s, disk)
            correct_descan(s, descan)
            found["descan_range_px"] = descan.range_px
    return found


def _data(args) -> int:
    from . import manifest

    if args.action == "verify":
        rows = manifest.verify(names=args.name, cache_dir=args.cache_dir)
        print(f"manifest: {manifest.manifest_file()}")
        for name, status in rows:
            print(f"{name:<28} {status}")
        bad = [n for n, st in rows if not st.startswith(
            ("ok", "absent", "generated", "registered"))]
        return 1 if bad else 0
    if args.action == "fetch":
        from .datasets import data_path

        man = manifest.read_manifest()
        names = args.name or [d["name"] for d in man["datasets"] + man.get("files", [])
                              if d.get("file")]
        for name in names:
            print(f"{name:<28} {data_path(name, base_url=args.base_url, cache_dir=args.cache_dir)}")
        return 0
    if len(args.name) != 1:
        raise UsageError("tdm data regenerate needs a dataset NAME (one; see tdm data verify)")
    diff = manifest.regenerate(args.name[0])
    print(f"{args.name[0]}: regenerated, largest relative difference {diff:.2e}")
    return 0


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    """A warning as the command's one line on stderr (not Python's file, line and
    source)."""
    print(f"tdm: warning: {' '.join(str(message).split())}", file=sys.stderr)


def main(argv=None) -> int:
    """The ``tdm`` command: parse the arguments and run one subcommand.

    Subcommands: ``demo`` (the main job on the bundled LiFePO4 simulation), ``apply``
    (masks, images and a specificity table for a data file and a positions file),
    ``simulate`` and ``pack`` (abTEM simulations), ``data`` (check or regenerate the
    data files of ``data_manifest.yaml``). ``tdm SUBCOMMAND --help`` lists the
    options, with their units in brackets.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after ``tdm``; ``sys.argv[1:]`` if None.

    Returns
    -------
    int
        Exit status [dimensionless]: 0 on success, 1 when ``tdm data verify`` finds a
        file that does not match, 2 for bad input (one ``tdm: error: ...`` line on
        stderr, no traceback; a bad option value exits through ``SystemExit(2)``
        with that line, as argparse does).

    Examples
    --------
    >>> from tdm_widgets.cli import main
    >>> main(["data", "regenerate"])          # no dataset named: one error line
    2
    >>> main(["demo", "--out", "demo_output", "--dose", "2000"])    # doctest: +SKIP
    0

    From a shell::

        tdm demo --thickness 40 --dose 2000
        tdm apply scan.hspy --positions positions.json --out results --split dose
    """
    p = _Parser(prog="tdm", description="Template-derived masks for 4D-STEM")
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo", help="the main job on the bundled LiFePO4 simulation")
    d.add_argument("--out", default="demo_output")
    d.add_argument("--data", default=None, help="simulated LiFePO4 file (default: bundled)")
    d.add_argument("--thickness", type=_positive, default=None,
                   help="series member [nm] (default 70 nm of a series)")
    d.add_argument("--dose", type=_positive, default=None, help="Poisson noise [e/A^2]")
    d.add_argument("--seed", type=_seed, default=0)
    d.set_defaults(func=_demo)
    s = sub.add_parser("simulate", help="abTEM 4D-STEM simulation")
    s.add_argument("preset", choices=["ci", "bundled", "paper"])
    s.add_argument("structure")
    s.add_argument("--out", default=None, help="signal file (integrated detector)")
    s.add_argument("--raw", default=None, metavar="DIR",
                   help="write the raw float32 result (native detector to the antialiasing "
                        "limit, every exit plane) to DIR instead")
    s.add_argument("--thickness", type=_positive, nargs="+", default=[20.0], help="[nm]")
    s.add_argument("--defocus", type=_finite, nargs="+", default=[0.0], help="[nm]")
    s.add_argument("--configs", type=_count, default=None, help="frozen-phonon configurations")
    s.add_argument("--scan-step", type=_positive, default=None, help="probe step [A]")
    s.add_argument("--seed", type=_seed, default=0)
    s.add_argument("--float16", action="store_true", help="store as float16")
    s.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="dask.distributed scheduler (tcp://host:8786) that runs abTEM's graph")
    s.add_argument("--device", choices=["cpu", "gpu"], default="cpu",
                   help="abTEM device; gpu needs CuPy")
    s.set_defaults(func=_simulate)
    pk = sub.add_parser("pack", help="a raw simulation folder (simulate --raw) as a bundled "
                        "file: fine detector centre + coarse ring, PACBED of every plane")
    pk.add_argument("raw_dir", nargs="+", help="raw folder(s); several differ only in the seed")
    pk.add_argument("--out", required=True)
    pk.add_argument("--thickness", type=_positive, nargs="+", default=None,
                    help="exit planes [nm] whose 4D data are kept (default all)")
    pk.add_argument("--mrad-per-px", type=_positive, default=1.0, help="fine pixel [mrad]")
    pk.add_argument("--fine-mrad", type=_positive, default=32.0,
                    help="half-width of the fine square [mrad]")
    pk.add_argument("--max-mrad", type=_positive, default=72.0,
                    help="half-width of the whole detector [mrad]")
    pk.add_argument("--ring-factor", type=_count, default=2,
                    help="ring pixels are this many fine pixels on a side")
    pk.set_defaults(func=_pack)
    ap = sub.add_parser("apply", help="masks, images and specificity for every species")
    ap.add_argument("datafile")
    ap.add_argument("--positions", required=True, help="positions JSON (tdm_widgets format)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--sigma", type=_non_negative, default=0.0,
                    help="Gaussian template width [px] (wrapped across the scan edges for a "
                         "simulated cell only)")
    ap.add_argument("--normalization", choices=["pcc", "pcc_over_mean"], default="pcc")
    ap.add_argument("--detector-region", type=_non_negative, nargs=2, metavar=("INNER", "OUTER"),
                    help="mask only within this annulus [mrad]")
    ap.add_argument("--normalized", action="store_true", help="Eq 6 instead of Eq 2")
    ap.add_argument("--split", choices=["dose", "cells"], default=None,
                    help="add cross-validated rows and null controls (one per species size)")
    ap.add_argument("--thickness", type=_positive, default=None, help="series member [nm]")
    ap.add_argument("--defocus", type=_finite, default=None, help="series member [nm]")
    ap.add_argument("--navigation-shape", type=_count, nargs=2, metavar=("SCAN_X", "SCAN_Y"),
                    help="frames per scan row and scan rows of a flat file (.mib)")
    ap.add_argument("--scan-step", type=_positive, default=None, help="scan step [A]")
    ap.add_argument("--first-frame", type=_seed, default=None, metavar="N",
                    help="first frame of a .mib to read (frames counted from 0)")
    ap.add_argument("--last-frame", type=_count, default=None, metavar="N",
                    help="read a .mib up to this frame (not included): the whole scan rows "
                         "of an interrupted acquisition")
    ap.add_argument("--flyback", type=_seed, default=0, metavar="N",
                    help="drop the first N scan columns of every row (a camera's flyback "
                         "frames)")
    ap.add_argument("--lazy", action="store_true")
    ap.add_argument("--bad-pixels", action="store_true",
                    help="find dead, hot and stuck detector pixels (one pass) and "
                         "interpolate them in every pass")
    ap.add_argument("--semiangle", type=_positive, default=None, metavar="MRAD",
                    help="probe semi-angle [mrad]: calibrate the detector in mrad from the "
                         "bright-field disc (a raw camera file is in px)")
    ap.add_argument("--descan", action="store_true",
                    help="measure the descan from the disc and correct it (needs --semiangle)")
    ap.set_defaults(func=_apply)
    dt = sub.add_parser("data", help="check data files against data_manifest.yaml, fetch "
                        "the ones an install does not carry, re-run a generator")
    dt.add_argument("action", choices=["verify", "fetch", "regenerate"])
    dt.add_argument("name", nargs="*", help="dataset names (fetch: default every file)")
    dt.add_argument("--base-url", default=None, metavar="URL",
                    help="root of a copy of the repository's files (http(s):// or file://); "
                         "default $TDM_WIDGETS_DATA_URL (no default beyond it: files not in "
                         "the package need one)")
    dt.add_argument("--cache-dir", default=None, metavar="DIR",
                    help="download cache (default $TDM_WIDGETS_DATA_DIR, else the user cache)")
    dt.set_defaults(func=_data)
    nb = sub.add_parser("notebook", help="write notebook 09 (the whole pipeline on your own "
                        "file) to a folder, to open in JupyterLab")
    nb.add_argument("--out", default=".", help="folder (default: here)")
    nb.set_defaults(func=_notebook)
    argv = sys.argv[1:] if argv is None else list(argv)
    args, extra = p.parse_known_args(argv)
    if extra and getattr(args, "func", None) is _data and not any(
            e.startswith("-") for e in extra):
        args.name = list(args.name) + extra  # dataset names after the options
    elif extra:
        p.error(f"unrecognized arguments: {' '.join(extra)}")
    args.argv = argv  # the command as given, recorded with what it writes
    # a reader's own ERROR lines ("report this error to the RosettaSciIO developers")
    # come before the one line below, which says the same in the command's terms
    quiet = {name: logging.getLogger(name) for name in ("hyperspy.io", "rsciio", "pooch")}
    levels = {name: log.level for name, log in quiet.items()}
    for log in quiet.values():
        log.setLevel(logging.CRITICAL)
    import warnings

    shown = warnings.showwarning
    warnings.showwarning = _one_line_warning
    try:
        return args.func(args)
    except BrokenPipeError:  # the output went to `head` or the like, which closed
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - Python's own advice
        return 0
    except (UsageError, ValueError, TypeError, OSError, KeyError, ImportError) as err:
        text = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        message = " ".join(str(text).split()) or type(err).__name__
        print(f"tdm: error: {message}", file=sys.stderr)
        return 2
    except Exception as err:  # anything else still gets one line, with its type
        message = " ".join(str(err).split())
        print(f"tdm: error: {type(err).__name__}: {message}", file=sys.stderr)
        return 1
    finally:
        warnings.showwarning = shown
        for name, log in quiet.items():
            log.setLevel(levels[name])


if __name__ == "__main__":
    sys.exit(main())
