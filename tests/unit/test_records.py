"""The records the scheduler keeps per output token (records.py) stay small, read back
exactly what the step computed, and reach the server as SGLang slices them."""

import pickle
import tracemalloc
from array import array

import pytest
import torch
from request_settings import all_rows, request_settings

from sglang_soft_thinking.records import NO_RECORD, RankRecords, RequestRecords, StepRecords, sends_outputs
from sglang_soft_thinking.runtime import SETTINGS_ATTR
from sglang_soft_thinking.step import soft_step
from sglang_soft_thinking.table import SoftThinkingTable

VOCAB = 64
MAX_TOPK = 10


def thinking_steps(num_steps: int, max_topk: int = MAX_TOPK, rows: int = 1, seed: int = 0):
    """Real thinking steps of ``rows`` requests with every candidate kept (no min_p, flat
    logits, no Cold Stop or budget): each step's input has ``max_topk`` ids."""
    table = SoftThinkingTable(rows, k_max=max_topk + 1, device="cpu")
    table.admit(list(range(rows)), [request_settings(max_topk=max_topk, think_end_ids=[VOCAB - 1])] * rows)
    generator = torch.Generator().manual_seed(seed)
    logits = [torch.randn(rows, VOCAB, generator=generator) for _ in range(num_steps)]
    logits = [torch.where(torch.arange(VOCAB) == VOCAB - 1, -30.0, row) for row in logits]  # never ends
    return [soft_step(table, torch.arange(rows), row, all_rows(rows, max_topk, VOCAB)) for row in logits]


class _Hooks:
    """SGLang's hook registry, as far as a test needs it: the hooks a seam registers."""

    def __init__(self):
        self.hooks = []

    def register(self, target, hook, hook_type):
        self.hooks.append((target, hook, hook_type))


def collect_with_the_plugin():
    """SGLang's own ``_maybe_collect_customized_info`` with the plugin's hook on it, applied
    the way SGLang's registry applies a hook of that type."""
    from sglang.srt.managers.scheduler_components.batch_result_processor import SchedulerBatchResultProcessor
    from sglang.srt.plugins.hook_registry import HookType

    from sglang_soft_thinking.hooks import results

    hooks = _Hooks()
    results.register(hooks, HookType)
    original = SchedulerBatchResultProcessor._maybe_collect_customized_info
    target, hook, kind = next(h for h in hooks.hooks if h[0].endswith("._maybe_collect_customized_info"))
    if kind == HookType.AROUND:
        return lambda *args: hook(original, None, *args)
    assert kind == HookType.AFTER
    return lambda *args: hook(original(None, *args), None, *args)


def soft_request(return_trace: bool = False):
    from sglang.srt.managers.schedule_batch import Req
    from sglang.srt.sampling.sampling_params import SamplingParams

    req = Req("r", "", array("q", [1, 2, 3]), SamplingParams(max_new_tokens=100000))
    setattr(req, SETTINGS_ATTR, request_settings(max_topk=MAX_TOPK, return_trace=return_trace))
    return req


def bytes_per_thinking_token(return_trace: bool, tokens: int = 2000) -> float:
    """What a soft request keeps per thinking token after SGLang collected ``tokens`` steps."""
    from sglang.srt.layers.logits_processor import LogitsProcessorOutput

    from sglang_soft_thinking.output import META_INFO_KEY

    collect = collect_with_the_plugin()
    steps = thinking_steps(40)
    req = soft_request(return_trace)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(tokens):
        output = LogitsProcessorOutput(next_token_logits=None)
        output.customized_info = {META_INFO_KEY: StepRecords(steps[i % 40], {0: 0})}
        collect(0, req, output)
        del output
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(req.customized_info[META_INFO_KEY]) == tokens
    return grown / tokens


@pytest.mark.parametrize("return_trace", [False, True])
def test_a_request_keeps_at_most_100_bytes_per_thinking_token_and_nothing_on_other_ranks(return_trace):
    from sglang.srt.runtime_context import get_parallel

    with get_parallel().override(pp_rank=0, attn_tp_rank=0, attn_cp_rank=0):
        server_rank = bytes_per_thinking_token(return_trace)
    with get_parallel().override(pp_rank=0, attn_tp_rank=1, attn_cp_rank=0):
        other_rank = bytes_per_thinking_token(return_trace)
    # int32 ids and float32 weights of 10 candidates are 80 bytes, kept where a resume is planned.
    assert server_rank <= 100, f"{server_rank:.0f} bytes per thinking token on the rank that sends outputs"
    # A few hundred bytes for the whole request, spread over 2000 tokens.
    assert other_rank < 1, f"{other_rank:.1f} bytes per thinking token on another rank"


