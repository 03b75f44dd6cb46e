"""SoftCoT prompts: markers chosen per tokenizer, N placeholders at the right positions."""

import pytest
from transformers import AutoTokenizer

from softcot_plugin.templates import PromptTemplates, TemplateError, choose_markers


@pytest.fixture(scope="module")
def tokenizer(default_model):
    return AutoTokenizer.from_pretrained(default_model)


def test_default_tokenizer_gets_its_notebook_tokens(tokenizer):
    family, markers = choose_markers(tokenizer)
    assert family == "smollm2"
    for text in (markers.placeholder, markers.begin, markers.end):
        assert len(tokenizer.encode(text, add_special_tokens=False)) == 1


def test_prompts_hold_n_placeholders_inside_the_markers(tokenizer):
    _, markers = choose_markers(tokenizer)
    templates = PromptTemplates.for_task("math", markers, 5)
    question = "Ava has 3 pens and buys 4 more. How many pens does she have?"
    placeholder, begin, end = (tokenizer.convert_tokens_to_ids(t)
                               for t in (markers.placeholder, markers.begin, markers.end))
    for ids in (templates.assistant_ids(tokenizer, question), templates.base_ids(tokenizer, question)):
        positions = templates.placeholder_positions(tokenizer, ids)
        assert positions == list(range(positions[0], positions[0] + 5))
        assert ids[positions[0] - 1] == begin and ids[positions[-1] + 1] == end
        assert [i for i, t in enumerate(ids) if t == placeholder] == positions
        assert "Ava has 3 pens" in tokenizer.decode(ids)
    # The assistant's turn opens with the thought block: it ends the assistant prompt.
    assistant = templates.assistant_ids(tokenizer, question)
    assert assistant[-1] == end
    plain = templates.plain_user_content(question)
    assert question in plain and markers.placeholder not in plain and "####" in plain


def test_placeholder_in_the_question_is_refused(tokenizer):
    _, markers = choose_markers(tokenizer)
    templates = PromptTemplates.for_task("multiple_choice", markers, 2)
    ids = templates.base_ids(tokenizer, f"What is {markers.placeholder}?")
    with pytest.raises(TemplateError, match="expected 2"):
        templates.placeholder_positions(tokenizer, ids)


def test_tokenizer_without_markers_is_refused():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    word_level = Tokenizer(models.WordLevel({"[UNK]": 0, "hello": 1}, unk_token="[UNK]"))
    word_level.pre_tokenizer = pre_tokenizers.Whitespace()   # "<a>" is three tokens here
    with pytest.raises(TemplateError, match="marker"):
        choose_markers(PreTrainedTokenizerFast(tokenizer_object=word_level))
