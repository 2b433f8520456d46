#!/usr/bin/env python3
"""Writes a folder of medical documents from Debian's WordNet 3.0 (package wordnet-base), for `sharpformer search`.

Each document is one .txt file per medical synset group: the synsets below a root concept (through hyponym and
instance-hyponym pointers), one paragraph per synset: "lemma, lemma: definition; "example"". Groups:
  disease/<child>.txt  one file per direct hyponym of disease.n.01 with at least MIN_GROUP synsets below it
                       (the smaller ones together in disease/other-diseases.txt)
  drugs/<child>.txt    the same below medicine.n.02 (medication, medicament, medicinal drug)
  symptoms/<root>.txt  symptom.n.01 and pain.n.01
  anatomy/<root>.txt   organ, bone, muscle, blood vessel, gland, nerve (only synsets of the noun.body file)
A synset is written once, in the first group that reaches it (in the order above).

Python 3 standard library only, deterministic. WordNet is under the WordNet 3.0 licence (see LICENSE-WordNet.txt
beside this script); the generated folder carries its notice in a file named NOTICE.
Usage: python3 data/medical-search/build_medical_docs.py --out runs/medical-docs [--wordnet /usr/share/wordnet]
"""
import argparse
import os
import re

MIN_GROUP = 8

NOTICE = """Documents generated from WordNet 3.0 (Debian package wordnet-base) by data/medical-search/build_medical_docs.py.
WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved.
Used under the WordNet 3.0 licence: https://wordnet.princeton.edu/license-and-commercial-use
"""


def read_synsets(path):
    """data.noun -> {offset: (lex file number, [lemmas], [(pointer symbol, target offset, target pos)], gloss)}."""
    synsets = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith(" "):
                continue  # the licence header lines start with two spaces
            head, _, gloss = line.partition(" | ")
            fields = head.split()
            word_count = int(fields[3], 16)
            lemmas = [fields[4 + 2 * k] for k in range(word_count)]
            at = 4 + 2 * word_count
            pointers = []
            for k in range(int(fields[at])):
                base = at + 1 + 4 * k
                pointers.append((fields[base], fields[base + 1], fields[base + 2]))
            synsets[fields[0]] = (int(fields[1]), lemmas, pointers, gloss.strip())
    return synsets


def sense(index_path, lemma, number):
    """The offset of noun sense <number> (from 1) of <lemma> in index.noun."""
    with open(index_path, encoding="utf-8") as f:
        for line in f:
            if line.startswith(lemma + " "):
                fields = line.split()
                count = int(fields[2])
                return fields[len(fields) - count + number - 1]
    raise SystemExit(f"{index_path}: no noun '{lemma}'")


def below(synsets, root):
    """The root and every synset under it by hyponym (~) and instance hyponym (~i) pointers, in a stable order."""
    seen, order, stack = set(), [], [root]
    while stack:
        offset = stack.pop()
        if offset in seen:
            continue
        seen.add(offset)
        order.append(offset)
        children = [t for s, t, pos in synsets[offset][2] if s in ("~", "~i") and pos == "n"]
        stack.extend(sorted(children, reverse=True))
    return order


def children(synsets, offset):
    return sorted(t for s, t, pos in synsets[offset][2] if s in ("~", "~i") and pos == "n")


def name(lemma):
    return re.sub(r"\([a-z]+\)$", "", lemma).replace("_", " ")


def slug(synsets, offset):
    return re.sub(r"[^a-z0-9]+", "-", name(synsets[offset][1][0]).lower()).strip("-")


def paragraph(synsets, offset):
    _, lemmas, _, gloss = synsets[offset]
    return ", ".join(name(l) for l in lemmas) + ": " + gloss


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder to write (created; existing .txt files are overwritten)")
    parser.add_argument("--wordnet", default="/usr/share/wordnet", help="the WordNet dict folder (data.noun, index.noun)")
    args = parser.parse_args()

    synsets = read_synsets(os.path.join(args.wordnet, "data.noun"))
    index = os.path.join(args.wordnet, "index.noun")
    written = set()
    files = {}  # relative path -> (title, [offsets])

    def add(path, title, offsets, only_lex=None):
        keep = [o for o in offsets if o not in written and (only_lex is None or synsets[o][0] == only_lex)]
        if keep:
            written.update(keep)
            old = files.get(path, (title, []))
            files[path] = (old[0], old[1] + keep)

    # Diseases and drugs: one file per large child of the root, the small ones together.
    for folder, lemma, number, rest in (("disease", "disease", 1, "other-diseases"), ("drugs", "medicine", 2, "other-medicines")):
        root = sense(index, lemma, number)
        for child in children(synsets, root):
            group = below(synsets, child)
            if len(group) >= MIN_GROUP:
                add(f"{folder}/{slug(synsets, child)}.txt", name(synsets[child][1][0]), group)
        for child in children(synsets, root):
            add(f"{folder}/{rest}.txt", f"other {lemma}s", below(synsets, child))
        add(f"{folder}/{rest}.txt", f"other {lemma}s", [root])

    for lemma, number in (("symptom", 1), ("pain", 1)):
        root = sense(index, lemma, number)
        add(f"symptoms/{lemma}.txt", lemma, below(synsets, root))

    for lemma, number in (("organ", 1), ("bone", 1), ("muscle", 1), ("blood_vessel", 1), ("gland", 1), ("nerve", 1)):
        root = sense(index, lemma, number)
        add(f"anatomy/{lemma.replace('_', '-')}.txt", name(lemma), below(synsets, root), only_lex=8)

    os.makedirs(args.out, exist_ok=True)
    for path, (title, offsets) in sorted(files.items()):
        full = os.path.join(args.out, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w", encoding="utf-8") as f:
            f.write(f"# {title}\n\n")
            f.write("\n\n".join(paragraph(synsets, o) for o in offsets))
            f.write("\n")
    with open(os.path.join(args.out, "NOTICE"), "w", encoding="utf-8") as f:
        f.write(NOTICE)
    print(f"wrote {len(files)} documents ({len(written)} synsets) to {args.out}")


if __name__ == "__main__":
    main()
