using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using LLama;
using LLama.Common;
using LLama.Native;
using Sharpformer.IO.Gguf;
using Sharpformer.IO.SafeTensors;
using Sharpformer.Models;
using Sharpformer.Models.Gpt2;
using Sharpformer.Models.Llama;
using Sharpformer.Tensors;
using Sharpformer.Tensors.Kernels;
using Sharpformer.Tensors.Storage;
using Sharpformer.Tensors.Threading;

namespace Sharpformer.Bench.Peers;

/// <summary>
/// Prompt processing (one prompt of T tokens) and decoding (N tokens after it, batch 1 and batch B) for Sharpformer and
/// llama.cpp, one process, same weights, same thread count, plus the streaming read bandwidth, which bounds batch-1
/// decoding at bandwidth ÷ weight bytes tokens/s. The machine is shared and its memory bandwidth drifts by ±30 % over
/// minutes, so nothing is measured in blocks: every sample runs each measurement once per engine back to back (the
/// order alternating between samples), and a ratio is the median of the per-sample ratios. Each batch-1 run sits
/// between two bandwidth probes, and its fraction of the bound uses their mean, the bandwidth of that moment. GPT-2 (a folder or the
/// random 124M shape) or, with <c>--arch llama</c>, a random TinyLlama-1.1B-shaped Llama whose GGUF files (one per
/// weight type) are kept beside it, since quantizing 1.1 B weights takes minutes.
/// </summary>
internal static class DecodeBench
{
    public static int Run(DecodeOptions o, TextWriter output)
    {
        var inv = CultureInfo.InvariantCulture;
        ParallelFor.MaxDegreeOfParallelism = o.Threads;
        var llama = o.Arch == "llama";
        var folder = llama ? RandomTinyLlama(output) : o.Model ?? Random124M(output);
        var work = Path.Combine(Path.GetTempPath(), "sharpformer-bench-decode");
        Directory.CreateDirectory(work);
        var probe = new BandwidthProbe();

        var rng = new Random(42);
        var vocab = llama ? ((IO.Config.LlamaConfig)IO.Config.ModelConfig.Load(folder)).VocabSize : Gpt2IdsUpperBound(folder);
        var prompt = Enumerable.Range(0, o.Batch * o.PromptTokens).Select(_ => rng.Next(vocab)).ToArray();
        var next = Enumerable.Range(0, o.Batch * o.NewTokens).Select(_ => rng.Next(vocab)).ToArray();

        var results = new List<DTypeResult>();
        foreach (var name in o.DTypes)
        {
            var type = Gpt2GgufExporter.ParseFileType(name);
            var label = name.ToUpperInvariant();
            var quantized = type is not (GgufFileType.AllF32 or GgufFileType.MostlyF16);
            var gguf = Path.Combine(work, $"{new DirectoryInfo(folder).Name}-{name}.gguf");
            if (llama)
            {
                if (!File.Exists(gguf))
                {
                    output.WriteLine($"{label}: writing {gguf} (once; kept for later runs) ...");
                    LlamaGguf.Export(folder, gguf + ".partial", type);
                    File.Move(gguf + ".partial", gguf, overwrite: true);
                }
            }
            else
            {
                Gpt2GgufExporter.Export(folder, gguf, type);
            }

            if (o.PrepareOnly)
            {
                output.WriteLine($"{label}: {gguf} is ready (--prepare-only: nothing measured).");
                continue;
            }

            // Batch-1 decoding reads every weight once per token except one row of a table it only looks up (GPT-2's
            // position table; Llama's untied token embedding).
            var lookedUp = llama ? "token_embd.weight" : "position_embd.weight";
            var weightBytes = GgufFile.Open(gguf).Tensors.Where(t => t.Name != lookedUp).Sum(t => t.ByteLength);
            var dtype = type == GgufFileType.MostlyF16 ? Tensors.DType.F16 : Tensors.DType.F32;
            output.WriteLine($"{label}: loading both engines and warming up ...");
            // Quantized: Sharpformer loads the very GGUF file llama.cpp runs (the same blocks); F32/F16: the folder
            // (GPT-2) or the same file (Llama). The Llama's dense copy beside quantized blocks is kept in F16 (memory).
            ICausalLM model = llama
                ? LlamaGguf.LoadModel(gguf, quantized ? Tensors.DType.F16 : dtype)
                : quantized ? Gpt2Gguf.Load(gguf) : Gpt2LMHeadModel.FromPretrained(folder, dtype);
            var cacheTyped = (IKvCacheElementType)model;
            if (o.KvCache is not null)
            {
                cacheTyped.KvCacheType = o.KvCache == "f16" ? Tensors.DType.F16 : Tensors.DType.F32;
            }

            output.WriteLine($"{label}: Sharpformer KV cache {(cacheTyped.KvCacheType == Tensors.DType.F16 ? "f16" : "f32")} (llama.cpp: its default, f16)");
            var ours = new SharpformerEngine(model, o, prompt, next);
            using var peer = new LlamaEngine(gguf, o, prompt, next);
            // The GEMV-only probe streams GPT-2's dense F32/F16 matrices; there is none for a quantized file or a Llama.
            IEngine[] engines = quantized || llama ? [ours, peer] : [ours, peer, new GemvOnlyEngine(folder, o, dtype == Tensors.DType.F16)];
            var gemv = engines.Length > 2 ? engines[2] : null;
            // Every shape twice (once for the 1.1 B Llama, whose every step is long): JIT tier-up, our lazily packed
            // prefill weights, the compute graph llama.cpp reserves the first time it sees a batch shape.
            foreach (var engine in engines)
            {
                for (var pass = 0; pass < (llama ? 1 : 2); pass++)
                {
                    foreach (var kind in engine.Measures)
                    {
                        engine.Run(kind);
                    }
                }
            }

            var r = new DTypeResult(label, weightBytes);
            for (var sample = 0; sample < o.Samples; sample++)
            {
                IEngine first = sample % 2 == 0 ? ours : peer, second = sample % 2 == 0 ? peer : ours;
                foreach (var kind in new[] { Measure.Prefill, Measure.Decode1, Measure.DecodeBatch })
                {
                    if (kind == Measure.Decode1)
                    {
                        // Each batch-1 run between two probes: its bound uses the bandwidth of that moment.
                        var before = r.Probe(probe);
                        r.AddDecode1(first.Name, first.Run(kind), before, r.Probe(probe));
                        r.AddDecode1(second.Name, second.Run(kind), r.Bandwidth[^1], r.Probe(probe));
                        continue;
                    }

                    var a = first.Run(kind);
                    var b = second.Run(kind);
                    r.Add(first.Name, kind, a);
                    r.Add(second.Name, kind, b);
                }

                if (gemv is not null)
                {
                    r.AddDecode1(gemv.Name, gemv.Run(Measure.Decode1), r.Bandwidth[^1], r.Probe(probe));
                    r.Add(gemv.Name, Measure.DecodeBatch, gemv.Run(Measure.DecodeBatch));
                }

                output.WriteLine(string.Create(inv, $"  sample {sample + 1}/{o.Samples}: decode b1 sharpformer {r.Last("sharpformer", Measure.Decode1):F1} ({r.LastBound("sharpformer"):F2} of its bound) vs llama.cpp {r.Last("llama.cpp", Measure.Decode1):F1} tok/s ({r.LastBound("llama.cpp"):F2}), read bandwidth {r.Bandwidth[^3] / 1e9:F1}, {r.Bandwidth[^2] / 1e9:F1}, {r.Bandwidth[^1] / 1e9:F1} GB/s"));
            }

            results.Add(r);
            peer.Dispose(); // llama.cpp maps the file; release it before deleting (a second Dispose is a no-op).
            if (!llama)
            {
                File.Delete(gguf); // Exported afresh each run: nothing to keep.
            }
        }

        if (o.PrepareOnly)
        {
            return 0;
        }

        Report(o, folder, results, output);
        if (llama)
        {
            long bytes = new DirectoryInfo(folder).EnumerateFiles().Sum(f => f.Length);
            output.WriteLine(string.Create(inv, $"The random Llama stays in {folder} ({bytes / 1e9:F1} GB) and its GGUF files in {work}; delete them to free the space."));
        }
        else if (o.Model is null)
        {
            long bytes = new DirectoryInfo(folder).EnumerateFiles().Sum(f => f.Length);
            output.WriteLine(string.Create(inv, $"The random model stays in {folder} ({bytes / 1e6:F0} MB) for the next run; delete that folder to free the space."));
        }

        return 0;
    }