def test_records_read_back_exactly_and_reach_the_server_as_tuples():
    table = SoftThinkingTable(3, k_max=11, device="cpu")
    table.admit([0, 1, 2], [request_settings(max_topk=10, think_end_ids=[VOCAB - 1]),
                            request_settings(max_topk=10, think_end_ids=[VOCAB - 1], max_thinking_tokens=0),
                            request_settings(max_topk=10, think_end_ids=[VOCAB - 1])])
    results = [soft_step(table, torch.tensor([0, 1, 2]), torch.randn(3, VOCAB), all_rows(3, 10, VOCAB))
               for _ in range(3)]
    # Batch rows 3, 5 and 6 hold the soft requests; row 4 is a plain one.
    plain, traced, forced, local = [], RequestRecords(traced=True), RequestRecords(), RequestRecords()
    for result in results:
        step = StepRecords(result, {3: 0, 5: 1, 6: 2})
        plain.append(step[4])
        traced.append(step[3])
        forced.append(step[5])
        local.append(step[6])
    local.append(None)  # a step without a record (a request aborted mid-step)
    assert plain == [None] * 3
    for i, result in enumerate(results):
        support = int((result.weights[0] > 0).sum())
        expected = ("think", result.entropy[0].item(), result.ids[0, :support].tolist(),
                    result.weights[0, :support].tolist(), result.pending[0].item())
        assert traced[i] == expected  # float32 round trip: exact
        assert traced.input_of(i) == (expected[2], expected[3]) and traced.entropy_of(i) == expected[1]
        assert local[i][:2] == ("think", result.entropy[2].item()) and local[i][2:4] == (None, None)
        assert local.input_of(i) == (result.ids[2, :int((result.weights[2] > 0).sum())].tolist(),
                                     result.weights[2, :int((result.weights[2] > 0).sum())].tolist())
    assert forced[:] == [("budget", None, None, None, 0)] + [("answer", None, None, None, 0)] * 2
    assert local[3] is None and local.kind(3) is None and local._kinds[3] == NO_RECORD
    # SGLang sends slices from where it last sent to the end: in order, out of order, pickled.
    whole = [traced[i] for i in range(3)]
    assert traced[1:] == whole[1:] and traced[:2] == whole[:2] and traced[0:3] == whole and traced[-1] == whole[2]
    assert pickle.loads(pickle.dumps(traced[0:3])) == whole
    assert list(local) == [local[i] for i in range(4)] and len(local) == 4


def test_only_the_rank_that_sends_outputs_keeps_records_token_by_token():
    from sglang.srt.runtime_context import get_parallel

    from sglang_soft_thinking.hooks.results import records_for
    from sglang_soft_thinking.records import FAULT_RECORD

    assert sends_outputs(0, 0, 0)
    assert not sends_outputs(0, 1, 0) and not sends_outputs(1, 0, 0) and not sends_outputs(0, 0, 1)
    for ranks, expected in (((0, 0, 0), RequestRecords), ((0, 3, 0), RankRecords)):
        with get_parallel().override(pp_rank=ranks[0], attn_tp_rank=ranks[1], attn_cp_rank=ranks[2]):
            assert type(records_for(soft_request(return_trace=True))) is expected
    server, other = RequestRecords(traced=True), RankRecords()
    steps = thinking_steps(5, rows=2)
    forced = SoftThinkingTable(1, k_max=MAX_TOPK + 1, device="cpu")
    forced.admit([0], [request_settings(max_topk=MAX_TOPK, think_end_ids=[VOCAB - 1], max_thinking_tokens=0)])
    budget = soft_step(forced, torch.tensor([0]), torch.randn(1, VOCAB), all_rows(1, MAX_TOPK, VOCAB))
    for item in [StepRecords(result, {0: 0})[0] for result in steps] + [StepRecords(budget, {0: 0})[0], None,
                                                                         FAULT_RECORD]:
        server.append(item)
        other.append(item)
        # The other rank knows as much as the batch hook asks: how many, and the last kind.
        assert len(other) == len(server) and other.kind(-1) == server.kind(-1)
        assert other.last_code == server.last_code
    assert [server.kind(i) for i in range(len(server))] == ["think"] * 5 + ["budget", None, "error"]
    with pytest.raises(IndexError):
        other.kind(0)
    # SGLang's output streamer slices them on every rank (and sends nothing from this one).
    assert other[2:len(other)] == [None] * (len(other) - 2) and other[-1] is None


