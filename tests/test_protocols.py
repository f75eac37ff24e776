"""recurrent.protocols is the one statement of the plugin contract: MEMBERS names exactly the
members each protocol class declares, and missing_members() is what the registry checks."""
import types

import pytest

from recurrent import plugins
from recurrent.protocols import MEMBERS, Cell, Loss, Runner, Task, missing_members


def _declared(protocol):
    """The members a protocol class declares: its annotated attributes and its methods."""
    names = set(vars(protocol).get("__annotations__", {}))
    names |= {n for n, v in vars(protocol).items() if callable(v) and not n.startswith("_")}
    return names


@pytest.mark.parametrize("protocol", [Cell, Loss, Task, Runner])
def test_members_name_exactly_what_each_protocol_declares(protocol):
    members = MEMBERS[protocol]
    assert not set(members.required) & set(members.optional)
    assert set(members.required) | set(members.optional) == _declared(protocol)


def test_optional_members_the_framework_reads_are_declared():
    # masks.takes_flags reads a cell's zoneout_flags: a member plugins may define
    assert "zoneout_flags" in MEMBERS[Cell].optional


def test_missing_members_lists_required_names_in_contract_order():
    assert missing_members(object(), Loss) == ["name", "value_and_grad"]
    assert missing_members(types.SimpleNamespace(name="x"), Loss) == ["value_and_grad"]
    bare_task = types.SimpleNamespace(**{n: None for n in MEMBERS[Task].required})
    assert missing_members(bare_task, Task) == []  # the optional members may be absent


def test_the_registry_checks_the_protocols_members():
    for kind, (_, protocol) in plugins.KINDS.items():
        assert protocol in (None, Cell, Loss, Task), kind
    for kind, protocol in (("cell", Cell), ("loss", Loss), ("task", Task)):
        for entry in plugins.entries(kind).values():
            assert missing_members(entry.obj, protocol) == [], entry.name


def test_builtin_cells_and_losses_declare_the_optional_members_they_have():
    assert hasattr(plugins.get_cell("lstm"), "infer")
    assert {plugins.get_loss(n).target_kind for n in plugins.losses()} <= {"class", "dense"}
