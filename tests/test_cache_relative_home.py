"""A home directory that is no absolute path (HOME=relative, as a misconfigured service
sets it) gives no cache, rather than a new one under every working directory a command
runs in."""
from __future__ import annotations

import numpy as np

from recurrent import cache


def test_a_relative_home_turns_the_cache_off(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RECURRENT_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", "home")
    assert cache.cache_dir() is None
    cache.store("ns", {"a": 1}, {"x": np.ones(2)})
    assert cache.load("ns", {"a": 1}) is None
    assert list(tmp_path.iterdir()) == []
    # an explicit relative RECURRENT_CACHE_DIR is the user's choice, kept as given
    monkeypatch.setenv("RECURRENT_CACHE_DIR", "mine")
    assert cache.cache_dir() == "mine"
