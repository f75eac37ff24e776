"""Built-in task `forecast`: time-series forecasting from CSV with an RNN encoder.

`recurrent train forecast` trains on the bundled yearly sunspot numbers; see task.py for
the model and data/SOURCE.md for the bundled series.
"""
import recurrent

from .task import ForecastTask


@recurrent.hookimpl
def register_tasks(register):
    register(ForecastTask())
