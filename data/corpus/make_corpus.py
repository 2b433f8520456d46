#!/usr/bin/env python3
"""Builds sharpformer's English pretraining corpus from three Debian packages (see CORPUS.md).

    apt-get install wordnet-base dict-gcide bible-kjv      # bible-kjv brings bible-kjv-text and the `bible` reader
    python3 data/corpus/make_corpus.py --out runs/corpus-en

Writes train.jsonl / valid.jsonl (one {"text", "source", "id"} document per line, lines inside a document separated by
"\n" — what `sharpformer train mlm|clm --data` reads), train.txt (the same training text, one line per sentence, for
`sharpformer train-tokenizer`) and stats.json (sizes). Python 3 standard library only; deterministic (no random
numbers: a document's split is fixed by the SHA-1 of its id; order is the sources' order).
"""

import argparse
import gzip
import hashlib
import json
import os
import re
import subprocess
import sys

WORDNET = "/usr/share/wordnet"
GCIDE = "/usr/share/dictd/gcide.dict.dz"
GCIDE_INDEX = "/usr/share/dictd/gcide.index"
VALID_PERCENT = 1  # documents whose SHA-1(id) mod 100 is below this go to valid
WORDNET_GROUP = 24  # synsets per WordNet document
GCIDE_GROUP = 24  # entries per GCIDE document


def article(word):
    w = word.lower()
    if re.match(r"^(u[bcdfgjklmnprstvz][aeiouy]|eu|ewe|one|once)", w):
        return "A"  # a uterus, a union, a eulogy
    if re.match(r"^(hour|honest|honou?r|heir)", w):
        return "An"
    return "An" if w[:1] in "aeiou" else "A"


def sentence(text):
    text = re.sub(r"\s+", " ", text).strip()
    if not text:
        return ""
    if text[-1] not in ".!?":
        text += "."
    return text[0].upper() + text[1:]


def definitional(word, definition, is_noun):
    """'heart' + 'a hollow muscular organ' → 'A heart is a hollow muscular organ.'; else 'heart: …'."""
    d = definition.strip()
    if is_noun and re.match(r"^(a|an) ", d, re.IGNORECASE):
        return sentence(f"{article(word)} {word} is {d[0].lower() + d[1:]}")
    if is_noun and re.match(r"^the ", d, re.IGNORECASE):
        return sentence(f"The {word} is {d[0].lower() + d[1:]}")
    return sentence(f"{word}: {d}")


# ---------------------------------------------------------------------------------------------------------- WordNet
def wordnet_documents():
    for pos, name in (("n", "noun"), ("v", "verb"), ("a", "adj"), ("r", "adv")):
        path = os.path.join(WORDNET, "data." + name)
        lines = []
        first_offset = None
        with open(path, encoding="utf-8") as f:
            for raw in f:
                if raw.startswith("  "):  # the licence header
                    continue
                head, _, gloss = raw.partition(" | ")
                fields = head.split()
                offset, count = fields[0], int(fields[3], 16)
                words = [fields[4 + 2 * i].replace("_", " ") for i in range(count)]
                words = [re.sub(r"\((a|p|ip)\)$", "", w) for w in words]  # adjective markers
                examples = re.findall(r'"([^"]+)"', gloss)
                definition = re.sub(r'"[^"]*"', "", gloss).strip(" ;\n")
                if first_offset is None:
                    first_offset = offset
                if definition:
                    lines.append(definitional(words[0], definition, pos == "n"))
                for e in examples:
                    s = sentence(e)
                    if len(s.split()) >= 3:
                        lines.append(s)
                if len(lines) >= WORDNET_GROUP:
                    yield f"wordnet:{name}:{first_offset}", lines
                    lines, first_offset = [], None
        if lines:
            yield f"wordnet:{name}:{first_offset}", lines


# ---------------------------------------------------------------------------------------------------------- GCIDE
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def b64(s):
    n = 0
    for c in s:
        n = n * 64 + B64.index(c)
    return n


ESCAPE = re.compile(r"\[([^\[\]\s.]{1,6})\]")  # GCIDE character escapes: [aum] ä, ['e] é, [=o] ō, [root] √ …
SOURCE_TAG = re.compile(r"\[[^\[\]]*\]\s*$")  # a paragraph's trailing source: [1913 Webster], [PJC], [WordNet 1.5] …
HEAD = re.compile(r"^[^\\\n]*\\[^\\]*\\\s*(\([^)]*\))?,?\s*")  # Heart \Heart\ (h[aum]rt),
POS = re.compile(r"^((?:[a-z]+\.\s*){1,3}(?:pl\.\s*)?)(?:;\s*)?")  # n.  v. t.  a.
LABEL = re.compile(r"^\((?:[A-Z][A-Za-z]*\.?\s*(?:&\s*)?)+\)\s*")  # (Anat.)  (Zool. & Bot.)
ATTRIBUTION = re.compile(r"\s--\s?[A-Z][^.]{0,40}\.?(\s*[^.]{0,20})?$")  # --Shak.


def unescape(text):
    def letter(m):
        letters = [c for c in m.group(1) if c.isalpha()]
        return letters[0] if letters and len(m.group(1)) <= 4 else ""

    return ESCAPE.sub(letter, text)


