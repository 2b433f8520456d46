#!/usr/bin/env python3
"""The PyTorch side of `sharpformer bench train`: one training step (forward, loss, backward, AdamW) of a
GPT-2-124M-shaped causal LM or a BERT-base-shaped masked LM, timed, in fp32.

Run by the benchmark as a subprocess (one process per thread setting, because OpenBLAS reads its thread count from
the environment at load time):

    OPENBLAS_NUM_THREADS=1 /usr/bin/python3 benchmarks/torch/train_step.py --model gpt2 --threads 2 --steps 5

It prints one JSON object on stdout: ms per step (median and all), tokens/s, the step's FLOPs (the same count the C#
side uses: 6·N_matmul·tokens + attention), peak RSS, the torch/OpenMP thread count, and which BLAS library the process
actually loaded (read from /proc/self/maps: Debian's python3-torch calls whatever libblas.so.3 the alternatives system
points at; the reference BLAS is no fair peer, OpenBLAS from libopenblas0-pthread is).

The models are written out by hand as Hugging Face's modeling_gpt2.py / modeling_bert.py compute them (eager
attention, GELU tanh for GPT-2 and erf for BERT, tied input/output embeddings, dropout 0 so both engines do the same
arithmetic), since `transformers` is not installable here. Weights are random (normal, std 0.02): speed does not
depend on their values.
"""
import argparse
import json
import math
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Gpt2Block(nn.Module):
    def __init__(self, c, h):
        super().__init__()
        self.h = h
        self.ln_1 = nn.LayerNorm(c, eps=1e-5)
        self.c_attn = nn.Linear(c, 3 * c)
        self.c_proj = nn.Linear(c, c)
        self.ln_2 = nn.LayerNorm(c, eps=1e-5)
        self.c_fc = nn.Linear(c, 4 * c)
        self.mlp_proj = nn.Linear(4 * c, c)

    def forward(self, x):
        b, t, c = x.shape
        d = c // self.h
        q, k, v = self.c_attn(self.ln_1(x)).split(c, dim=2)
        q = q.view(b, t, self.h, d).transpose(1, 2)
        k = k.view(b, t, self.h, d).transpose(1, 2)
        v = v.view(b, t, self.h, d).transpose(1, 2)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(d)
        causal = torch.ones(t, t, dtype=torch.bool).tril()
        scores = scores.masked_fill(~causal, torch.finfo(scores.dtype).min)
        y = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, t, c)
        x = x + self.c_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class Gpt2(nn.Module):
    def __init__(self, v=50257, p=1024, c=768, layers=12, h=12):
        super().__init__()
        self.wte = nn.Embedding(v, c)
        self.wpe = nn.Embedding(p, c)
        self.h = nn.ModuleList([Gpt2Block(c, h) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(c, eps=1e-5)

    def forward(self, ids, labels):
        t = ids.shape[1]
        x = self.wte(ids) + self.wpe(torch.arange(t))
        for block in self.h:
            x = block(x)
        logits = self.ln_f(x) @ self.wte.weight.t()
        return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1))


class BertLayer(nn.Module):
    def __init__(self, c, h, inner):
        super().__init__()
        self.h = h
        self.query = nn.Linear(c, c)
        self.key = nn.Linear(c, c)
        self.value = nn.Linear(c, c)
        self.attn_out = nn.Linear(c, c)
        self.ln1 = nn.LayerNorm(c, eps=1e-12)
        self.intermediate = nn.Linear(c, inner)
        self.output = nn.Linear(inner, c)
        self.ln2 = nn.LayerNorm(c, eps=1e-12)

    def forward(self, x, additive_mask):
        b, t, c = x.shape
        d = c // self.h

        def heads(z):
            return z.view(b, t, self.h, d).transpose(1, 2)

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(d) + additive_mask
        y = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, t, c)
        x = self.ln1(self.attn_out(y) + x)
        return self.ln2(self.output(F.gelu(self.intermediate(x))) + x)


class BertMlm(nn.Module):
    def __init__(self, v=30522, p=512, c=768, layers=12, h=12, inner=3072):
        super().__init__()
        self.word = nn.Embedding(v, c)
        self.pos = nn.Embedding(p, c)
        self.token_type = nn.Embedding(2, c)
        self.ln = nn.LayerNorm(c, eps=1e-12)
        self.layers = nn.ModuleList([BertLayer(c, h, inner) for _ in range(layers)])
        self.transform = nn.Linear(c, c)
        self.transform_ln = nn.LayerNorm(c, eps=1e-12)
        self.bias = nn.Parameter(torch.zeros(v))

    def forward(self, ids, mask, labels):
        t = ids.shape[1]
        x = self.ln(self.word(ids) + self.pos(torch.arange(t)) + self.token_type(torch.zeros_like(ids)))
        additive = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        for layer in self.layers:
            x = layer(x, additive)
        logits = self.transform_ln(F.gelu(self.transform(x))) @ self.word.weight.t() + self.bias
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1), ignore_index=-100)


def blas_library():
    with open("/proc/self/maps") as maps:
        libs = {line.split()[-1] for line in maps if "blas" in line.lower() and "/" in line}
    names = sorted(libs)
    if any("openblas" in n for n in names):
        lib = next((n for n in names if "libopenblas" in n), names[0])
        return "OpenBLAS (" + lib.rsplit("/", 1)[-1] + ")"
    return "reference/other BLAS (" + ", ".join(names) + ")" if names else "unknown"


def flops(params_matmul, b, t, layers, c):
    # 6 FLOPs per matmul weight per token (forward 2, backward 4) plus attention's two batched products
    # (QK^T and PV, forward 2 each per (query, key, channel), backward twice that), over all layers.
    tokens = b * t
    attention = 12 * layers * b * t * t * c
    return 6 * params_matmul * tokens + attention


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["gpt2", "bert"], required=True)
    ap.add_argument("--threads", type=int, required=True, help="torch intra-op threads")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    if args.model == "gpt2":
        b, t, v, c, layers = 4, 64, 50257, 768, 12
        model = Gpt2()
        ids = torch.randint(0, v, (b, t))
        labels = ids.clone()
        run = lambda: model(ids, labels)
        matmul_params = layers * (c * 3 * c + c * c + 2 * c * 4 * c) + v * c
    else:
        b, t, v, c, layers = 8, 128, 30522, 768, 12
        model = BertMlm()
        ids = torch.randint(0, v, (b, t))
        mask = torch.ones(b, t, dtype=torch.long)
        labels = torch.full((b, t), -100)
        chosen = torch.rand(b, t) < 0.15
        labels[chosen] = ids[chosen]
        run = lambda: model(ids, mask, labels)
        matmul_params = layers * (4 * c * c + 2 * c * 3072) + c * c + v * c

    for p in model.parameters():
        nn.init.normal_(p, std=0.02) if p.dim() > 1 else nn.init.zeros_(p)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)

    times = []
    for i in range(args.warmup + args.steps):
        start = time.perf_counter()
        loss = run()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if i >= args.warmup:
            times.append((time.perf_counter() - start) * 1000.0)

    ms = statistics.median(times)
    result = {
        "model": args.model,
        "batch": b,
        "seq": t,
        "torch_threads": torch.get_num_threads(),
        "blas": blas_library(),
        "torch": torch.__version__,
        "ms_per_step": ms,
        "ms_all": times,
        "tokens_per_s": b * t / (ms / 1000.0),
        "flops_per_step": flops(matmul_params, b, t, layers, c),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "loss": float(loss.item()),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
