"""apply_config and resolve_subcall_provider: copy rlm, resolve, log failures."""

from __future__ import annotations

import logging

from codetether_magics.session.metadata import Config, RlmConfig
from codetether_magics.session.session import Session
from codetether_magics.session.subcall import subcall_provider
from codetether_magics.testing import FakeRegistry


def Registry() -> FakeRegistry:  # noqa: N802 - reads like the class it stands for
    return FakeRegistry({"known": "<provider known>"})


def test_apply_config_copies_rlm_and_is_idempotent():
    session = Session()
    config = Config(rlm=RlmConfig(mode="always", threshold=0.5, subcall_model="known/small"))
    session.apply_config(config)
    session.apply_config(config)
    assert session.metadata.rlm == config.rlm and session.metadata.rlm is not config.rlm
    assert subcall_provider(session) is None  # nothing resolved without a registry
    assert "_subcall_provider" not in session.model_dump_json()


def test_apply_config_with_a_registry_resolves_the_subcall_model():
    session = Session()
    registry = Registry()
    session.apply_config(Config(rlm=RlmConfig(subcall_model="known/small")), registry)
    assert subcall_provider(session) == ("<provider known>", "small")
    assert session.resolve_subcall_provider(registry) == ("<provider known>", "small")
    assert registry.asked == ["known/small"]  # resolved once
    assert "provider known" not in session.model_dump_json()  # runtime only, never written
    assert "_subcall_provider" not in vars(session)  # a declared private attribute, not a stray __dict__ entry


def test_failed_resolution_is_logged_not_raised(caplog):
    session = Session()
    session.metadata.rlm.subcall_model = "missing/model"
    with caplog.at_level(logging.WARNING, logger="codetether_magics.session.subcall"):
        assert session.resolve_subcall_provider(Registry()) is None
    assert "missing/model" in caplog.text and "root model" in caplog.text
    assert subcall_provider(session) is None


def test_no_subcall_model_means_nothing_to_resolve():
    registry = Registry()
    assert Session().resolve_subcall_provider(registry) is None and registry.asked == []