    private static void Report(DecodeOptions o, string folder, List<DTypeResult> results, TextWriter output)
    {
        var inv = CultureInfo.InvariantCulture;
        output.WriteLine();
        var what = o.Arch == "llama" ? "Llama" : "GPT-2";
        output.WriteLine(string.Create(inv, $"{what} {Path.GetFileName(folder)}: threads {o.Threads}, prompt {o.PromptTokens} tokens, {o.NewTokens} new tokens, decode batch 1 and {o.Batch}; medians of {o.Samples} interleaved samples"));
        output.WriteLine(string.Create(inv, $"{"dtype",-5} {"engine",-12} {"prefill tok/s",14} {"decode b1 tok/s",16} {$"decode b{o.Batch} tok/s",16} {"weight MB",10} {"b1 / bound",11}"));
        foreach (var r in results)
        {
            foreach (var engine in new[] { "sharpformer", "llama.cpp", "sf gemv-only" })
            {
                if (!r.Has(engine, Measure.Decode1))
                {
                    continue;
                }

                var prefill = r.Has(engine, Measure.Prefill) ? Median(r.Get(engine, Measure.Prefill)).ToString("F1", inv) : "-";
                var decode1 = Median(r.Get(engine, Measure.Decode1));
                output.WriteLine(string.Create(inv, $"{r.Label,-5} {engine,-12} {prefill,14} {decode1,16:F1} {Median(r.Get(engine, Measure.DecodeBatch)),16:F1} {r.WeightBytes / 1e6,10:F1} {Median(r.Bounds(engine)),11:F2}"));
            }

            output.WriteLine(string.Create(inv, $"{r.Label,-5} {"ratio",-12} {r.Ratio(Measure.Prefill),13:F2}x {r.Ratio(Measure.Decode1),15:F2}x {r.Ratio(Measure.DecodeBatch),15:F2}x"));
        }

        output.WriteLine("ratio: Sharpformer / llama.cpp, the median of the per-sample ratios (both engines measured back to back in each sample).");
        if (results.Any(r => r.Has("sf gemv-only", Measure.Decode1)))
        {
            output.WriteLine("sf gemv-only: Gemv.MatVec over every weight matrix of the model per token (no attention, norms or sampling):");
            output.WriteLine("  the weight-streaming part of a decode step.");
        }

        var bw = string.Join(", ", results.Select(r => string.Create(inv, $"{r.Label} {Median(r.Bandwidth) / 1e9:F1} GB/s (range {r.Bandwidth.Min() / 1e9:F1}–{r.Bandwidth.Max() / 1e9:F1})")));
        output.WriteLine("b1 / bound: decode b1 tok/s ÷ (read bandwidth / weight bytes), the read bandwidth being the mean of the two");
        output.WriteLine("  probes run just before and just after that batch-1 run; the median of the per-sample figures.");
        output.WriteLine($"Read bandwidth, median of every probe per dtype: {bw}.");
        output.WriteLine($"  Each probe: {BandwidthProbe.Description}.");
    }

