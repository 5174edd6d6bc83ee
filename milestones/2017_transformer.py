"""2017 transformer (Vaswani et al., "Attention is all you need"): attention works end to end.

Two tasks, one decoder-only GPT each (Module 13), trained with Adam from scratch:
1. Sequence reversal: given six digits and a separator, write them backwards. Success: >= 95%
   exact match (all six digits right) by greedy decoding on 500 held-out sequences that never
   appear in training. Attention has to learn to look at position n - i to write token i.
2. A character model of the shipped corpus (the course's own prose, tinytorch.data.
   load_text_corpus): its validation loss must beat the unigram baseline (each character
   predicted from its frequency alone) by >= 1 nat per character, and the words it writes
   (of 3 or more letters, in 200-character continuations of four prose prompts) must be words
   of the corpus at least 3 times as often as in text drawn from the unigram frequencies.
Both runs share the 60 s budget on 2 cores. Runs only on the tinytorch package: Tensor (01),
losses (04), autograd (06), Adam (07), tokenization (10), embeddings (11), attention (12),
transformers (13).
"""
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this repository's tinytorch (yours in student mode)

import numpy as np  # noqa: E402

from common import Milestone, check  # noqa: E402
from tinytorch import Tensor, manual_seed, no_grad  # noqa: E402
from tinytorch.data import load_text_corpus  # noqa: E402
from tinytorch.nn import GPT, CrossEntropyLoss  # noqa: E402
from tinytorch.optim import AdamW  # noqa: E402
from tinytorch.text import CharTokenizer  # noqa: E402

DIGITS, SEP = 6, 10                  # reversal: tokens 0-9 are digits, 10 separates input and answer
REVERSAL_STEPS, REVERSAL_BATCH = 200, 64
CHAR_STEPS, CHAR_BATCH, CONTEXT = 1200, 32, 32
HELD_OUT = 500
PROMPTS = ("The gradient of ", "A tensor holds a", "In this module, ", "Each layer has a")


def accuracy_and_loss(logits, targets):
    flat = logits.reshape(-1, logits.shape[-1])
    loss = CrossEntropyLoss()(flat, Tensor(targets.reshape(-1)))
    return loss, float((flat.data.argmax(axis=1) == targets.reshape(-1)).mean())


