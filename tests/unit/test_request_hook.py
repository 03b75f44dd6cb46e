"""The scheduler-side request hook (hooks/requests.py) on SGLang's own request objects."""

from http import HTTPStatus
from types import SimpleNamespace

from sglang.srt.managers.schedule_batch import FINISH_ABORT, Req
from sglang.srt.sampling.sampling_params import SamplingParams

from sglang_soft_thinking.hooks.batch import faulty_rows
from sglang_soft_thinking.hooks.requests import resolve_batch
from sglang_soft_thinking.hooks.results import _around_collect
from sglang_soft_thinking.output import META_INFO_KEY
from sglang_soft_thinking.records import FAULT_RECORD
from sglang_soft_thinking.runtime import SETTINGS_ATTR


def test_a_request_whose_settings_cannot_be_resolved_is_aborted_not_served_plainly():
    # The server validates first, so this only happens if the two disagree; the request
    # must then end with an error, never run as a plain request behind soft thinking.
    bad = Req("bad", "hi", [1, 2, 3], SamplingParams(custom_params={"soft_thinking": {"max_topk": -5}}))
    plain = Req("plain", "hi", [1, 2, 3], SamplingParams())
    resolve_batch(SimpleNamespace(tokenizer=None), SimpleNamespace(reqs=[bad, plain]))
    # Flagged, not yet aborted: every tensor-parallel rank aborts it after the step in
    # which the ranks agree on its flag (agreement.py), from the step's error record.
    assert bad.to_finish is None and faulty_rows([bad, plain]) == [0]
    bad.customized_info = {META_INFO_KEY: [FAULT_RECORD]}
    _around_collect(lambda *args: None, None, 0, bad, None)  # the record is in place already
    assert isinstance(bad.to_finish, FINISH_ABORT)
    assert bad.to_finish.status_code == HTTPStatus.INTERNAL_SERVER_ERROR
    assert "max_topk" in bad.to_finish.message
    assert plain.to_finish is None and getattr(plain, SETTINGS_ATTR) is None
