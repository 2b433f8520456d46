#!/usr/bin/env bash
# Data-parallel training throughput on one machine: 1 process x 2 threads vs `mpirun -np 2` x 1 thread, the same
# global batch, the same model and data; prints tokens/s (median over the steps after the first), the time in
# gradient all-reduce per step and the bytes all-reduced per step (from the train logs' allreduce_* fields).
#
#   benchmarks/distributed/scaling.sh [tiny|gpt2-124m] [steps]      (default: gpt2-124m, 8 steps)
#
# Timings need a quiet machine: it refuses to run while the 1-minute load average is 2 or more (FORCE=1 overrides).
# Needs the built CLI (dotnet build src/Sharpformer.Cli -c Release), Open MPI's mpirun and python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
shape=${1:-gpt2-124m}
steps=${2:-8}
cli=src/Sharpformer.Cli/bin/Release/net10.0/sharpformer.dll
[ -f "$cli" ] || { echo "build the CLI first: dotnet build src/Sharpformer.Cli -c Release"; exit 1; }
command -v mpirun >/dev/null || { echo "mpirun not found: apt-get install openmpi-bin libopenmpi-dev"; exit 1; }
load=$(cut -d' ' -f1 /proc/loadavg)
if [ "${FORCE:-0}" != 1 ] && python3 -c "import sys; sys.exit(0 if float('$load') >= 2 else 1)"; then
  echo "the load average is $load (>= 2): other work would distort the timings; rerun on a quiet machine (or FORCE=1)"; exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
case "$shape" in
  tiny) cp examples/tiny-gpt2/config.json "$work/config.json"; block=128; batch=8 ;;
  # GPT-2 124M's shape (the byte-level tokenizer of examples/tiny-gpt2 uses 257 of its 50257 ids), B=4, T=64 as `bench train`.
  gpt2-124m)
    cat > "$work/config.json" <<'JSON'
{"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12,
 "n_head": 12, "activation_function": "gelu_new", "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0, "layer_norm_epsilon": 1e-05,
 "initializer_range": 0.02, "tie_word_embeddings": true, "bos_token_id": 256, "eos_token_id": 256}
JSON
    block=64; batch=4 ;;
  *) echo "shape must be tiny or gpt2-124m"; exit 1 ;;
esac

common=(train clm --config "$work/config.json" --tokenizer examples/tiny-gpt2 --data README.md --block-size "$block" --steps "$steps"
  --dropout 0 --save-every 0 --keep-checkpoints 1 --cache-dir "$work/cache" --no-shuffle)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
echo "== 1 process x 2 threads, batch $batch"
dotnet "$cli" "${common[@]}" --batch-size "$batch" --threads 2 --out "$work/one" >/dev/null 2>"$work/one.err" || { cat "$work/one.err"; exit 1; }
echo "== mpirun -np 2 x 1 thread, batch $((batch / 2)) per rank (shared memory)"
mpirun -np 2 --oversubscribe --bind-to none dotnet "$cli" "${common[@]}" --batch-size $((batch / 2)) --threads 1 --out "$work/two" >/dev/null 2>"$work/two.err" || { cat "$work/two.err"; exit 1; }
echo "== mpirun -np 2 x 1 thread over TCP loopback"
mpirun -np 2 --oversubscribe --bind-to none --mca btl tcp,self --mca btl_tcp_if_include lo --mca pml ob1 dotnet "$cli" "${common[@]}" --batch-size $((batch / 2)) --threads 1 --out "$work/tcp" >/dev/null 2>"$work/tcp.err" || { cat "$work/tcp.err"; exit 1; }

python3 - "$work" "$shape" "$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)" <<'PY'
import json, statistics, sys
work, shape, cpu = sys.argv[1:4]
def steps(run):
    rows = [json.loads(l) for l in open(f"{work}/{run}/train_log.jsonl")]
    return [r for r in rows if "loss" in r][1:]  # the first step pays for JIT and first-touch allocation
print(f"\n{shape}, {cpu}")
print(f"{'run':34} {'tokens/s':>9} {'ms/step':>8} {'all-reduce ms':>14} {'waited ms':>10} {'MB/step':>8} {'buckets':>7}")
for run, label in (("one", "1 process x 2 threads"), ("two", "2 ranks x 1 thread (shm)"), ("tcp", "2 ranks x 1 thread (TCP lo)")):
    s = steps(run)
    tps = statistics.median(r["tokens_per_s"] for r in s)
    ms = statistics.median(r["tokens"] - p["tokens"] for p, r in zip(s, s[1:])) / tps * 1000 if len(s) > 1 else float("nan")
    ar = statistics.median(r.get("allreduce_s", 0) for r in s) * 1000
    wait = statistics.median(r.get("allreduce_wait_s", 0) for r in s) * 1000
    mb = s[0].get("allreduce_bytes", 0) / 1e6
    buckets = s[0].get("allreduce_buckets", 0)
    print(f"{label:34} {tps:9.0f} {ms:8.0f} {ar:14.1f} {wait:10.1f} {mb:8.1f} {buckets:7}")
PY
