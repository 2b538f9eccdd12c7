"""HyperSpy's progress-bar convention for the public functions.

Every public function that passes over the data takes ``show_progressbar`` (HyperSpy's
keyword): ``True``/``False``, or ``None`` for ``hs.preferences.General.show_progressbar``.
The older keyword ``progress=`` still works and warns
(``PendingDeprecationWarning``, hidden by default: it becomes a ``DeprecationWarning``
once the project's notebooks have moved to ``show_progressbar``).
"""

from __future__ import annotations

import functools
import inspect
import warnings

#: Where ``show_progressbar=None`` takes its default: a callable returning a bool,
#: registered by the signal layer (HyperSpy's ``hs.preferences``); core never imports
#: HyperSpy itself.
_preference = None


def use_preference(source):
    """Register the callable that gives the default of ``show_progressbar=None``.

    Parameters
    ----------
    source : callable or None
        Returns the preferred bool when called (None restores "always on").

    Returns
    -------
    callable or None
        The source registered before (to restore it).

    Examples
    --------
    >>> before = use_preference(lambda: False)
    >>> progressbar_enabled(None), progressbar_enabled(True)
    (False, True)
    >>> _ = use_preference(before)
    """
    global _preference
    before, _preference = _preference, source
    return before


def progressbar_enabled(show_progressbar: bool | None = None) -> bool:
    """``show_progressbar`` as a bool; None reads the registered preference
    (HyperSpy's ``hs.preferences.General.show_progressbar`` once the package is
    imported; True when none is registered)."""
    if show_progressbar is not None:
        return bool(show_progressbar)
    return True if _preference is None else bool(_preference())


def hyperspy_progressbar(func):
    """Decorate a function with a ``show_progressbar=None`` parameter: the value it
    receives is resolved to a bool (:func:`progressbar_enabled`), and ``progress=`` is
    accepted as a deprecated alias (``PendingDeprecationWarning``)."""
    sig = inspect.signature(func)
    if "show_progressbar" not in sig.parameters:
        raise TypeError(f"{func.__qualname__} has no show_progressbar parameter")

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if "progress" in kwargs:
            if "show_progressbar" in kwargs:
                raise TypeError(f"{func.__qualname__}() got both show_progressbar= and its "
                                "deprecated alias progress=")
            warnings.warn(f"{func.__qualname__}(progress=...) is deprecated; use "
                          "show_progressbar=... (HyperSpy's keyword)",
                          PendingDeprecationWarning, stacklevel=2)
            kwargs["show_progressbar"] = kwargs.pop("progress")
        bound = sig.bind(*args, **kwargs)
        bound.arguments["show_progressbar"] = progressbar_enabled(
            bound.arguments.get("show_progressbar"))
        return func(*bound.args, **bound.kwargs)

    return wrapper
