"""The task checks of `recurrent plugins check NAME` (recurrent/task_conformance.py) pass
for every built-in task on its default options and bundled data; what they catch in a
plugin's task: tests/test_plugin_task_guide.py."""
import pytest

from recurrent import plugins
from recurrent.task_conformance import check_task


@pytest.mark.parametrize("name", ["char-lm", "sentiment", "forecast", "seq2seq"])
def test_every_built_in_task_passes(name):
    results = check_task(plugins.get_task(name))
    failed = [r for r in results if not r.passed]
    assert not failed, failed
    assert {"batches train", "same batches", "evaluate"} <= {r.name for r in results}