    private static double Median(IReadOnlyList<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length == 0 ? double.NaN : sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
    }

    private static int Gpt2IdsUpperBound(string folder) =>
        (IO.Config.ModelConfig.Load(folder) as IO.Config.Gpt2Config)?.VocabSize ?? throw new InvalidDataException($"{folder}: not a GPT-2 folder.");

    /// <summary>What one sample measures.</summary>
    private enum Measure
    {
        Prefill,
        Decode1,
        DecodeBatch,
    }

    /// <summary>One engine's measurements, each returning tokens/s of one run (its setup untimed).</summary>
    private interface IEngine
    {
        string Name { get; }

        /// <summary>What <see cref="Run"/> can measure.</summary>
        Measure[] Measures => [Measure.Prefill, Measure.Decode1, Measure.DecodeBatch];

        double Run(Measure kind);
    }

    /// <summary>Per-sample speeds of every engine for one weight type, and the read bandwidth of each sample.</summary>
    private sealed class DTypeResult(string label, long weightBytes)
    {
        private readonly Dictionary<(string, Measure), List<double>> _speeds = [];
        private readonly Dictionary<string, List<double>> _bounds = [];

        public string Label { get; } = label;

        public long WeightBytes { get; } = weightBytes;

        /// <summary>Every probe's read bandwidth (bytes/s), in order.</summary>
        public List<double> Bandwidth { get; } = [];

