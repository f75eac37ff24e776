"""matplotlib's Figure and its Agg canvas, the classes every PNG recurrent draws with
(loss.png, a forecast's plot, an attention matrix), imported in this one place.
matplotlib is optional (the "plot" extra), and an installed one may still fail to import
(a broken build): both are told the same way wherever a plot is drawn."""
from __future__ import annotations

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
