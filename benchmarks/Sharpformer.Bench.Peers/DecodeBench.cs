using System.Globalization;
using System.Numerics;
using System.Runtime.InteropServices;
using LLama;
using LLama.Common;
using LLama.Native;
using Sharpformer.IO.Gguf;
using Sharpformer.IO.SafeTensors;
using Sharpformer.Models;
using Sharpformer.Models.Gpt2;
using Sharpformer.Tensors;
using Sharpformer.Tensors.Kernels;
using Sharpformer.Tensors.Threading;

namespace Sharpformer.Bench.Peers;

/// <summary>
/// Prompt processing (one prompt of T tokens) and decoding (N tokens after it, batch 1 and batch B) for Sharpformer
/// and llama.cpp, one process, same weights, same thread count; plus the streaming read bandwidth, which bounds batch-1
/// decoding at bandwidth ÷ weight bytes tokens/s.
/// </summary>
internal static class DecodeBench
{
    public static int Run(DecodeOptions o, TextWriter output)
    {
        var inv = CultureInfo.InvariantCulture;
        ParallelFor.MaxDegreeOfParallelism = o.Threads;
        var folder = o.Model ?? Random124M(output);
        var work = Path.Combine(Path.GetTempPath(), "sharpformer-bench-decode");
        Directory.CreateDirectory(work);

        var bandwidth = ReadBandwidth(o.Threads);
        output.WriteLine(string.Create(inv, $"read bandwidth: {bandwidth / 1e9:F1} GB/s (1 GiB streamed, {o.Threads} threads, best of 5)"));

        var rng = new Random(42);
        var vocab = Gpt2IdsUpperBound(folder);
        var prompt = Enumerable.Range(0, o.Batch * o.PromptTokens).Select(_ => rng.Next(vocab)).ToArray();
        var next = Enumerable.Range(0, o.Batch * o.NewTokens).Select(_ => rng.Next(vocab)).ToArray();

        var rows = new List<(string DType, string Engine, Speeds S, long WeightBytes)>();
        foreach (var (enabled, type, label) in new[] { (o.F32, GgufFileType.AllF32, "F32"), (o.F16, GgufFileType.MostlyF16, "F16") })
        {
            if (!enabled)
            {
                continue;
            }

            var gguf = Path.Combine(work, $"{new DirectoryInfo(folder).Name}-{label.ToLowerInvariant()}.gguf");
            Gpt2GgufExporter.Export(folder, gguf, type);
            // Batch-1 decoding reads every weight once per token except the position table (one row).
            var weightBytes = GgufFile.Open(gguf).Tensors.Where(t => t.Name != "position_embd.weight").Sum(t => t.ByteLength);
            output.WriteLine($"sharpformer {label} ...");
            var dtype = type == GgufFileType.MostlyF16 ? Tensors.DType.F16 : Tensors.DType.F32;
            rows.Add((label, "sharpformer", RunSharpformer(folder, o, prompt, next, dtype), weightBytes));

            output.WriteLine($"sharpformer Gemv-only {label} ...");
            rows.Add((label, "sf gemv-only", RunGemvOnly(folder, o, type == GgufFileType.MostlyF16), weightBytes));

            output.WriteLine($"llama.cpp {label} ...");
            rows.Add((label, "llama.cpp", RunLlama(gguf, o, prompt, next), weightBytes));
        }

        output.WriteLine();
        output.WriteLine(string.Create(inv, $"GPT-2 {Path.GetFileName(folder)}: threads {o.Threads}, prompt {o.PromptTokens} tokens, {o.NewTokens} new tokens, decode batch 1 and {o.Batch}"));
        output.WriteLine(string.Create(inv, $"{"dtype",-5} {"engine",-12} {"prefill tok/s",14} {"decode b1 tok/s",16} {$"decode b{o.Batch} tok/s",16} {"weight MB",10} {"b1 / bound",11}"));
        foreach (var (dtype, engine, s, bytes) in rows)
        {
            var bound = bandwidth / bytes;
            var prefill = double.IsNaN(s.Prefill) ? "-" : s.Prefill.ToString("F1", inv);
            output.WriteLine(string.Create(inv, $"{dtype,-5} {engine,-12} {prefill,14} {s.Decode1,16:F1} {s.DecodeBatch,16:F1} {bytes / 1e6,10:F1} {s.Decode1 / bound,11:F2}"));
        }

        foreach (var dtype in rows.Select(r => r.DType).Distinct())
        {
            var ours = rows.Where(r => r.DType == dtype && r.Engine == "sharpformer").Select(r => r.S).FirstOrDefault();
            var peer = rows.Where(r => r.DType == dtype && r.Engine == "llama.cpp").Select(r => r.S).FirstOrDefault();
            if (ours is not null && peer is not null)
            {
                output.WriteLine(string.Create(inv, $"{dtype,-5} {"ratio",-12} {ours.Prefill / peer.Prefill,13:F2}x {ours.Decode1 / peer.Decode1,15:F2}x {ours.DecodeBatch / peer.DecodeBatch,15:F2}x"));
            }
            else
            {
                output.WriteLine($"{dtype,-5} {"ratio",-12} (no Sharpformer or llama.cpp row for {dtype})");
            }
        }

        output.WriteLine("sf gemv-only: Gemv.MatVec over every weight matrix of the model per token (no attention, norms or");
        output.WriteLine("  sampling): the weight-streaming part of a decode step that used the F16/F32 GEMV kernel.");
        output.WriteLine(string.Create(inv, $"bound = read bandwidth / weight bytes = {bandwidth / 1e9:F1} GB/s / weight MB; ratios are Sharpformer / llama.cpp"));
        return 0;
    }