def gcide_entries():
    with open(GCIDE_INDEX, encoding="utf-8") as f:
        index = []
        seen = set()
        for line in f:
            word, off, length = line.rstrip("\n").split("\t")
            if word.startswith("00-database"):
                continue
            key = (b64(off), b64(length))
            if key not in seen:
                seen.add(key)
                index.append((key[0], key[1]))
    index.sort()
    with gzip.open(GCIDE, "rb") as f:
        data = f.read()
    for off, length in index:
        yield data[off:off + length].decode("utf-8", errors="replace")


def gcide_lines(entry):
    paragraphs = [p for p in re.split(r"\n\s*\n", entry) if p.strip()]
    if not paragraphs:
        return
    m = HEAD.match(paragraphs[0])
    if not m:
        return
    word = unescape(re.sub(r"[\\\"`'*]", "", paragraphs[0][:m.end()].split("\\")[1])).strip()
    if not word or not re.match(r"^[A-Za-z][A-Za-z -]*$", word):
        return
    for i, p in enumerate(paragraphs):
        quotation = i > 0 and len(p) - len(p.lstrip(" ")) >= 6  # quotations are indented; senses are not
        text = re.sub(r"\s+", " ", p).strip()
        if i == 0:
            text = text[m.end():] if len(text) >= m.end() else ""
            pm = POS.match(text)
            pos = pm.group(1) if pm else ""
            text = text[pm.end():] if pm else text
            text = re.sub(r"^pl\.\s*[^.]*\.\s*", "", text)  # pl. {Dispathies}.
            while text.startswith("["):  # inflections and etymology: skip to the matching bracket
                depth = 0
                for j, c in enumerate(text):
                    depth += 1 if c == "[" else -1 if c == "]" else 0
                    if depth == 0:
                        text = text[j + 1:].strip()
                        break
                else:
                    text = ""
        else:
            pos = ""
        while True:
            stripped = SOURCE_TAG.sub("", text).strip()
            if stripped == text:
                break
            text = stripped
        text = unescape(text)
        text = re.sub(r"[{}]", "", text)
        text = re.sub(r"\s\[[^\[\]]*\]", "", text)  # usage labels: [Obs.] [Colloq.]
        if text.startswith(("Syn.", "Syn:", "--", "Note:")) and not text.startswith("Note:"):
            continue
        note = text.startswith("Note:")
        text = text.removeprefix("Note:").strip()
        text = re.sub(r"^\d+\.\s*", "", text)
        text = re.sub(r"^\([a-z]\)\s*", "", text)
        text = LABEL.sub("", text)
        text = ATTRIBUTION.sub("", text).strip()
        if len(text.split()) < 3 or "\\" in text or "|" in text:
            continue
        if quotation or note:
            yield sentence(text)  # a sentence of its own
        else:
            yield definitional(word.lower() if word[1:].islower() else word, text, pos.startswith("n."))


def gcide_documents():
    lines, first = [], None
    for n, entry in enumerate(gcide_entries()):
        for line in gcide_lines(entry):
            if first is None:
                first = n
            lines.append(line)
        if len(lines) >= GCIDE_GROUP:
            yield f"gcide:{first}", lines
            lines, first = [], None
    if lines:
        yield f"gcide:{first}", lines


# ---------------------------------------------------------------------------------------------------------- KJV
def kjv_documents():
    out = subprocess.run(["bible", "-f", "-m", "8192", "Gen1:1-Rev22:21"], check=True, capture_output=True,
                         text=True).stdout
    chapter, lines = None, []
    for raw in out.splitlines():
        m = re.match(r"^(\w+?)(\d+):(\d+) (.*)$", raw)
        if not m:
            continue
        key = f"{m.group(1)}{m.group(2)}"
        if key != chapter and lines:
            yield f"kjv:{chapter}", lines
            lines = []
        chapter = key
        lines.append(m.group(4).strip())
    if lines:
        yield f"kjv:{chapter}", lines


# ---------------------------------------------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="output folder")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    seen = set()
    stats = {}
    files = {s: open(os.path.join(args.out, f"{s}.jsonl"), "w", encoding="utf-8") for s in ("train", "valid")}
    txt = open(os.path.join(args.out, "train.txt"), "w", encoding="utf-8")
    for source, documents in (("wordnet", wordnet_documents()), ("gcide", gcide_documents()), ("kjv", kjv_documents())):
        st = stats.setdefault(source, {"documents": 0, "lines": 0, "words": 0, "duplicates_dropped": 0,
                                       "valid_documents": 0, "valid_words": 0})
        for doc_id, lines in documents:
            kept = []
            for line in lines:
                key = re.sub(r"\W+", " ", line.lower()).strip()
                if key in seen:
                    st["duplicates_dropped"] += 1
                    continue
                seen.add(key)
                kept.append(line)
            if not kept:
                continue
            split = "valid" if int(hashlib.sha1(doc_id.encode()).hexdigest(), 16) % 100 < VALID_PERCENT else "train"
            words = sum(len(x.split()) for x in kept)
            st["documents"] += 1
            st["lines"] += len(kept)
            st["words"] += words
            if split == "valid":
                st["valid_documents"] += 1
                st["valid_words"] += words
            files[split].write(json.dumps({"text": "\n".join(kept), "source": source, "id": doc_id},
                                          ensure_ascii=False) + "\n")
            if split == "train":
                txt.write("\n".join(kept) + "\n")
        print(f"{source}: {st}", file=sys.stderr)
    for f in (*files.values(), txt):
        f.close()
    with open(os.path.join(args.out, "stats.json"), "w", encoding="utf-8") as f:
        json.dump(stats, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