        /// <summary>Runs the probe and keeps its bandwidth.</summary>
        public double Probe(BandwidthProbe probe)
        {
            Bandwidth.Add(probe.Measure());
            return Bandwidth[^1];
        }

        /// <summary>A batch-1 speed, and its fraction of the bound at the mean of the probes taken just before and after it.</summary>
        public void AddDecode1(string engine, double tokensPerSecond, double bandwidthBefore, double bandwidthAfter)
        {
            Add(engine, Measure.Decode1, tokensPerSecond);
            if (!_bounds.TryGetValue(engine, out var list))
            {
                _bounds[engine] = list = [];
            }

            list.Add(tokensPerSecond / ((bandwidthBefore + bandwidthAfter) / 2 / WeightBytes));
        }

        /// <summary>The per-sample fractions of the bound of an engine's batch-1 runs.</summary>
        public List<double> Bounds(string engine) => _bounds.TryGetValue(engine, out var list) ? list : [];

        public double LastBound(string engine) => Bounds(engine)[^1];

        public void Add(string engine, Measure kind, double tokensPerSecond)
        {
            if (!_speeds.TryGetValue((engine, kind), out var list))
            {
                _speeds[(engine, kind)] = list = [];
            }

            list.Add(tokensPerSecond);
        }

        public bool Has(string engine, Measure kind) => _speeds.ContainsKey((engine, kind));

        public List<double> Get(string engine, Measure kind) => _speeds.TryGetValue((engine, kind), out var list) ? list : [];

        public double Last(string engine, Measure kind) => Get(engine, kind)[^1];

        /// <summary>Median over samples of sharpformer ÷ llama.cpp, each pair measured back to back.</summary>
        public double Ratio(Measure kind) => Median(Get("sharpformer", kind).Zip(Get("llama.cpp", kind), (a, b) => a / b).ToList());
    }

    /// <summary>Sharpformer's model with the same matrix type as the GGUF llama.cpp runs (F16 export ↔ F16 weights; a quantized file loaded itself).</summary>
    private sealed class SharpformerEngine(ICausalLM model, DecodeOptions o, int[] prompt, int[] next) : IEngine
    {
        private readonly ICausalLM _model = model;
        private readonly float[] _logits = new float[o.Batch * model.VocabSize];

        public string Name => "sharpformer";

        public double Run(Measure kind)
        {
            int t = o.PromptTokens, n = o.NewTokens, b = kind == Measure.DecodeBatch ? o.Batch : 1;
            var cache = _model.CreateCache(b, t + n);
            if (kind == Measure.Prefill)
            {
                var sw = Stopwatch.StartNew();
                _model.ForwardLast(prompt.AsSpan(0, t), [], cache, _logits);
                return t / sw.Elapsed.TotalSeconds;
            }

            _model.ForwardLast(prompt.AsSpan(0, b * t), [], cache, _logits);
            var steps = Stopwatch.StartNew();
            for (var s = 0; s < n; s++)
            {
                _model.ForwardLast(next.AsSpan(s * o.Batch, b), [], cache, _logits);
            }

            return b * n / steps.Elapsed.TotalSeconds;
        }
    }

    private sealed class LlamaEngine : IEngine, IDisposable
    {
        private readonly DecodeOptions _o;
        private readonly int[] _prompt;
        private readonly int[] _next;
        private readonly LLamaWeights _weights;
        private readonly LLamaContext _context;
        private readonly LLamaBatch _batch = new();

