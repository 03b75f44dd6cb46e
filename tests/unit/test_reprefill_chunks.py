"""A retracted request's re-prefill of prompt + output split into prefill chunks
(hooks/batch.py ``_history``): a chunk may start past the prompt only where the chunks
before it in the same re-prefill reached, and each chunk feeds the recorded concept
tokens of exactly the output positions it covers."""

from types import SimpleNamespace

import pytest

from sglang_soft_thinking.hooks import batch as batch_hook
from sglang_soft_thinking.reprefill import Shared

PROMPT_LEN, OUTPUT_LEN, K_MAX = 10, 20, 3


def fed(position: int):
    """The recorded input of output position ``position``: every third one fed its token."""
    return None if position % 3 == 2 else ([100 + position, 7], [0.75, 0.25])


def resumed_request(retraction_count: int = 1):
    return SimpleNamespace(rid="r", origin_input_ids=list(range(PROMPT_LEN)), retraction_count=retraction_count)


def shared_chunk(req, prefix: int, length: int) -> Shared:
    """What the rank with the records shares for the chunk: its output positions' inputs."""
    first, stop = batch_hook._reprefilled_outputs(req, prefix, length)
    return Shared(fed=[(i, *fed(i)) for i in range(first, stop) if fed(i) is not None])


def expected(prefix: int, length: int, start: int):
    """Flattened positions, ids and weights of the chunk [prefix, prefix + length) that sits at
    ``start`` in its batch, written out from ``fed`` position by position."""
    rows = [(start + p - prefix, fed(p - PROMPT_LEN)) for p in range(prefix, prefix + length)
            if p >= PROMPT_LEN and fed(p - PROMPT_LEN) is not None]
    return ([r[0] for r in rows], [r[1][0] + [0] * (K_MAX - 2) for r in rows],
            [r[1][1] + [0.0] * (K_MAX - 2) for r in rows])


def history(req, prefix: int, length: int, start: int = 0):
    return batch_hook._history(req, prefix, length, start, K_MAX, shared_chunk(req, prefix, length))


@pytest.mark.parametrize("chunk", [4, 7, 16])
def test_chunks_of_a_re_prefill_feed_each_output_position_once(chunk):
    req, fed_positions = resumed_request(), []
    for prefix in range(0, PROMPT_LEN + OUTPUT_LEN, chunk):
        length = min(chunk, PROMPT_LEN + OUTPUT_LEN - prefix)
        start = 5  # another request's tokens come first in the batch
        got = history(req, prefix, length, start)
        assert got == expected(prefix, length, start)
        fed_positions += [prefix + p - start for p in got[0]]
    assert fed_positions == [PROMPT_LEN + i for i in range(OUTPUT_LEN) if fed(i) is not None]


def test_a_chunk_may_start_where_the_re_prefill_reached_and_no_further():
    req = resumed_request()
    history(req, PROMPT_LEN - 2, 8)  # the first chunk starts on the cached prompt
    with pytest.raises(RuntimeError, match="starts at 17, past its prompt"):
        history(req, PROMPT_LEN + 7, 4)
    assert history(req, PROMPT_LEN + 6, 4) == expected(PROMPT_LEN + 6, 4, 0)
    assert history(req, PROMPT_LEN + 8, 4) == expected(PROMPT_LEN + 8, 4, 0)  # redoing a part is allowed


def test_a_prefix_past_the_prompt_is_refused_without_chunks_of_this_re_prefill():
    """Not served from the tree, and not left by a re-prefill before a later retraction:
    that KV was freed when the request was retracted again."""
    req = resumed_request()
    with pytest.raises(RuntimeError, match="past its prompt"):
        history(req, PROMPT_LEN + 1, 4)
    history(req, 0, PROMPT_LEN + 8)
    req.retraction_count += 1
    with pytest.raises(RuntimeError, match="past its prompt"):
        history(req, PROMPT_LEN + 4, 4)
    assert history(req, PROMPT_LEN, 4) == expected(PROMPT_LEN, 4, 0)


def test_a_request_that_is_not_resumed_takes_no_recorded_inputs():
    assert batch_hook._history(resumed_request(), 0, 8, 0, K_MAX, None) == ([], [], [])


def test_a_chunk_whose_inputs_could_not_be_had_fails_with_their_error():
    with pytest.raises(RuntimeError, match="records do not cover"):
        batch_hook._history(resumed_request(), 0, 8, 0, K_MAX, Shared(error="its records do not cover it"))
