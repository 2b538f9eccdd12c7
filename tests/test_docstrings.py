"""Every public function and class has a numpydoc docstring with Parameters, Returns
(units in brackets) and Examples.

"Public" is ``tdm_widgets.__all__`` (functions, classes and the public methods of
those classes), the ``tdm`` command-line entry point and the LiberTEM helpers of
``tdm_widgets.libertem_udf``. The checks are numpydoc's own validation codes plus one
of ours (units of returned numbers).
"""

import inspect
import re
import warnings

import pytest

import tdm_widgets as tw
from tdm_widgets import libertem_udf

numpydoc_validate = pytest.importorskip("numpydoc.validate")

#: numpydoc validation codes that fail the test: no docstring, unknown or misordered
#: sections, parameters undocumented / unknown / misordered / without a type, no
#: Returns (for a callable that returns something), no Examples.
REQUIRED = {"GL08", "GL06", "GL07", "PR01", "PR02", "PR03", "PR04", "RT01", "EX01"}

#: Return types that are numbers and so need a unit in brackets, e.g. ``[mrad]``,
#: ``[A]``, ``[counts]``, ``[dimensionless]``.
NUMERIC = re.compile(r"\b(float|ndarray|array|Signal\w*|BaseSignal|int)\b")
UNIT = re.compile(r"\[[^\]]+\]")


def public_names():
    names = [f"tdm_widgets.{n}" for n in tw.__all__ if n != "__version__"]
    for n in tw.__all__:
        obj = getattr(tw, n)
        if inspect.isclass(obj):
            for m, v in vars(obj).items():
                if not m.startswith("_") and inspect.isfunction(v):
                    names.append(f"tdm_widgets.{n}.{m}")
    names.append("tdm_widgets.cli.main")
    names += [f"tdm_widgets.libertem_udf.{n}" for n in
              ("load_weighted_detector", "apply_masks_udf", "images_from_result",
               "run_weighted_detector")]
    return names


def test_public_names_are_found():
    names = public_names()
    assert len(names) > 60 and "tdm_widgets.TDMSession.set_template" in names
    assert all(callable(getattr(libertem_udf, n.rsplit(".", 1)[1]))
               for n in names if ".libertem_udf." in n)


@pytest.mark.parametrize("name", public_names())
def test_numpydoc_sections(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpydoc warns (not errs) on unknown sections
        result = numpydoc_validate.validate(name)
    errors = [f"{code}: {msg}" for code, msg in result["errors"] if code in REQUIRED]
    assert not errors, f"{name} ({result['file']}:{result['file_line']}):\n" + "\n".join(
        errors)


@pytest.mark.parametrize("name", public_names())
def test_returned_numbers_have_units(name):
    from numpydoc.docscrape import get_doc_object

    obj = numpydoc_validate.Validator._load_obj(name)
    if inspect.isclass(obj):
        return
    doc = get_doc_object(obj)
    missing = [f"{p.name} : {p.type}" for p in doc["Returns"] + doc["Yields"]
               if NUMERIC.search(p.type or p.name) and "bool" not in (p.type or "")
               and not UNIT.search(" ".join(p.desc))]
    assert not missing, f"{name}: give the unit in brackets (e.g. [mrad], [A], " \
                        f"[dimensionless]) for the returned {missing}"


# The Examples sections run as doctests in the test command itself (pytest
# --doctest-modules over tdm_widgets/, names from the root conftest.py).