    private static int Gpt2IdsUpperBound(string folder) =>
        (IO.Config.ModelConfig.Load(folder) as IO.Config.Gpt2Config)?.VocabSize ?? throw new InvalidDataException($"{folder}: not a GPT-2 folder.");

    private static Speeds RunSharpformer(string folder, DecodeOptions o, int[] prompt, int[] next, Tensors.DType dtype)
    {
        // The same matrices type as the GGUF llama.cpp runs (F16 export ↔ F16 weights, as llama.cpp keeps them).
        var model = Gpt2LMHeadModel.FromPretrained(folder, dtype);
        int t = o.PromptTokens, n = o.NewTokens, b = o.Batch, v = model.VocabSize;
        var logits = new float[b * v];
        KvCache cache = model.CreateCache(1, t + n);

        void Prefill(int batch) => model.ForwardLast(prompt.AsSpan(0, batch * t), [], cache, logits);
        void Steps(int batch)
        {
            for (var s = 0; s < n; s++)
            {
                model.ForwardLast(next.AsSpan(s * b, batch), [], cache, logits);
            }
        }

        // Warm-up of every shape: JIT and the lazily packed prefill weights.
        cache = model.CreateCache(1, t + n);
        Prefill(1);
        Steps(1);
        cache = model.CreateCache(b, t + n);
        Prefill(b);
        Steps(b);

        var prefill = Timing.BestSeconds(3, () => cache = model.CreateCache(1, t + n), () => Prefill(1));
        var decode1 = Timing.BestSeconds(3, () => { cache = model.CreateCache(1, t + n); Prefill(1); }, () => Steps(1));
        var decodeB = Timing.BestSeconds(3, () => { cache = model.CreateCache(b, t + n); Prefill(b); }, () => Steps(b));
        return new Speeds(t / prefill, n / decode1, b * n / decodeB);
    }

