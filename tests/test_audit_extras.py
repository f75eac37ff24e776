"""Audit (mutation testing) of recurrent/extras.py: an extra's requirements are those
whose marker names that extra exactly (not one it is a prefix of), and without install
metadata there are none (an empty list, as documented)."""
from __future__ import annotations

from recurrent import extras


def test_an_extra_is_matched_by_its_whole_name():
    assert extras.requirements("onnx")  # the installed metadata lists it
    assert extras.requirements("onn") == []
    assert extras.requirements("mp") == []
    assert extras.requirements("plo") == []


def test_without_install_metadata_there_are_no_requirements(monkeypatch):
    from importlib import metadata

    def missing(name):
        raise metadata.PackageNotFoundError(name)
    monkeypatch.setattr(metadata, "requires", missing)
    assert extras.requirements("ets") == []


def test_a_requirement_written_with_a_blank_before_its_marker_is_named_bare(monkeypatch):
    """PEP 508 allows "spec ; marker"; the hint quotes the spec without the blank."""
    from importlib import metadata
    monkeypatch.setattr(metadata, "requires", lambda name: [
        "numpy>=1.24", 'pkg-a>=1 ; extra == "x"', "pkg-b ; extra == 'y'"])
    assert extras.requirements("x") == ["pkg-a>=1"]
    assert extras.install_hint("y") == "pip install pkg-b (recurrent's y extra)"
