#!/usr/bin/env python3
"""Builds the two eval_a-derived tasks (no dependencies; deterministic for a seed).

eval_a_next (multiple choice): context = CONTEXT_WORDS consecutive words of eval_a, choices = the SPAN_WORDS words that
really follow it plus three spans of the same length from elsewhere in the file (at least FAR words away), the gold
position drawn at random. eval_a_lastword (LAMBADA-style): passages of PASSAGE_WORDS words whose last word is
alphabetic, at least three letters long and already used earlier in the passage (as LAMBADA's targets are
recoverable from their context), the word to predict.

Usage: make_eval_a_tasks.py EVAL_A.txt OUT_DIR [--seed 7] [--n 200]
writes OUT_DIR/eval_a_next/test.jsonl and OUT_DIR/eval_a_lastword/test.jsonl.
"""
import argparse, json, os, random

CONTEXT_WORDS, SPAN_WORDS, PASSAGE_WORDS, FAR = 48, 16, 64, 2000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("eval_a")
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--n", type=int, default=200)
    a = ap.parse_args()
    with open(a.eval_a, encoding="utf-8") as f:
        words = f.read().split()
    rnd = random.Random(a.seed)

    rows, used = [], set()
    while len(rows) < a.n:
        start = rnd.randrange(0, len(words) - CONTEXT_WORDS - SPAN_WORDS)
        if start // 1000 in used:  # questions from different parts of the file
            continue
        used.add(start // 1000)
        cut = start + CONTEXT_WORDS
        gold = " ".join(words[cut:cut + SPAN_WORDS])
        choices = [gold]
        while len(choices) < 4:
            other = rnd.randrange(0, len(words) - SPAN_WORDS)
            span = " ".join(words[other:other + SPAN_WORDS])
            if abs(other - cut) >= FAR and span not in choices:
                choices.append(span)
        rest = choices[1:]
        label = rnd.randrange(4)
        choices = rest[:label] + [gold] + rest[label:]
        rows.append({"id": len(rows), "context": " ".join(words[start:cut]), "choices": choices, "label": label})
    write(os.path.join(a.out_dir, "eval_a_next", "test.jsonl"), rows)

    rows, used = [], set()
    while len(rows) < a.n:
        end = rnd.randrange(PASSAGE_WORDS, len(words))
        last = words[end - 1]
        if not (last.isalpha() and last.isascii() and len(last) >= 3) or end // 1000 in used:
            continue
        if last.lower() not in (w.strip(".,;:!?\"'()").lower() for w in words[end - PASSAGE_WORDS:end - 1]):
            continue
        used.add(end // 1000)
        rows.append({"id": len(rows), "text": " ".join(words[end - PASSAGE_WORDS:end])})
    write(os.path.join(a.out_dir, "eval_a_lastword", "test.jsonl"), rows)


def write(path, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(path, len(rows))


if __name__ == "__main__":
    main()
