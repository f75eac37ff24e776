"""matplotlib's Figure and its Agg canvas, the classes every PNG recurrent draws with
(loss.png, a forecast's plot, an attention matrix), imported in this one place.
matplotlib is optional (the "plot" extra), and an installed one may still fail to import
(a broken build): both are told the same way wherever a plot is drawn."""
from __future__ import annotations

import contextlib
import re
import warnings

from .errors import UserError, error_line
from .extras import install_hint


def figure_classes() -> tuple | None:
    """(Figure, FigureCanvasAgg), or None when matplotlib cannot be imported (missing, or
    an installed one whose import fails in any way)."""
    try:
        return required("plotting")
    except UserError:
        return None


def required(what: str) -> tuple:
    """(Figure, FigureCanvasAgg); UserError saying that ``what`` ("--plot") needs
    matplotlib when it is not installed, or when its import fails in any other way."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise UserError(f"{what} needs matplotlib, which is not installed: "
                        f"{install_hint('plot')}") from None
    except Exception as e:  # an installed matplotlib that is broken
        raise UserError(f"{what} needs matplotlib, which fails to import "
                        f"({error_line(e)}); reinstall it: {install_hint('plot')}") from None
    return Figure, FigureCanvasAgg


# matplotlib's warning for a character that its font cannot draw (a CJK ideograph or an
# emoji among DejaVu Sans's missing ones), e.g. "Glyph 26085 (\N{...}) missing from font(s)
# DejaVu Sans."
_MISSING_GLYPH = re.compile(r"Glyph (\d+) .*missing from (?:current )?font")


@contextlib.contextmanager
def missing_glyphs_noted(path: str):
    """Draw within the block with matplotlib's warnings about characters its font lacks
    (two lines each, naming one of recurrent's source lines) gathered into one note on
    stderr that names them and ``path``, the PNG drawing them as empty boxes. Any other
    warning is issued again as it was."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    missing = []
    for warning in caught:
        found = _MISSING_GLYPH.match(str(warning.message))
        if found is None:
            warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                   warning.lineno)
        elif chr(int(found.group(1))) not in missing:
            missing.append(chr(int(found.group(1))))
    if missing:
        from .datafile import shown
        from .progress import warn_once
        listed = ", ".join(shown(c) for c in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        warn_once(f"note: {path}: the plot's font has no glyph for {listed}{more}: they "
                  f"are drawn as empty boxes")