def reversal(run, rng):
    """Train on random digit strings, never on the held-out ones; return held-out exact match."""
    held_out = rng.integers(0, 10, (HELD_OUT, DIGITS))
    held = {tuple(s) for s in held_out}

    def batch(n):
        x = rng.integers(0, 10, (2 * n, DIGITS))
        x = np.array([s for s in x if tuple(s) not in held][:n])
        return np.concatenate([x, np.full((n, 1), SEP), x[:, ::-1]], axis=1)

    model = GPT(vocab_size=11, embed_dim=64, num_layers=2, num_heads=4, max_seq_len=2 * DIGITS + 1)
    opt = AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    for step in range(1, REVERSAL_STEPS + 1):
        seq = batch(REVERSAL_BATCH)
        logits = model(seq[:, :-1])
        # only the answer is predictable: positions DIGITS .. 2*DIGITS-1 predict the reversed digits
        loss, acc = accuracy_and_loss(logits[:, DIGITS:, :], seq[:, DIGITS + 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 20 == 0:
            run.record("reversal (train)", step, loss.item(), acc)
        if step % 50 == 0:
            run.log(f"reversal step {step:4d}: loss {loss.item():.4f}, digit accuracy {acc:.2%}")
    prompt = np.concatenate([held_out, np.full((HELD_OUT, 1), SEP)], axis=1)
    out = np.asarray(model.generate(prompt, max_new_tokens=DIGITS, top_k=1))
    answers = out[:, DIGITS + 1:]
    exact = float((answers == held_out[:, ::-1]).all(axis=1).mean())
    run.log(f"held-out: {HELD_OUT} sequences, e.g. {''.join(map(str, held_out[0]))} -> "
            f"{''.join(map(str, answers[0]))}")
    return exact


def words(text):
    return re.findall(r"[A-Za-z]{3,}", text)


def char_model(run, rng):
    """Train a character GPT on 90% of the corpus; validation loss on the other 10%, against unigram."""
    text = load_text_corpus()
    tok = CharTokenizer.from_text(text)
    ids = np.asarray(tok.encode(text), dtype=np.int64)
    block = np.arange(len(ids)) // 2000  # every tenth block of 2,000 characters is validation text,
    train, val = ids[block % 10 != 9], ids[block % 10 == 9]  # so both splits cover every module's prose

    counts = np.bincount(train, minlength=tok.vocab_size) + 1.0  # add-one: every character possible
    unigram = float(-np.log(counts / counts.sum())[val].mean())

    def windows(data, n, gen):
        starts = gen.integers(0, len(data) - CONTEXT - 1, n)
        return np.stack([data[s:s + CONTEXT + 1] for s in starts])

    val_windows = windows(val, 64, np.random.default_rng(1))
    model = GPT(vocab_size=tok.vocab_size, embed_dim=64, num_layers=2, num_heads=4, max_seq_len=CONTEXT)
    opt = AdamW(model.parameters(), lr=5e-3, weight_decay=0.0)

    def validate():
        model.eval()
        with no_grad():
            loss, acc = accuracy_and_loss(model(val_windows[:, :-1]), val_windows[:, 1:])
        model.train()
        return loss.item(), acc

    for step in range(1, CHAR_STEPS + 1):
        seq = windows(train, CHAR_BATCH, rng)
        loss, acc = accuracy_and_loss(model(seq[:, :-1]), seq[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0:
            run.record("characters (train)", step, loss.item(), acc)
            val_loss, val_acc = validate()
            run.record("characters (validation)", step, val_loss, val_acc)
        if step % 400 == 0:
            run.log(f"characters step {step:4d}: train loss {loss.item():.4f}, validation loss {val_loss:.4f} "
                    f"(unigram {unigram:.4f})")
    val_loss, _ = validate()
    # four prose prompts of 16 characters each, continued for 200 characters
    prompts = np.asarray([tok.encode(p) for p in PROMPTS], dtype=np.int64)
    samples = np.asarray(model.generate(prompts, max_new_tokens=200, temperature=0.8, top_k=10))
    known = set(words(text))
    sampled = [w for row in samples for w in words(tok.decode(list(row[16:])))]
    share = sum(w in known for w in sampled) / max(len(sampled), 1)
    # the same measure on text drawn from the unigram model, for scale
    drawn = np.random.default_rng(3).choice(tok.vocab_size, size=samples[:, 16:].size, p=counts / counts.sum())
    unigram_words = words(tok.decode(list(drawn)))
    unigram_share = sum(w in known for w in unigram_words) / max(len(unigram_words), 1)
    run.log(f"words of 3+ letters found in the corpus: {share:.0%} of {len(sampled)} sampled by the model, "
            f"{unigram_share:.0%} of {len(unigram_words)} drawn from unigram frequencies")
    for row in samples[:2]:
        run.log("sample: " + repr(tok.decode(list(row[:16]))) + " -> " + repr(tok.decode(list(row[16:]))))
    return val_loss, unigram, share, unigram_share


def main():
    run = Milestone("2017_transformer", "2017: a transformer reverses sequences and writes like its corpus",
                    unit="training step")
    manual_seed(0)
    rng = np.random.default_rng(0)
    exact = reversal(run, rng)
    passed = check(exact >= 0.95, f"held-out reversal exact match {exact:.2%} >= 95%")
    val_loss, unigram, share, unigram_share = char_model(run, rng)
    passed &= check(val_loss <= unigram - 1.0,
                    f"character validation loss {val_loss:.3f} nats <= unigram baseline {unigram:.3f} - 1")
    passed &= check(share >= 3 * unigram_share,
                    f"{share:.0%} of sampled words are corpus words, >= 3x the {unigram_share:.0%} of unigram text")
    return run.finish(passed, {"reversal_exact_match": exact, "char_validation_loss": val_loss,
                               "unigram_baseline_loss": unigram, "sampled_word_share": share,
                               "unigram_word_share": unigram_share})


if __name__ == "__main__":
    sys.exit(main())
