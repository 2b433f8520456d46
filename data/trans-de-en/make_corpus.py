#!/usr/bin/env python3
"""German–English parallel corpus from Debian's trans-de-en (the Ding dictionary, GPL-2+; see CORPUS.md).

    /usr/bin/python3 data/trans-de-en/make_corpus.py [--source /usr/share/trans/de-en] [--out data/trans-de-en/corpus]

Writes, into --out (git-ignored; rerun to rebuild, the result is deterministic):
  train.tsv, valid.tsv, test.tsv   one pair per line: German <TAB> English
  baseline-copy.test.en            the copy-the-source baseline's output for test.tsv
  baseline-dict.test.en            the word-by-word dictionary baseline's output for test.tsv
  test.en                          the references of test.tsv, one per line
Score the baselines with our BLEU (sacreBLEU's default):
  sharpformer bleu OUT/baseline-copy.test.en OUT/test.en

Extraction rules (each line of the dictionary is "German :: English"):
1. Comment lines (#) are skipped. Each side is split at " | " into sub-entries (the headword, its inflected forms,
   then example phrases); a line whose two sides have different sub-entry counts is skipped.
2. Each aligned sub-entry pair gives one pair: the first alternative of each side (text before the first "; ").
3. Annotations are removed: {gender/part of speech}, [domain/usage], <synonym cross-references>, and parenthesised
   glosses "(...)"; whitespace is collapsed. A pair is kept when both sides are non-empty, at most 30 words, and not
   identical letter for letter (borrowed words would teach only copying).
4. Exact duplicate pairs are dropped (the first occurrence is kept).
5. The split is fixed by the MD5 of the German side: hash mod 100 = 0 or 1 → test (≈ 2 %), 2 → valid (≈ 1 %), the
   rest train. The same German text is therefore always in the same split.
Baselines on test: (a) the German source copied unchanged; (b) each German word replaced by the English of the
single-word training entry with that headword (first seen wins; a lowercase match as fallback), unknown words copied.
"""
import argparse
import hashlib
import os
import re

ANNOTATION = re.compile(r"\{[^}]*\}|\[[^\]]*\]|<[^>]*>|\([^)]*\)")
SPACE = re.compile(r"\s+")
MAX_WORDS = 30


def clean(text):
    text = text.split("; ")[0]
    text = ANNOTATION.sub(" ", text)
    return SPACE.sub(" ", text).strip(" ;,")


def pairs(path):
    seen = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#") or " :: " not in line:
                continue
            german, english = line.split(" :: ", 1)
            de_parts, en_parts = german.split(" | "), english.split(" | ")
            if len(de_parts) != len(en_parts):
                continue
            for de, en in zip(de_parts, en_parts):
                de, en = clean(de), clean(en)
                if not de or not en or de == en:
                    continue
                if len(de.split()) > MAX_WORDS or len(en.split()) > MAX_WORDS:
                    continue
                if (de, en) in seen:
                    continue
                seen.add((de, en))
                yield de, en


def split_of(german):
    bucket = int(hashlib.md5(german.encode("utf-8")).hexdigest(), 16) % 100
    return "test" if bucket < 2 else "valid" if bucket == 2 else "train"


def tokens(text):
    return re.findall(r"\w+|[^\w\s]", text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", default="/usr/share/trans/de-en")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus"))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    splits = {"train": [], "valid": [], "test": []}
    for de, en in pairs(args.source):
        splits[split_of(de)].append((de, en))
    for name, rows in splits.items():
        with open(os.path.join(args.out, f"{name}.tsv"), "w", encoding="utf-8") as f:
            for de, en in rows:
                f.write(f"{de}\t{en}\n")

    # Word-by-word dictionary from single-word training entries.
    lexicon, lower = {}, {}
    for de, en in splits["train"]:
        if len(de.split()) == 1:
            lexicon.setdefault(de, en)
            lower.setdefault(de.lower(), en)

    def lookup(word):
        return lexicon.get(word) or lower.get(word.lower()) or word

    test = splits["test"]
    with open(os.path.join(args.out, "test.en"), "w", encoding="utf-8") as f:
        f.writelines(en + "\n" for _, en in test)
    with open(os.path.join(args.out, "baseline-copy.test.en"), "w", encoding="utf-8") as f:
        f.writelines(de + "\n" for de, _ in test)
    with open(os.path.join(args.out, "baseline-dict.test.en"), "w", encoding="utf-8") as f:
        for de, _ in test:
            f.write(" ".join(lookup(w) for w in tokens(de)) + "\n")
    print(" ".join(f"{name}={len(rows)}" for name, rows in splits.items()), f"lexicon={len(lexicon)}")


if __name__ == "__main__":
    main()