        public LlamaEngine(string gguf, DecodeOptions o, int[] prompt, int[] next)
        {
            (_o, _prompt, _next) = (o, prompt, next);
            // llama.cpp logs every graph reservation to the console; writing that out would be timed with the decode.
            NativeLogConfig.llama_log_set((level, message) =>
            {
                if (level == LLamaLogLevel.Error)
                {
                    Console.Error.Write(message);
                }
            });
            var perSequence = o.PromptTokens + o.NewTokens;
            var parameters = new ModelParams(gguf)
            {
                // llama.cpp splits the context evenly between the B sequences.
                ContextSize = (uint)(((o.Batch * perSequence) + 255) / 256 * 256),
                BatchSize = (uint)Math.Max(512, o.Batch * o.PromptTokens),
                Threads = o.Threads,
                BatchThreads = o.Threads,
                SeqMax = (uint)o.Batch,
            };
            _weights = LLamaWeights.LoadFromFile(parameters);
            _context = _weights.CreateContext(parameters);
        }

        public string Name => "llama.cpp";

        public double Run(Measure kind)
        {
            int t = _o.PromptTokens, n = _o.NewTokens, b = kind == Measure.DecodeBatch ? _o.Batch : 1;
            if (kind == Measure.Prefill)
            {
                _context.NativeHandle.MemoryClear(true);
                var sw = Stopwatch.StartNew();
                Prefill(1);
                return t / sw.Elapsed.TotalSeconds;
            }

            Prefill(b);
            var steps = Stopwatch.StartNew();
            for (var step = 0; step < n; step++)
            {
                _batch.Clear();
                for (var s = 0; s < b; s++)
                {
                    _batch.Add(_next[(step * _o.Batch) + s], t + step, (LLamaSeqId)s, true);
                }

                Decode();
            }

            return b * n / steps.Elapsed.TotalSeconds;
        }

        public void Dispose()
        {
            _context.Dispose();
            _weights.Dispose();
        }

        private void Prefill(int sequences)
        {
            int t = _o.PromptTokens;
            _context.NativeHandle.MemoryClear(true);
            _batch.Clear();
            for (var s = 0; s < sequences; s++)
            {
                for (var i = 0; i < t; i++)
                {
                    _batch.Add(_prompt[(s * t) + i], i, (LLamaSeqId)s, i == t - 1);
                }
            }

            Decode();
        }

        private void Decode()
        {
            var result = _context.NativeHandle.Decode(_batch);
            if (result != DecodeResult.Ok)
            {
                throw new InvalidOperationException($"llama_decode returned {result}");
            }
        }
    }

    /// <summary>
    /// The weight-streaming part of decoding alone: per token, Gemv.MatVec through every matrix of the model (per layer
    /// c_attn, attn c_proj, c_fc, mlp c_proj; then the tied head), batch 1 and batch B, on random-valued weights (F16 ones
    /// held as half codes, as the model holds them once a decode has met them).
    /// </summary>
    private sealed class GemvOnlyEngine : IEngine
    {
        private readonly DecodeOptions _o;
        private readonly List<(int Out, int In)> _shapes = [];
        private readonly ArraySegment<float>[]? _f32;
        private readonly ArraySegment<Half>[]? _f16;
        private readonly float[] _bias;
        private readonly float[] _x;
        private readonly float[] _y;

