#!/usr/bin/env bash
# Trains sharpformer/transformer-de-en — the original encoder-decoder Transformer, German → English — from scratch on
# the Ding dictionary's pairs (data/trans-de-en: Debian's trans-de-en, GPL-2+), with a shared byte-level BPE trained here.
#
#   examples/translate-de-en/train.sh [out-folder]        (default runs/translate-de-en)
#
# Each step is skipped when its output exists and the training resumes from its newest checkpoint, so the script can be
# run again after an interruption. Progress goes to <out>/train.log. Then score it on the held-out test split:
#
#   sharpformer translate --model <out>/transformer-de-en < <out>/corpus/test.de > test.hyp.en
#   sharpformer bleu test.hyp.en <out>/corpus/test.en
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-runs/translate-de-en}
mkdir -p "$out"
[ -f "$out/corpus/train.tsv" ] || /usr/bin/python3 data/trans-de-en/make_corpus.py --out "$out/corpus"
[ -f "$out/corpus/test.de" ] || cut -f1 "$out/corpus/test.tsv" > "$out/corpus/test.de"

dotnet build src/Sharpformer.Cli -c Release >/dev/null
sf=(dotnet src/Sharpformer.Cli/bin/Release/net10.0/sharpformer.dll)
[ -f "$out/tok-bpe-de-en/merges.txt" ] || "${sf[@]}" train-tokenizer bpe --data "$out/corpus/train.tsv" --vocab-size 10000 --out "$out/tok-bpe-de-en"
resume() { ls -d "$1"/checkpoint-* >/dev/null 2>&1 && echo --resume || echo --overwrite; }
"${sf[@]}" train seq2seq --tokenizer "$out/tok-bpe-de-en" --data "$out/corpus/train.tsv" --eval-data "$out/corpus/valid.tsv" --eval-limit 400 \
  --out "$out/transformer-de-en" --d-model 256 --layers 3 --heads 4 --ffn 1024 --max-positions 128 --max-tokens 4096 --steps 3000 \
  --lr 7e-4 --warmup-steps 600 --eval-every 500 --save-every 100 --threads 1 $(resume "$out/transformer-de-en") >>"$out/train.log" 2>&1
