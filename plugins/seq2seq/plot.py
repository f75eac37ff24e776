"""The attention matrix of one decoded sequence as a PNG (matplotlib, optional extra
"plot"): output symbols down, source symbols across, written atomically."""
from __future__ import annotations

import numpy as np

from recurrent import matplotlib_agg
from recurrent.checkpoint import atomic_write


def attention_plot(path: str, source: list, output: list, weights: np.ndarray) -> None:
    """weights (len(output), len(source)): row t is the attention of output step t."""
    Figure, FigureCanvasAgg = matplotlib_agg.required("--plot")
    figure = Figure(figsize=(1.5 + 0.45 * len(source), 1.2 + 0.4 * len(output)),
                    layout="constrained")
    ax = figure.subplots()
    image = ax.imshow(weights, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(source)), source)
    ax.set_yticks(range(len(output)), output)
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    figure.colorbar(image, ax=ax, label="attention weight")
    # a WriteError names the file; a link the user named stays a link; symbols the font
    # cannot draw (CJK, emoji) are named in one note
    with matplotlib_agg.missing_glyphs_noted(path):
        atomic_write(path, FigureCanvasAgg(figure).print_png, follow_link=True)
