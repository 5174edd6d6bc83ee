"""The reference tokenizers (tinytorch.core.text): byte fallback, BPE training and encoding, the shipped corpus."""
import hashlib
from pathlib import Path

import numpy as np
import pytest

import tinytorch
from tinytorch.core.text import (BOS_ID, BYTE_OFFSET, EOS_ID, FIRST_LEARNED_ID, PAD_ID, count_pairs, merge_pair,
                                 pretokenize, train_bpe, train_bpe_incremental)
from tinytorch.data import load_text_corpus
from tinytorch.text import BPETokenizer, CharTokenizer

RANGES = [(0, 128), (128, 0x800), (0x800, 0xD800), (0xE000, 0x10000), (0x10000, 0x110000)]


def random_text(rng, n):
    out = []
    for _ in range(n):
        lo, hi = RANGES[int(rng.integers(0, len(RANGES)))]
        out.append(chr(int(rng.integers(lo, hi))))
        if rng.random() < 0.3:
            out.append(" the tokens"[: int(rng.integers(1, 12))])
    return "".join(out)


@pytest.fixture(scope="module")
def corpus():
    return load_text_corpus()


@pytest.fixture(scope="module")
def bpe(corpus):
    return BPETokenizer().train(corpus[:40_000], FIRST_LEARNED_ID + 100)


def test_public_namespaces():
    assert tinytorch.text.CharTokenizer is CharTokenizer and tinytorch.text.BPETokenizer is BPETokenizer
    assert tinytorch.data.load_text_corpus is load_text_corpus
    assert (PAD_ID, BOS_ID, EOS_ID, BYTE_OFFSET, FIRST_LEARNED_ID) == (0, 1, 2, 3, 259)


def test_char_tokenizer_layout_and_fallback():
    tok = CharTokenizer.from_text("hello")
    assert tok.chars == ["e", "h", "l", "o"] and tok.vocab_size == 263
    assert tok.encode("hé", bos=True, eos=True) == [1, 260, 195 + 3, 169 + 3, 2]
    assert tok.decode([1, 260, 198, 172, 2, 0]) == "hé"
    assert tok.decode([258]) == "\ufffd"


@pytest.mark.parametrize("seed", range(5))
def test_round_trips_on_random_unicode(seed, bpe):
    rng = np.random.default_rng(seed)
    char = CharTokenizer.from_text(random_text(rng, 50))
    for _ in range(50):
        s = random_text(rng, int(rng.integers(0, 40)))
        for tok in (char, bpe):
            ids = tok.encode(s, bos=True, eos=True)
            assert all(type(i) is int and 0 <= i < tok.vocab_size for i in ids)
            assert ids[0] == BOS_ID and ids[-1] == EOS_ID
            assert tok.decode(ids) == s and tok.decode(np.array(ids, dtype=np.int64)) == s


def test_pairs_and_merge():
    assert count_pairs([1, 2, 1, 2]) == {(1, 2): 2, (2, 1): 1}
    acc = {(1, 2): 5}
    assert count_pairs([1, 2], acc, weight=10) is acc and acc == {(1, 2): 15}
    assert merge_pair([1, 1, 1, 2], (1, 1), 9) == [9, 1, 2]
    assert merge_pair([1, 1, 1, 1], (1, 1), 9) == [9, 9]


def test_pretokenize_covers_the_text(corpus):
    assert "".join(pretokenize(corpus)) == corpus
    assert pretokenize("Hi  there!") == ["Hi", " ", " there", "!"]


def test_train_worked_example_and_tie_break():
    assert train_bpe("aaabdaaabac", 261) == {(100, 100): 259, (100, 101): 260}
    assert train_bpe(["ba", "ab"], 260) == {(100, 101): 259}  # tie: the smaller pair
    assert train_bpe("ab", 400) == {(100, 101): 259}  # stops when nothing is left to merge
    assert train_bpe("a b", 300) == {(35, 101): 259}  # never across chunks


def test_training_is_deterministic_and_prefix_closed(corpus):
    text = corpus[:20_000]
    big = train_bpe(text, FIRST_LEARNED_ID + 60)
    assert train_bpe(text, FIRST_LEARNED_ID + 60) == big
    small = train_bpe(text, FIRST_LEARNED_ID + 25)
    assert list(small.items()) == list(big.items())[:25]


def test_incremental_trainer_learns_the_same_merges(corpus):
    rng = np.random.default_rng(0)
    for _ in range(20):
        texts = ["".join(rng.choice(list("abcab ab  .é"), size=80)) for _ in range(3)]
        assert list(train_bpe_incremental(texts, 300).items()) == list(train_bpe(texts, 300).items())
    text = corpus[:30_000]
    assert list(train_bpe_incremental(text, FIRST_LEARNED_ID + 80).items()) == list(train_bpe(text, FIRST_LEARNED_ID + 80).items())


def test_encode_applies_merges_in_learning_order():
    tok = BPETokenizer({(101, 102): 259, (100, 101): 260})
    assert tok.encode("abc") == [100, 259]
    assert BPETokenizer({(100, 100): 259, (259, 259): 260}).encode("aaaa") == [260]


def test_encode_reproduces_training_segmentation(bpe, corpus):
    """Encoding a training chunk replays training: more merges never lengthen it."""
    text = corpus[:40_000]
    lengths = [len(BPETokenizer(dict(list(bpe.merges.items())[:k])).encode(text)) for k in (0, 25, 50, 100)]
    assert lengths[0] == len(text.encode("utf-8")) and lengths == sorted(lengths, reverse=True)
    assert lengths[-1] < 0.7 * lengths[0]


@pytest.mark.parametrize("call, exc", [
    (lambda: train_bpe("abc", 258), ValueError), (lambda: train_bpe("abc", 300.0), TypeError),
    (lambda: train_bpe(["a", 1], 300), TypeError), (lambda: BPETokenizer({(100, 101): 260}), ValueError),
    (lambda: BPETokenizer().decode([259]), ValueError), (lambda: BPETokenizer().decode([1.5]), TypeError),
    (lambda: BPETokenizer().encode(b"x"), TypeError), (lambda: CharTokenizer("ab"), TypeError),
    (lambda: CharTokenizer(["a", "a"]), ValueError), (lambda: CharTokenizer.from_text(None), TypeError),
])
def test_bad_input(call, exc):
    with pytest.raises(exc):
        call()


def test_shipped_corpus(corpus):
    root = Path(__file__).resolve().parents[2]
    path = root / "data" / "corpus" / "tinytorch_prose.txt"
    assert corpus == path.read_text(encoding="utf-8")
    assert len(corpus.encode("utf-8")) >= 100_000
    assert "TinyTorch" in corpus and "## Learning objectives" in corpus and "### BEGIN" not in corpus
    readme = (root / "data" / "corpus" / "README.md").read_text(encoding="utf-8")
    assert hashlib.sha256(path.read_bytes()).hexdigest() in readme


def test_corpus_honours_tinytorch_data(tmp_path, monkeypatch):
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "tinytorch_prose.txt").write_text("héllo", encoding="utf-8")
    monkeypatch.setenv("TINYTORCH_DATA", str(tmp_path))
    assert load_text_corpus() == "héllo"
    monkeypatch.setenv("TINYTORCH_DATA", str(tmp_path / "nothing"))
    with pytest.raises(FileNotFoundError):
        load_text_corpus()
