"""Doctest namespace: every Examples section may use ``np`` and ``tw`` as a user would
after ``import numpy as np, tdm_widgets as tw``."""

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace):
    import tdm_widgets

    doctest_namespace.update(np=np, tw=tdm_widgets, tdm_widgets=tdm_widgets)
