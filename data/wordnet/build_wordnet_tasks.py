#!/usr/bin/env python3
"""Builds two fine-tuning data sets from Debian's WordNet 3.0 (wordnet-base) and GCIDE (dict-gcide) packages.

  (a) classify/{train,validation,test}.jsonl  {"text", "label", "synset", "lemmas"}
      A WordNet noun gloss (its definition, without the example sentences) -> its lexicographer file.
  (b) ner/{train,validation,test}.jsonl       {"tokens", "tags", "source"}
      Sentences from WordNet glosses (definitions and examples, all parts of speech) and GCIDE definitions, tagged
      BIO with ANATOMY / DISEASE / DRUG by distant supervision: term lists from WordNet, matched longest-first.

Python 3 standard library only; deterministic (no randomness: splits come from a hash of each item's key).
Usage: python3 data/wordnet/build_wordnet_tasks.py --out runs/wordnet-tasks [--wordnet /usr/share/wordnet]
       [--gcide /usr/share/dictd/gcide.dict.dz] [--sample data/wordnet/sample --sample-size 200]
See README.md beside this file for the method, its limits and the licences.
"""
import argparse
import collections
import gzip
import hashlib
import json
import os
import re
import sys

# The lexicographer files of the classification task (see README.md for the choice).
CLASSES = {
    4: "noun.act", 5: "noun.animal", 6: "noun.artifact", 8: "noun.body", 13: "noun.food",
    15: "noun.location", 18: "noun.person", 20: "noun.plant", 26: "noun.state", 27: "noun.substance",
}

TOKEN = re.compile(r"[A-Za-z0-9]+(?:['\-][A-Za-z0-9]+)*|[^\sA-Za-z0-9]")


def split_of(key, validation=10, test=10):
    """80/10/10 by default: the first byte of SHA-1(key) mod 100 decides."""
    bucket = int(hashlib.sha1(key.encode("utf-8")).hexdigest()[:8], 16) % 100
    if bucket < test:
        return "test"
    if bucket < test + validation:
        return "validation"
    return "train"


def read_data(path, pos):
    """Synsets of a WordNet data.* file: offset -> (lex file number, lemmas, pointers, gloss)."""
    synsets = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("  "):
                continue  # licence header
            head, _, gloss = line.partition(" | ")
            fields = head.split()
            offset, lex, count = fields[0], int(fields[1]), int(fields[3], 16)
            lemmas = [fields[4 + 2 * i] for i in range(count)]
            i = 4 + 2 * count
            pointer_count = int(fields[i])
            pointers = []
            for p in range(pointer_count):
                symbol, target, target_pos = fields[i + 1 + 4 * p], fields[i + 2 + 4 * p], fields[i + 3 + 4 * p]
                pointers.append((symbol, target, target_pos))
            synsets[offset] = (lex, lemmas, pointers, gloss.strip())
    return synsets


def split_gloss(gloss):
    """A gloss is 'definition; "example"; "example"' -> (definition, [examples])."""
    examples = re.findall(r'"([^"]+)"', gloss)
    definition = re.sub(r'"[^"]*"', "", gloss).strip().strip(";").strip()
    definition = re.sub(r"\s*;\s*$", "", definition)
    return definition, examples


def lemma_text(lemma):
    return re.sub(r"\(\w+\)$", "", lemma).replace("_", " ")


def build_classification(nouns, out, sample_dir, sample_size):
    by_text = collections.defaultdict(set)
    rows = []
    for offset, (lex, lemmas, _, gloss) in sorted(nouns.items()):
        if lex not in CLASSES:
            continue
        definition, _ = split_gloss(gloss)
        if len(definition) < 3:
            continue
        by_text[definition.lower()].add(lex)
        rows.append({"text": definition, "label": CLASSES[lex], "synset": offset + "-n", "lemmas": [lemma_text(l) for l in lemmas]})
    # The same definition under two lexicographer files cannot be classified: drop those.
    rows = [r for r in rows if len(by_text[r["text"].lower()]) == 1]
    parts = collections.defaultdict(list)
    for r in rows:
        parts[split_of(r["synset"])].append(r)
    write_parts(os.path.join(out, "classify"), parts)
    if sample_dir:
        write_sample(os.path.join(sample_dir, "classify.jsonl"), parts["train"], sample_size, key=lambda r: r["synset"])
    return {name: len(items) for name, items in parts.items()}, collections.Counter(r["label"] for r in rows)


def hyponym_closure(synsets, roots):
    """All synsets below the roots through hyponym (~) and instance hyponym (~i) pointers, roots included."""
    seen, stack = set(), list(roots)
    while stack:
        offset = stack.pop()
        if offset in seen:
            continue
        seen.add(offset)
        for symbol, target, target_pos in synsets[offset][2]:
            if symbol in ("~", "~i") and target_pos == "n":
                stack.append(target)
    return seen


def first_sense(index_path, word):
    with open(index_path, encoding="utf-8") as f:
        for line in f:
            if line.startswith(word + " "):
                fields = line.split()
                synset_count = int(fields[2])
                return fields[-synset_count]
    raise SystemExit(f"{index_path}: no entry for '{word}'")


