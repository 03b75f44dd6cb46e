"""Token ids as text a person can read (the thought viewer's grid of concept tokens).

A token is decoded alone. Where that gives no whole character (a byte-level BPE token
holding part of a UTF-8 sequence, a byte-fallback token), its bytes are shown instead, as
``\\xe2`` escapes, so two such tokens never look alike. Whitespace stays as it is: the
page makes it visible.
"""

from __future__ import annotations

REPLACEMENT = "\ufffd"  # what a decoder writes for bytes that are no whole character


def _byte_level_alphabet() -> dict[str, int]:
    """Byte-level BPE's stand-in characters, back to their bytes: a byte that prints as
    itself (``!``..``~``, ``¡``..``¬``, ``®``..``ÿ``) keeps its own character, the others
    (controls, space, soft hyphen) take the characters from 256 on, in byte order."""
    prints_as_itself = {*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)}
    alphabet, next_stand_in = {}, 256
    for byte in range(256):
        if byte in prints_as_itself:
            alphabet[chr(byte)] = byte
        else:
            alphabet[chr(next_stand_in)] = byte
            next_stand_in += 1
    return alphabet


_BYTE_LEVEL = _byte_level_alphabet()


class TokenTexts:
    """Each token id's readable text, from the model's tokenizer, cached."""

    def __init__(self, tokenizer):
        self._tokenizer = tokenizer
        self._cache: dict[int, str] = {}
        self.vocab_size = len(tokenizer)

    def text(self, token_id: int) -> str:
        text = self._cache.get(token_id)
        if text is None:
            text = self._cache[token_id] = self._readable(token_id)
        return text

    def _readable(self, token_id: int) -> str:
        text = self._tokenizer.decode([token_id], skip_special_tokens=False)
        if REPLACEMENT not in text:
            return text
        piece = self._tokenizer.convert_ids_to_tokens(token_id)
        if isinstance(piece, str) and piece and all(char in _BYTE_LEVEL for char in piece):
            return bytes(_BYTE_LEVEL[char] for char in piece).decode("utf-8", "backslashreplace")
        return piece if isinstance(piece, str) and piece else text