    private static Speeds RunLlama(string gguf, DecodeOptions o, int[] prompt, int[] next)
    {
        int t = o.PromptTokens, n = o.NewTokens, b = o.Batch;
        var perSequence = t + n;
        // llama.cpp logs every graph reservation to the console; writing that out would be timed with the decode.
        NativeLogConfig.llama_log_set((level, message) =>
        {
            if (level == LLamaLogLevel.Error)
            {
                Console.Error.Write(message);
            }
        });
        var parameters = new ModelParams(gguf)
        {
            // llama.cpp splits the context evenly between the B sequences.
            ContextSize = (uint)(((b * perSequence) + 255) / 256 * 256),
            BatchSize = (uint)Math.Max(512, b * t),
            Threads = o.Threads,
            BatchThreads = o.Threads,
            SeqMax = (uint)b,
        };
        using var weights = LLamaWeights.LoadFromFile(parameters);
        using var context = weights.CreateContext(parameters);
        var handle = context.NativeHandle;
        var batch = new LLamaBatch();

        void Decode()
        {
            var result = handle.Decode(batch);
            if (result != DecodeResult.Ok)
            {
                throw new InvalidOperationException($"llama_decode returned {result}");
            }
        }

        void Prefill(int sequences)
        {
            handle.MemoryClear(true);
            batch.Clear();
            for (var s = 0; s < sequences; s++)
            {
                for (var i = 0; i < t; i++)
                {
                    batch.Add(prompt[(s * t) + i], i, (LLamaSeqId)s, i == t - 1);
                }
            }

            Decode();
        }

        void Steps(int sequences)
        {
            for (var step = 0; step < n; step++)
            {
                batch.Clear();
                for (var s = 0; s < sequences; s++)
                {
                    batch.Add(next[(step * b) + s], t + step, (LLamaSeqId)s, true);
                }

                Decode();
            }
        }

        // Warm-up of every shape: llama.cpp reserves a compute graph the first time it sees each batch shape.
        Prefill(1);
        Steps(1);
        Prefill(b);
        Steps(b);
        var prefill = Timing.BestSeconds(3, () => handle.MemoryClear(true), () => Prefill(1));
        var decode1 = Timing.BestSeconds(3, () => Prefill(1), () => Steps(1));
        var decodeB = Timing.BestSeconds(3, () => Prefill(b), () => Steps(b));
        return new Speeds(t / prefill, n / decode1, b * n / decodeB);
    }

    /// <summary>
    /// Tokens/s of the weight-streaming part of decoding alone: per token, Gemv.MatVec through every matrix of the
    /// model (per layer c_attn, attn c_proj, c_fc, mlp c_proj; then the tied head), batch 1 and batch B.
    /// </summary>
    private static Speeds RunGemvOnly(string folder, DecodeOptions o, bool half)
    {
        var config = (IO.Config.Gpt2Config)IO.Config.ModelConfig.Load(folder);
        int c = config.HiddenSize, ff = config.IntermediateSize;
        var shapes = new List<(int Out, int In)>();
        for (var l = 0; l < config.NumHiddenLayers; l++)
        {
            shapes.AddRange([(3 * c, c), (c, c), (ff, c), (c, ff)]);
        }

        shapes.Add((config.VocabSize, c));
        // Values do not change the speed; a cheap deterministic fill keeps setup short.
        var f32 = half ? null : shapes.Select(s => Filled(s.Out * s.In, i => (float)((i % 17) - 8) * 1e-3f)).ToArray();
        var f16 = half ? shapes.Select(s => Filled(s.Out * s.In, i => (Half)(((i % 17) - 8) * 1e-3f))).ToArray() : null;
        var bias = new float[Math.Max(ff, config.VocabSize)];
        int width = Math.Max(ff, c), b = o.Batch, n = o.NewTokens;
        var x = Filled(b * width, i => 0.01f * (i % 7));
        var y = new float[b * Math.Max(width, config.VocabSize)];

        void Steps(int rows)
        {
            for (var step = 0; step < n; step++)
            {
                for (var m = 0; m < shapes.Count; m++)
                {
                    var (outs, ins) = shapes[m];
                    if (half)
                    {
                        Gemv.MatVec(x.AsSpan(0, rows * ins), rows, f16![m], ins, outs, bias.AsSpan(0, outs), y.AsSpan(0, rows * outs));
                    }
                    else
                    {
                        Gemv.MatVec(x.AsSpan(0, rows * ins), rows, f32![m], ins, outs, bias.AsSpan(0, outs), y.AsSpan(0, rows * outs));
                    }
                }
            }
        }

        Steps(1);
        var decode1 = Timing.BestSeconds(3, () => { }, () => Steps(1));
        var decodeB = Timing.BestSeconds(3, () => { }, () => Steps(b));
        return new Speeds(double.NaN, n / decode1, b * n / decodeB);
    }

    private static T[] Filled<T>(int length, Func<int, T> value)
    {
        var a = GC.AllocateUninitializedArray<T>(length);
        for (var i = 0; i < a.Length; i++)
        {
            a[i] = value(i);
        }

        return a;
    }

