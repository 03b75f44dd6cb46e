"""With the plugin off or not loaded, soft-thinking requests are refused, never decoded plainly.

The schedulers' start-up reports say whether they run soft thinking (hooks/handshake.py);
a switched-off plugin refuses soft-thinking requests in the tokenizer manager
(hooks/requests.py). The servers that show both end to end are in
tests/integration/test_model_families.py (SOFTTHINK_DISABLE=1, ours and stock).
"""

from __future__ import annotations

from importlib.metadata import entry_points
from types import SimpleNamespace

import pytest

from sglang_soft_thinking.hooks.handshake import INIT_INFO_KEY, PLUGIN_NAME, merge, off_reason, report
from sglang_soft_thinking.hooks.requests import asks_for_soft_thinking, refuse_soft_thinking

ON = {"max_total_num_tokens": 4096, INIT_INFO_KEY: report(None)}


def test_every_scheduler_reporting_soft_thinking_on_means_on():
    assert off_reason([ON]) is None
    assert off_reason([ON, dict(ON)]) is None


def test_a_switched_off_scheduler_gives_its_reason():
    off = {INIT_INFO_KEY: report("SOFTTHINK_DISABLE=1 switched it off")}
    assert off_reason([off]) == "SOFTTHINK_DISABLE=1 switched it off"
    assert off_reason([ON, off]) == "SOFTTHINK_DISABLE=1 switched it off"


def test_a_scheduler_that_never_loaded_the_plugin_counts_as_off():
    """It reports nothing about soft thinking; with an SGLANG_PLUGINS allow-list that
    leaves the plugin out, the reason names the variable."""
    silent = {"max_total_num_tokens": 4096}
    assert off_reason([silent]) == "the engine did not load the soft-thinking plugin"
    assert off_reason([ON, silent]) is not None
    reason = off_reason([silent], plugins_allowed="other_plugin")
    assert reason.startswith("SGLANG_PLUGINS=other_plugin leaves out") and PLUGIN_NAME in reason
    assert off_reason([silent], plugins_allowed=f"other, {PLUGIN_NAME}") == (
        "the engine did not load the soft-thinking plugin")
    assert off_reason([]) is not None


def test_sglang_plugins_names_the_plugin_by_its_entry_point():
    """SGLANG_PLUGINS lists entry-point names: ours is the one off_reason looks for."""
    names = {ep.name: ep.value for ep in entry_points(group="sglang.srt.plugins")}
    assert names.get(PLUGIN_NAME) == "sglang_soft_thinking.plugin:register"


def test_a_data_parallel_controller_merges_its_schedulers_reports():
    assert merge([report(None), report(None)]) == report(None)
    assert merge([report(None), report("off here")]) == report("off here")
    assert not merge([report(None), None])["enabled"]
    assert not merge([])["enabled"]


@pytest.mark.parametrize("custom_params, asks", [
    (None, False),
    ({}, False),
    ({"other": 1}, False),
    ({"soft_thinking": {"enabled": False}}, False),
    ({"enable_soft_thinking": False, "max_topk": 5}, False),
    ({"soft_thinking": {}}, True),
    ({"soft_thinking": {"max_topk": 4}}, True),
    ({"enable_soft_thinking": True}, True),
    ({"soft_thinking": {"max_topk": 0}}, True),  # invalid, but it asks for soft thinking
])
def test_which_requests_ask_for_soft_thinking(custom_params, asks):
    assert asks_for_soft_thinking({"temperature": 0.7, "custom_params": custom_params}) is asks


def test_a_switched_off_plugin_refuses_any_prompt_that_asks_for_soft_thinking():
    plain = {"temperature": 0.7}
    soft = {"temperature": 0.7, "custom_params": {"soft_thinking": {"max_topk": 4}}}
    refuse_soft_thinking(SimpleNamespace(sampling_params=plain), "off")
    refuse_soft_thinking(SimpleNamespace(sampling_params=[plain, plain]), "off")
    for obj in (SimpleNamespace(sampling_params=soft), SimpleNamespace(sampling_params=[plain, soft])):
        with pytest.raises(ValueError, match=r"^soft_thinking: this engine runs without soft thinking \(off\)"):
            refuse_soft_thinking(obj, "off")
