"""The `sentiment` task plugin: `recurrent train sentiment` classifies texts read from CSV.

Default data: Rotten Tomatoes review snippets (fresh/rotten), bundled in data/ (see
data/SOURCE.md). Registered through the same hook a third-party task would use.
"""
import recurrent

from .task import TASK, SentimentTask

__all__ = ["SentimentTask", "TASK", "register_tasks"]


@recurrent.hookimpl
def register_tasks(register):
    register(TASK)