def read_index(path):
    """index.<pos>: lemma -> its synset offsets (most frequent sense first), and lemma -> tagged sense count."""
    senses, tagged = {}, {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith(" "):
                continue
            fields = line.split()
            synset_count = int(fields[2])
            senses[fields[0]] = fields[-synset_count:]
            tagged[fields[0].replace("_", " ")] = int(fields[-synset_count - 1])
    return senses, tagged


def singulars(form):
    """The singulars a regular plural could come from (…s, …es, …ies)."""
    result = set()
    if form.endswith("ies"):
        result.add(form[:-3] + "y")
    if form.endswith("es"):
        result.add(form[:-2])
    if form.endswith("s"):
        result.add(form[:-1])
    return result


def plural_forms(term, irregular):
    """The term and its plural (last word inflected): irregular plurals from noun.exc, else s/es/ies."""
    words = term.split(" ")
    last = words[-1]
    forms = {term}
    plurals = irregular.get(last, [])
    if not plurals:
        if re.search(r"(s|x|z|ch|sh)$", last):
            plurals = [last + "es"]
        elif re.search(r"[^aeiou]y$", last):
            plurals = [last[:-1] + "ies"]
        else:
            plurals = [last + "s"]
    for p in plurals:
        forms.add(" ".join(words[:-1] + [p]))
    return forms


def build_terms(wordnet, nouns):
    irregular = collections.defaultdict(list)
    with open(os.path.join(wordnet, "noun.exc"), encoding="utf-8") as f:
        for line in f:
            inflected, base = line.split()[:2]
            irregular[base.replace("_", " ")].append(inflected.replace("_", " "))
    adjectives = set()
    with open(os.path.join(wordnet, "index.adj"), encoding="utf-8") as f:
        for line in f:
            if not line.startswith(" "):
                adjectives.add(line.split()[0].replace("_", " "))
    index = os.path.join(wordnet, "index.noun")
    groups = {
        "ANATOMY": {o for o, s in nouns.items() if s[0] == 8},
        "DISEASE": hyponym_closure(nouns, [first_sense(index, "disease")]),
        "DRUG": hyponym_closure(nouns, [first_sense(index, "drug")]),
    }
    senses, noun_tagged = read_index(index)
    _, verb_tagged = read_index(os.path.join(wordnet, "index.verb"))
    terms = collections.defaultdict(set)
    for label, offsets in groups.items():
        for offset in offsets:
            for lemma in nouns[offset][1]:
                text = lemma_text(lemma).lower()
                # The word's most frequent noun sense (first in index.noun, ranked by tagged frequency) must be one of
                # the group's: "form", "process", "can" have a body sense but are rarely meant that way; "glass",
                # "grass", "speed" are drug slang. This keeps "blood", "heart" (its first sense is the organ), "aspirin".
                ranked = senses.get(re.sub(r"\(\w+\)$", "", lemma).lower(), [])
                if not ranked or ranked[0] not in offsets:
                    continue
                # A one-word term used more often as a verb in WordNet's tagged corpus ("come", "cure") is left out.
                if " " not in text and verb_tagged.get(text, 0) > noun_tagged.get(text, 0):
                    continue
                # Single letters and two-letter words are mostly abbreviations that collide with ordinary words.
                if len(text) < 3:
                    continue
                # A one-word term that is also an adjective ("cold", "sick") is left out: too often not a mention.
                if " " not in text and text in adjectives:
                    continue
                for form in plural_forms(text, irregular):
                    # A made-up plural that is a noun of its own ("physics" from "physic", "spirits") must mean the
                    # group's sense first too.
                    own = senses.get(form.replace(" ", "_"))
                    if form != text and own is not None and own[0] not in offsets:
                        continue
                    # ... and must not read as the plural of another noun ("senses" from the slang "sens").
                    if form != text and any(other != text and other.replace(" ", "_") in senses for other in singulars(form)):
                        continue
                    terms[form].add(label)
    # A term under two labels ("heart" is not, "wart" may be) is ambiguous: left out.
    lexicon = {t: next(iter(ls)) for t, ls in terms.items() if len(ls) == 1}
    by_first = collections.defaultdict(list)
    for term, label in lexicon.items():
        words = tuple(w.lower() for w in TOKEN.findall(term))
        if words:
            by_first[words[0]].append((words, label))
    for candidates in by_first.values():
        candidates.sort(key=lambda c: -len(c[0]))
    return by_first, {label: sum(1 for l in lexicon.values() if l == label) for label in groups}


def tag(tokens, by_first):
    """Longest-first, left-to-right matching of the lexicon on lower-cased tokens -> BIO tags."""
    lower = [t.lower() for t in tokens]
    tags = ["O"] * len(tokens)
    i = 0
    while i < len(tokens):
        for words, label in by_first.get(lower[i], ()):
            if tuple(lower[i:i + len(words)]) == words:
                tags[i] = "B-" + label
                for j in range(i + 1, i + len(words)):
                    tags[j] = "I-" + label
                i += len(words)
                break
        else:
            i += 1
    return tags


def wordnet_sentences(wordnet):
    for pos in ("noun", "verb", "adj", "adv"):
        for offset, (_, _, _, gloss) in sorted(read_data(os.path.join(wordnet, "data." + pos), pos).items()):
            definition, examples = split_gloss(gloss)
            yield f"wordnet:{offset}-{pos[0]}", definition
            for k, example in enumerate(examples):
                yield f"wordnet:{offset}-{pos[0]}:ex{k}", example


def gcide_sentences(path):
    text = gzip.open(path).read().decode("utf-8", "replace")
    headword = re.compile(r"^(\S[^\\\n]*?) \\[^\\]*\\")
    current = ""
    for number, paragraph in enumerate(text.split("\n\n")):
        lines = [l.strip() for l in paragraph.strip().split("\n") if l.strip()]
        if not lines:
            continue
        match = headword.match(lines[0])
        if match:
            current = match.group(1)
            lines = lines[1:]
        body = " ".join(l for l in lines if not l.startswith("[") and not l.startswith("Syn:"))
        body = re.sub(r"\[[^\]]*\]", " ", body)
        body = re.sub(r"[{}]", "", body)
        body = re.sub(r"^\s*(\d+\.\s*)+", "", body)
        body = re.sub(r"^\s*\([A-Z][a-z]+\.\)\s*", "", body)
        for k, sentence in enumerate(re.split(r"(?<=[.;])\s+(?=[A-Z(])", body)):
            sentence = sentence.strip()
            if len(sentence) >= 12:
                yield f"gcide:{current}:{number}:{k}", sentence


def build_ner(wordnet, gcide, nouns, out, sample_dir, sample_size):
    by_first, term_counts = build_terms(wordnet, nouns)
    parts = collections.defaultdict(list)
    seen = set()
    sources = collections.Counter()
    mentions = collections.Counter()
    streams = [wordnet_sentences(wordnet)]
    if gcide:
        streams.append(gcide_sentences(gcide))
    for stream in streams:
        for source, sentence in stream:
            tokens = TOKEN.findall(sentence)
            if not tokens or len(tokens) > 80:
                continue
            key = " ".join(tokens).lower()
            if key in seen:
                continue  # GCIDE repeats WordNet 1.5 glosses; keep the first copy only
            seen.add(key)
            tags = tag(tokens, by_first)
            if all(t == "O" for t in tags):
                continue
            for t in tags:
                if t.startswith("B-"):
                    mentions[t[2:]] += 1
            sources[source.split(":")[0]] += 1
            parts[split_of(key)].append({"tokens": tokens, "tags": tags, "source": source})
    write_parts(os.path.join(out, "ner"), parts)
    if sample_dir:
        # The committed sample holds WordNet sentences only, so it carries the WordNet licence alone (GCIDE is GPL).
        wordnet_only = [r for r in parts["train"] if r["source"].startswith("wordnet:")]
        write_sample(os.path.join(sample_dir, "ner.jsonl"), wordnet_only, sample_size, key=lambda r: r["source"])
    return {name: len(items) for name, items in parts.items()}, term_counts, mentions, sources


def write_parts(folder, parts):
    os.makedirs(folder, exist_ok=True)
    for name in ("train", "validation", "test"):
        with open(os.path.join(folder, name + ".jsonl"), "w", encoding="utf-8") as f:
            for row in parts.get(name, []):
                f.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_sample(path, rows, size, key):
    """Every k-th row (k = len/size) of the training part: a deterministic, spread-out sample."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    step = max(1, len(rows) // size)
    with open(path, "w", encoding="utf-8") as f:
        for row in rows[::step][:size]:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="output folder (classify/ and ner/ are written in it)")
    parser.add_argument("--wordnet", default="/usr/share/wordnet", help="WordNet 3.0 database folder (Debian wordnet-base)")
    parser.add_argument("--gcide", default="/usr/share/dictd/gcide.dict.dz", help="GCIDE dictd file (Debian dict-gcide); '' to skip")
    parser.add_argument("--sample", default="", help="also write small samples (classify.jsonl, ner.jsonl) into this folder")
    parser.add_argument("--sample-size", type=int, default=200)
    args = parser.parse_args()
    data_noun = os.path.join(args.wordnet, "data.noun")
    if not os.path.exists(data_noun):
        raise SystemExit(f"{data_noun} not found: install Debian's wordnet-base (apt-get install wordnet-base) or pass --wordnet")
    if args.gcide and not os.path.exists(args.gcide):
        raise SystemExit(f"{args.gcide} not found: install Debian's dict-gcide or pass --gcide ''")
    nouns = read_data(data_noun, "noun")
    split_counts, label_counts = build_classification(nouns, args.out, args.sample, args.sample_size)
    print("classification:", json.dumps(split_counts), json.dumps(dict(sorted(label_counts.items()))))
    ner_counts, term_counts, mentions, sources = build_ner(args.wordnet, args.gcide, nouns, args.out, args.sample, args.sample_size)
    print("ner:", json.dumps(ner_counts), "terms:", json.dumps(term_counts), "mentions:", json.dumps(dict(mentions)), "sentences by source:", json.dumps(dict(sources)))


if __name__ == "__main__":
    sys.exit(main())