def test_an_input_wider_than_a_byte_counts_is_kept_whole():
    from sglang_soft_thinking.phases import KIND_THINK
    from sglang_soft_thinking.step import StepResult
    from sglang_soft_thinking.table import SNAPSHOT_COLUMNS

    records = RequestRecords(traced=True)
    for width in (3, 300, 5):
        weights = torch.tensor([weights_of(width)])
        result = StepResult(tokens=torch.tensor([7]), kinds=torch.tensor([KIND_THINK]),
                            entropy=torch.tensor([1.5]), ids=torch.arange(width).unsqueeze(0) + 1000,
                            weights=weights, pending=torch.tensor([0]),
                            snapshot=torch.zeros(1, len(SNAPSHOT_COLUMNS)))
        records.append(StepRecords(result, {0: 0})[0])
    assert [len(records.input_of(i)[0]) for i in range(3)] == [3, 300, 5]
    assert records.input_of(1) == (list(range(1000, 1300)), weights_of(300))
    assert records[2][2:4] == (list(range(1000, 1005)), weights_of(5))


def weights_of(width: int) -> list[float]:
    """Weights that sort descending, none of them zero."""
    return (torch.arange(width, 0, -1, dtype=torch.float32) / (width * (width + 1) / 2)).tolist()


def test_reads_in_any_order_find_each_steps_input():
    import random

    results = thinking_steps(30, max_topk=4, rows=2, seed=5)
    records, expected = RequestRecords(traced=True), []
    rng = random.Random(0)
    for result in results:
        row = rng.choice([0, 1, None])  # this request's row, or no record this step
        records.append(StepRecords(result, {0: 0, 1: 1})[row] if row is not None else None)
        if row is None:
            expected.append(None)
            continue
        support = int((result.weights[row] > 0).sum())
        expected.append(("think", result.entropy[row].item(), result.ids[row, :support].tolist(),
                         result.weights[row, :support].tolist(), result.pending[row].item()))
    for _ in range(200):
        i = rng.randrange(len(expected))
        assert records[i] == expected[i]
        if expected[i] is not None:
            assert records.input_of(i) == tuple(expected[i][2:4])
        a, b = sorted(rng.sample(range(len(expected) + 1), 2))
        assert records[a:b] == expected[a:b]


def test_a_flagged_row_reads_as_an_error_and_a_record_that_cannot_be_read_costs_its_row_alone():
    from sglang_soft_thinking.agreement import FLAG_FAULT, FLAG_INPUT

    table = SoftThinkingTable(3, k_max=11, device="cpu")
    table.admit([0, 1, 2], [request_settings(max_topk=10, think_end_ids=[VOCAB - 1])] * 3)
    result = soft_step(table, torch.tensor([0, 1, 2]), torch.randn(3, VOCAB), all_rows(3, 10, VOCAB))
    # Batch rows 1, 2, 4 are the soft rows; 4 cannot be read on the host; 0 is a plain row.
    records = StepRecords(result, {1: 0, 2: 1, 4: 2}, fault_positions=frozenset({2}))
    records.set_flags(torch.tensor([FLAG_FAULT, 0, FLAG_INPUT, 0, 0], dtype=torch.int32))
    assert records[0][0] == "error" and "fault" in records[0][1]  # a plain row flagged by a rank
    assert records[3] is None
    kept = {row: RequestRecords(traced=True) for row in (1, 2, 4)}
    for row, request in kept.items():
        request.append(records[row])
    think = kept[1][0]
    assert think[0] == "think" and think[2] == result.ids[0, :len(think[2])].tolist()
    assert kept[2][0][0] == "error" and "not mixed" in kept[2][0][1]
    assert kept[4][0][0] == "error" and "could not be read" in kept[4][0][1]
    assert [kept[row].kind(0) for row in (1, 2, 4)] == ["think", "error", "error"]
    flagged = RequestRecords()
    flagged.append(records[0])  # a fault flagged by some rank, kept by a soft request
    assert flagged.kind(-1) == "error" and flagged[-1] == records[0]
    # The soft step failed on this rank: no result, every soft row flagged.
    failed = StepRecords(None, {1: 0})
    failed.set_flags(torch.tensor([0, FLAG_FAULT], dtype=torch.int32))
    assert failed[0] is None and failed[1][0] == "error"
