"""The records the scheduler keeps per output token (records.py) stay small and read back
exactly what the step computed."""

import pickle
import sys

import torch
from request_settings import all_rows, request_settings

from sglang_soft_thinking.records import StepRecords
from sglang_soft_thinking.step import soft_step
from sglang_soft_thinking.table import SoftThinkingTable

VOCAB = 64


def test_a_thinking_step_record_is_compact_and_exact():
    table = SoftThinkingTable(2, k_max=11, device="cpu")
    table.admit([0, 1], [request_settings(max_topk=10, think_end_ids=[VOCAB - 1]),
                         request_settings(max_topk=10, think_end_ids=[VOCAB - 1], max_thinking_tokens=0)])
    result = soft_step(table, torch.tensor([0, 1]), torch.randn(2, VOCAB), all_rows(2, 10, VOCAB))
    records = StepRecords(result, {0: 0, 1: 1})
    think, forced = records[0], records[1]
    assert think[0] == "think" and forced[0] == "budget"
    assert think[2] == result.ids[0, :len(think[2])].tolist()
    assert think[3] == result.weights[0, :len(think[3])].tolist()  # float32 round trip: exact
    assert think[1] == result.entropy[0].item()
    size = sys.getsizeof(think) + sys.getsizeof(think._data)
    assert len(think[2]) == 10 and size < 260, f"{size} bytes for a step of 10 candidates"
    assert records[1] is StepRecords(result, {0: 0, 1: 1})[1], "records without a step's input are shared"
    assert pickle.loads(pickle.dumps(think)) == (think[0], think[1], None, None, think[4])


def test_a_flagged_row_reads_as_an_error_and_a_record_that_cannot_be_read_costs_its_row_alone():
    from sglang_soft_thinking.agreement import FLAG_FAULT, FLAG_INPUT

    table = SoftThinkingTable(3, k_max=11, device="cpu")
    table.admit([0, 1, 2], [request_settings(max_topk=10, think_end_ids=[VOCAB - 1])] * 3)
    result = soft_step(table, torch.tensor([0, 1, 2]), torch.randn(3, VOCAB), all_rows(3, 10, VOCAB))
    # Batch rows 1, 2, 4 are the soft rows; 4 cannot be read on the host; 0 is a plain row.
    records = StepRecords(result, {1: 0, 2: 1, 4: 2}, fault_positions=frozenset({2}))
    records.set_flags(torch.tensor([FLAG_FAULT, 0, FLAG_INPUT, 0, 0], dtype=torch.int32))
    assert records[0][0] == "error" and "fault" in records[0][1]  # a plain row flagged by a rank
    assert records[1][0] == "think" and records[1][2] == result.ids[0, :len(records[1][2])].tolist()
    assert records[2][0] == "error" and "not mixed" in records[2][1]
    assert records[3] is None
    assert records[4][0] == "error" and "could not be read" in records[4][1]
    # The soft step failed on this rank: no result, every soft row flagged.
    failed = StepRecords(None, {1: 0})
    failed.set_flags(torch.tensor([0, FLAG_FAULT], dtype=torch.int32))
    assert failed[0] is None and failed[1][0] == "error"
