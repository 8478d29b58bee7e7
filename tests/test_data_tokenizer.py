from uarbench.data.tokenizer import WordTokenizer


def _tok(max_len: int = 60) -> WordTokenizer:
    reports = ["the heart is normal .", "the heart is big .", "the lungs are clear ."] * 3 + ["rare ."]
    return WordTokenizer.build(reports, threshold=3, max_seq_length=max_len)


def test_vocabulary_keeps_words_at_threshold_sorted_with_distinct_specials():
    tok = _tok()
    assert "rare" not in tok.words and "heart" in tok.words
    assert list(tok.words) == sorted(tok.words)
    assert len({tok.pad_id, tok.bos_id, tok.eos_id, tok.unk_id}) == 4
    assert len(tok) == len(tok.words) + 4


def test_encode_decode_round_trip_and_unk():
    tok = _tok()
    ids = tok.encode("the heart is rare .")
    assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
    assert tok.decode(ids) == "the heart is <unk> ."


def test_truncation_follows_r2gen_positions_including_bos():
    tok = _tok(max_len=4)
    ids = tok.encode("the heart is normal .")
    assert len(ids) == 4 and tok.eos_id not in ids
    assert tok.decode(ids) == "the heart is"


def test_serialisation_round_trip():
    tok = _tok()
    again = WordTokenizer.from_dict(tok.to_dict())
    assert again == tok and again.content_hash() == tok.content_hash()