    /// <summary>Bytes per second of a streaming read of 1 GiB with <paramref name="threads"/> threads (best of 5).</summary>
    private static double ReadBandwidth(int threads)
    {
        const long bytes = 1L << 30;
        const int chunks = 256;
        var data = GC.AllocateUninitializedArray<float>((int)(bytes / sizeof(float)));
        Array.Fill(data, 1f);
        var perChunk = data.Length / chunks;
        var sums = new float[chunks];
        var best = double.MaxValue;
        for (var pass = 0; pass < 6; pass++)
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            ParallelFor.For(chunks, 1, (start, end) =>
            {
                for (var c = start; c < end; c++)
                {
                    sums[c] = Sum(data.AsSpan(c * perChunk, perChunk));
                }
            });
            var seconds = sw.Elapsed.TotalSeconds;
            if (pass > 0)
            {
                best = Math.Min(best, seconds);
            }
        }

        if (Math.Abs(sums.Sum() - data.Length) > data.Length * 1e-3)
        {
            throw new InvalidOperationException("bandwidth probe summed wrong: the read was optimized away or raced.");
        }

        _ = threads;
        return bytes / best;
    }

    /// <summary>Sums a span with four independent vector accumulators (enough loads in flight to saturate memory).</summary>
    private static float Sum(ReadOnlySpan<float> x)
    {
        var v = MemoryMarshal.Cast<float, Vector<float>>(x);
        Vector<float> a0 = default, a1 = default, a2 = default, a3 = default;
        var i = 0;
        for (; i + 4 <= v.Length; i += 4)
        {
            a0 += v[i];
            a1 += v[i + 1];
            a2 += v[i + 2];
            a3 += v[i + 3];
        }

        for (; i < v.Length; i++)
        {
            a0 += v[i];
        }

        var total = Vector.Sum(a0 + a1 + a2 + a3);
        for (var j = v.Length * Vector<float>.Count; j < x.Length; j++)
        {
            total += x[j];
        }

        return total;
    }

    /// <summary>A GPT-2 124M-shaped folder with random weights and the real tokenizer, made once under the temp folder.</summary>
    private static string Random124M(TextWriter output)
    {
        var dir = Path.Combine(Path.GetTempPath(), "sharpformer-bench-gpt2-124m-random");
        if (File.Exists(Path.Combine(dir, "model.safetensors")) && File.Exists(Path.Combine(dir, "merges.txt")))
        {
            return dir;
        }

        output.WriteLine($"creating a random GPT-2 124M-shaped model in {dir} (about 500 MB, once) ...");
        Directory.CreateDirectory(dir);
        const int c = 768, layers = 12, positions = 1024, vocab = 50257;
        File.WriteAllText(Path.Combine(dir, "config.json"), $$"""
            {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": {{vocab}}, "n_positions": {{positions}},
             "n_embd": {{c}}, "n_layer": {{layers}}, "n_head": 12, "activation_function": "gelu_new", "bos_token_id": 50256, "eos_token_id": 50256}
            """);
        var rng = new Random(124);
        IEnumerable<(string, Tensor)> Weights()
        {
            Tensor N(int[] shape, float std = 0.02f, float mean = 0f) => Tensor.RandomNormal(shape, rng, mean, std);
            yield return ("transformer.wte.weight", N([vocab, c]));
            yield return ("transformer.wpe.weight", N([positions, c], 0.01f));
            for (var i = 0; i < layers; i++)
            {
                var p = $"transformer.h.{i}.";
                yield return (p + "ln_1.weight", N([c], 0.02f, 1f));
                yield return (p + "ln_1.bias", N([c]));
                yield return (p + "attn.c_attn.weight", N([c, 3 * c]));
                yield return (p + "attn.c_attn.bias", N([3 * c]));
                yield return (p + "attn.c_proj.weight", N([c, c]));
                yield return (p + "attn.c_proj.bias", N([c]));
                yield return (p + "ln_2.weight", N([c], 0.02f, 1f));
                yield return (p + "ln_2.bias", N([c]));
                yield return (p + "mlp.c_fc.weight", N([c, 4 * c]));
                yield return (p + "mlp.c_fc.bias", N([4 * c]));
                yield return (p + "mlp.c_proj.weight", N([4 * c, c]));
                yield return (p + "mlp.c_proj.bias", N([c]));
            }

            yield return ("transformer.ln_f.weight", N([c], 0.02f, 1f));
            yield return ("transformer.ln_f.bias", N([c]));
        }

        SafeTensorsWriter.Write(Path.Combine(dir, "model.safetensors.partial"), Weights());
        Gpt2VocabFiles.Write(dir);
        File.Move(Path.Combine(dir, "model.safetensors.partial"), Path.Combine(dir, "model.safetensors"), overwrite: true);
        return dir;
    }
}