        public GemvOnlyEngine(string folder, DecodeOptions o, bool half)
        {
            _o = o;
            var config = (IO.Config.Gpt2Config)IO.Config.ModelConfig.Load(folder);
            int c = config.HiddenSize, ff = config.IntermediateSize;
            for (var l = 0; l < config.NumHiddenLayers; l++)
            {
                _shapes.AddRange([(3 * c, c), (c, c), (ff, c), (c, ff)]);
            }

            _shapes.Add((config.VocabSize, c));
            // Weights spread like an initialized model's (uniform in ±0.035: standard deviation 0.02): the F16 ones include subnormal halves, which
            // must not slow the kernel down.
            var rng = new Random(7);
            // In aligned buffers on huge pages, as the model keeps its weights.
            _f32 = half ? null : _shapes.Select(s => AlignedBuffer.Copy<float>(Filled(s.Out * s.In, _ => (float)(rng.NextDouble() - 0.5) * 0.07f))).ToArray();
            _f16 = half ? _shapes.Select(s => AlignedBuffer.Copy<Half>(Filled(s.Out * s.In, _ => (Half)((rng.NextDouble() - 0.5) * 0.07)))).ToArray() : null;
            if (_f16 is not null)
            {
                // As the model's F16 layers hold their weights once a decode has met them (Parameter.EnterHalfCodes).
                foreach (var w in _f16)
                {
                    HalfCodes.Encode(w);
                }
            }

            _bias = new float[Math.Max(ff, config.VocabSize)];
            int width = Math.Max(ff, c);
            _x = Filled(o.Batch * width, i => 0.01f * (i % 7));
            _y = new float[o.Batch * Math.Max(width, config.VocabSize)];
        }

        public string Name => "sf gemv-only";

        public Measure[] Measures => [Measure.Decode1, Measure.DecodeBatch];

        public double Run(Measure kind)
        {
            int rows = kind == Measure.DecodeBatch ? _o.Batch : 1, n = _o.NewTokens;
            var sw = Stopwatch.StartNew();
            for (var step = 0; step < n; step++)
            {
                for (var m = 0; m < _shapes.Count; m++)
                {
                    var (outs, ins) = _shapes[m];
                    if (_f16 is not null)
                    {
                        Gemv.MatVec(_x.AsSpan(0, rows * ins), rows, MemoryMarshal.Cast<Half, HalfCode>(_f16[m].AsSpan()), ins, outs, _bias.AsSpan(0, outs), _y.AsSpan(0, rows * outs));
                    }
                    else
                    {
                        Gemv.MatVec(_x.AsSpan(0, rows * ins), rows, _f32![m], ins, outs, _bias.AsSpan(0, outs), _y.AsSpan(0, rows * outs));
                    }
                }
            }

            return rows * n / sw.Elapsed.TotalSeconds;
        }
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

    /// <summary>
    /// A TinyLlama-1.1B-shaped Llama with random weights (hidden 2048, 22 layers, 32 heads over 4 key/value heads,
    /// intermediate 5632, vocabulary 32000, untied head; 1.1 B parameters, 4.4 GB of F32 safetensors), made once under
    /// the temp folder. Its GGUF files carry no vocabulary: both engines take token ids.
    /// </summary>
    private static string RandomTinyLlama(TextWriter output)
    {
        var dir = Path.Combine(Path.GetTempPath(), "sharpformer-bench-tinyllama-1.1b-random");
        if (File.Exists(Path.Combine(dir, "model.safetensors")) && File.Exists(Path.Combine(dir, "config.json")))
        {
            return dir;
        }

        output.WriteLine($"creating a random TinyLlama-1.1B-shaped model in {dir} (about 4.4 GB, once) ...");
        Directory.CreateDirectory(dir);
        const string json = """
            {
              "model_type": "llama",
              "architectures": ["LlamaForCausalLM"],
              "vocab_size": 32000,
              "hidden_size": 2048,
              "intermediate_size": 5632,
              "num_hidden_layers": 22,
              "num_attention_heads": 32,
              "num_key_value_heads": 4,
              "max_position_embeddings": 2048,
              "rms_norm_eps": 1e-05,
              "rope_theta": 10000.0,
              "tie_word_embeddings": false,
              "hidden_act": "silu",
              "initializer_range": 0.02,
              "bos_token_id": 1,
              "eos_token_id": 2
            }
            """;
        var config = (IO.Config.LlamaConfig)IO.Config.ModelConfig.Parse(json, dir);
        LlamaForCausalLM.FromConfig(config, seed: 11).SaveSafetensors(Path.Combine(dir, "model.safetensors.partial"));
        File.WriteAllText(Path.Combine(dir, "config.json"), json);
        File.Move(Path.Combine(dir, "model.safetensors.partial"), Path.Combine(dir, "model.safetensors"), overwrite: true);
        return dir;
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
