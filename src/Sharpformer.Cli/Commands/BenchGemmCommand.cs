using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Text.Json;
using Sharpformer.Tensors.Kernels;
using Sharpformer.Tensors.Threading;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// <c>sharpformer bench gemm</c>: this machine's FMA peak, measured in the same run, then SGEMM GFLOP/s and the
/// fraction of that peak on transformer shapes, with 1 thread and with all cores.
/// </summary>
internal static class BenchGemmCommand
{
    /// <summary>Shapes read M×K×N. The transformer shapes use the Linear layout (B stored [N, K], C = A·Bᵀ).</summary>
    private static readonly GemmShape[] DefaultShapes =
    [
        new(128, 384, 1536, Linear: true),
        new(128, 1536, 384, Linear: true),
        new(8, 384, 1536, Linear: true),
        new(1024, 1024, 1024, Linear: false),
    ];

    public static Command Create()
    {
        var threads = new Option<int>("--threads")
        {
            Description = "Threads for the all-cores columns (default: every core).",
            DefaultValueFactory = _ => Environment.ProcessorCount,
        };
        var repeat = new Option<int>("--repeat")
        {
            Description = "Timed samples per measurement; each sample runs ≥ 3 ms after a warm-up (short samples let best-of dodge a noisy host). Best and median are reported.",
            DefaultValueFactory = _ => 31,
        };
        var json = new Option<bool>("--json") { Description = "Print the results as JSON instead of a table." };
        var shapes = new Option<string?>("--shapes")
        {
            Description = "Comma-separated M×K×N shapes, e.g. 16x32x48 (suffix t for the Linear layout: 16x32x48t).",
            Hidden = true,
        };
        var quick = new Option<bool>("--quick") { Description = "Tiny samples (tests): checks the output, not the speed.", Hidden = true };

        var command = new Command("gemm", "SGEMM GFLOP/s vs this machine's Vector512 FMA peak, 1 thread and all cores.");
        command.Options.Add(threads);
        command.Options.Add(repeat);
        command.Options.Add(json);
        command.Options.Add(shapes);
        command.Options.Add(quick);
        command.SetAction(parse =>
        {
            int t = parse.GetValue(threads), r = parse.GetValue(repeat);
            if (t < 1 || r < 1)
            {
                Console.Error.WriteLine($"bench gemm: --threads ({t}) and --repeat ({r}) must be at least 1.");
                return 2;
            }

            GemmShape[] list;
            try
            {
                list = parse.GetValue(shapes) is { } text ? ParseShapes(text) : DefaultShapes;
            }
            catch (FormatException e)
            {
                Console.Error.WriteLine($"bench gemm: {e.Message}");
                return 2;
            }

            Run(list, t, r, parse.GetValue(quick), parse.GetValue(json), Console.Out);
            return 0;
        });
        return command;
    }

    /// <summary>One product to measure; <see cref="Linear"/> means B is stored [N, K] (C = A·Bᵀ).</summary>
    private readonly record struct GemmShape(int M, int K, int N, bool Linear)
    {
        public double Flops => 2.0 * M * K * N;

        public override string ToString() => $"{M}×{K}×{N}";
    }

    private sealed record Row(string Shape, string Layout, double Gflops1, double Median1, double GflopsAll, double MedianAll);

    private static GemmShape[] ParseShapes(string text)
    {
        var list = new List<GemmShape>();
        foreach (string part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            bool linear = part.EndsWith('t');
            string[] dims = (linear ? part[..^1] : part).Split('x', '×');
            if (dims.Length != 3
                || !int.TryParse(dims[0], CultureInfo.InvariantCulture, out int m) || m < 1
                || !int.TryParse(dims[1], CultureInfo.InvariantCulture, out int k) || k < 1
                || !int.TryParse(dims[2], CultureInfo.InvariantCulture, out int n) || n < 1)
            {
                throw new FormatException($"'{part}' is not a shape: write M×K×N as positive integers, e.g. 128x384x1536 or 128x384x1536t.");
            }

            list.Add(new GemmShape(m, k, n, linear));
        }

        return [.. list];
    }

    private static void Run(GemmShape[] shapes, int threads, int repeat, bool quick, bool json, TextWriter output)
    {
        int savedDegree = ParallelFor.MaxDegreeOfParallelism;
        double sampleSeconds = quick ? 0.002 : 0.003;
        try
        {
            if (!json)
            {
                output.WriteLine($"Measuring: FMA peak then SGEMM, {repeat} samples of ≥ {sampleSeconds * 1000:F0} ms each, 1 thread and {threads} threads...");
            }

            string peakKind = Vector512.IsHardwareAccelerated ? "Vector512" : Vector256.IsHardwareAccelerated ? "Vector256" : "Vector128";
            ParallelFor.MaxDegreeOfParallelism = 1;
            double peak1 = MeasurePeak(1, repeat, quick);
            ParallelFor.MaxDegreeOfParallelism = threads;
            double peakAll = MeasurePeak(threads, repeat, quick);

            var rows = new List<Row>();
            var random = new Random(42);
            foreach (GemmShape shape in shapes)
            {
                float[] a = RandomArray(random, shape.M * shape.K);
                float[] b = RandomArray(random, shape.K * shape.N);
                float[] c = new float[shape.M * shape.N];

                // The plain API: B is packed inside every call.
                void Plain()
                {
                    if (shape.Linear) Gemm.Sgemm(false, true, shape.M, shape.N, shape.K, 1f, a, shape.K, b, shape.K, 0f, c, shape.N);
                    else Gemm.Sgemm(false, false, shape.M, shape.N, shape.K, 1f, a, shape.K, b, shape.N, 0f, c, shape.N);
                }

                rows.Add(MeasureShape(shape, shape.Linear ? "A·Bᵀ" : "A·B", Plain, threads, repeat, sampleSeconds));
                if (shape.Linear)
                {
                    // A Linear layer packs its weight once (Gemm.PackB) and reuses it for every input.
                    GemmPackedB packed = Gemm.PackB(true, shape.K, shape.N, b, shape.K);
                    rows.Add(MeasureShape(shape, "A·Bᵀ, B packed once", () => Gemm.Sgemm(false, shape.M, 1f, a, shape.K, packed, 0f, c, shape.N), threads, repeat, sampleSeconds));
                }
            }

            if (json) WriteJson(output, peakKind, peak1, peakAll, threads, repeat, rows);
            else WriteTable(output, peakKind, peak1, peakAll, threads, rows);
        }
        finally
        {
            ParallelFor.MaxDegreeOfParallelism = savedDegree;
        }
    }

    private static Row MeasureShape(GemmShape shape, string layout, Action gemm, int threads, int repeat, double sampleSeconds)
    {
        ParallelFor.MaxDegreeOfParallelism = 1;
        (double best1, double median1) = Measure(gemm, shape.Flops, repeat, sampleSeconds);
        ParallelFor.MaxDegreeOfParallelism = threads;
        (double bestAll, double medianAll) = Measure(gemm, shape.Flops, repeat, sampleSeconds);
        return new Row(shape.ToString(), layout, best1, median1, bestAll, medianAll);
    }

    /// <summary>Best and median GFLOP/s over <paramref name="repeat"/> samples, each long enough to swamp the timer.</summary>
    private static (double Best, double Median) Measure(Action work, double flopsPerCall, int repeat, double sampleSeconds)
    {
        // Warm-up: JIT tiers, page faults in the pack buffers, workers awake; then size a sample.
        work();
        long start = Stopwatch.GetTimestamp();
        int calls = 0;
        while (Stopwatch.GetElapsedTime(start).TotalSeconds < sampleSeconds || calls < 2)
        {
            work();
            calls++;
        }

        int perSample = Math.Max(1, (int)(calls * sampleSeconds / Stopwatch.GetElapsedTime(start).TotalSeconds));
        var samples = new double[repeat];
        for (int s = 0; s < repeat; s++)
        {
            long t0 = Stopwatch.GetTimestamp();
            for (int i = 0; i < perSample; i++) work();
            samples[s] = flopsPerCall * perSample / Stopwatch.GetElapsedTime(t0).TotalSeconds / 1e9;
        }

        Array.Sort(samples);
        return (samples[^1], samples[repeat / 2]);
    }

    /// <summary>
    /// FMA throughput with 16 independent accumulators per thread (FMA latency 4 cycles × 2 ports needs ≥ 8), run on
    /// <paramref name="threads"/> threads at once; GFLOP/s counts 2 FLOPs per lane per FMA. Returns the best sample.
    /// The work is cut into 16 chunks per thread and scheduled by <see cref="ParallelFor"/>, like the GEMM tiles, so a
    /// thread that starts late still takes its share: the peak and the GEMM see the same scheduling.
    /// <paramref name="sampleSeconds"/> sets how long each sample runs (default 3 ms, 2 ms when quick): short samples
    /// give the burst peak, samples as long as a training step the rate the cores sustain over one.
    /// </summary>
    internal static double MeasurePeak(int threads, int repeat, bool quick, double? sampleSeconds = null)
    {
        const int ChunksPerThread = 16;
        long iterations = quick ? 1_000 : 40_000; // per chunk: 40k × 16 FMAs × 16 lanes × 2 ≈ 20 MFLOP, ~80 µs
        int chunks = ChunksPerThread * threads;
        double flops = (double)iterations * 16 * Vector512<float>.Count * 2 * chunks;
        (double best, _) = Measure(
            () => ParallelFor.For(chunks, 1, (start, end) =>
            {
                for (int i = start; i < end; i++) Volatile.Write(ref _sink, PeakLoop(iterations, 1.0000001f, 1e-7f));
            }),
            flops,
            repeat,
            sampleSeconds ?? (quick ? 0.002 : 0.003));
        return best;
    }

    private static float _sink;

    // Optimized from the first call: a tier-0 copy (locals spilled to the stack) would understate the peak.
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float PeakLoop(long iterations, float x, float y)
    {
        var vx = Vector512.Create(x);
        var vy = Vector512.Create(y);
        Vector512<float> a0 = vy, a1 = vy, a2 = vy, a3 = vy, a4 = vy, a5 = vy, a6 = vy, a7 = vy;
        Vector512<float> a8 = vy, a9 = vy, a10 = vy, a11 = vy, a12 = vy, a13 = vy, a14 = vy, a15 = vy;
        for (long i = 0; i < iterations; i++)
        {
            a0 = Vector512.FusedMultiplyAdd(a0, vx, vy);
            a1 = Vector512.FusedMultiplyAdd(a1, vx, vy);
            a2 = Vector512.FusedMultiplyAdd(a2, vx, vy);
            a3 = Vector512.FusedMultiplyAdd(a3, vx, vy);
            a4 = Vector512.FusedMultiplyAdd(a4, vx, vy);
            a5 = Vector512.FusedMultiplyAdd(a5, vx, vy);
            a6 = Vector512.FusedMultiplyAdd(a6, vx, vy);
            a7 = Vector512.FusedMultiplyAdd(a7, vx, vy);
            a8 = Vector512.FusedMultiplyAdd(a8, vx, vy);
            a9 = Vector512.FusedMultiplyAdd(a9, vx, vy);
            a10 = Vector512.FusedMultiplyAdd(a10, vx, vy);
            a11 = Vector512.FusedMultiplyAdd(a11, vx, vy);
            a12 = Vector512.FusedMultiplyAdd(a12, vx, vy);
            a13 = Vector512.FusedMultiplyAdd(a13, vx, vy);
            a14 = Vector512.FusedMultiplyAdd(a14, vx, vy);
            a15 = Vector512.FusedMultiplyAdd(a15, vx, vy);
        }

        Vector512<float> sum = (a0 + a1) + (a2 + a3) + (a4 + a5) + (a6 + a7) + (a8 + a9) + (a10 + a11) + (a12 + a13) + (a14 + a15);
        return Vector512.Sum(sum);
    }

    private static float[] RandomArray(Random random, int length)
    {
        var data = new float[length];
        for (int i = 0; i < data.Length; i++) data[i] = (float)((random.NextDouble() * 2) - 1);
        return data;
    }

    private static void WriteTable(TextWriter output, string peakKind, double peak1, double peakAll, int threads, List<Row> rows)
    {
        var inv = CultureInfo.InvariantCulture;
        output.WriteLine();
        output.WriteLine(string.Create(inv, $"FMA peak ({peakKind}, 16 accumulators): 1 thread {peak1:F1} GFLOP/s, {threads} threads {peakAll:F1} GFLOP/s"));
        output.WriteLine(string.Create(inv, $"GEMM kernel: {Gemm.KernelDescription}. Shapes are M×K×N; A·Bᵀ is the Linear layout (B stored [N, K], C = A·Bᵀ)."));
        output.WriteLine("GFLOP/s best (median) over the samples; fraction = best / peak of the same thread count.");
        output.WriteLine();
        string header = string.Format(inv, "{0,-16} {1,-22} {2,20} {3,9} {4,20} {5,9}", "shape", "layout", "1 thread GFLOP/s", "of peak", $"{threads} threads GFLOP/s", "of peak");
        output.WriteLine(header);
        output.WriteLine(new string('-', header.Length));
        foreach (Row row in rows)
        {
            output.WriteLine(string.Format(
                inv,
                "{0,-16} {1,-22} {2,20} {3,9:P1} {4,20} {5,9:P1}",
                row.Shape,
                row.Layout,
                $"{row.Gflops1:F1} ({row.Median1:F1})",
                row.Gflops1 / peak1,
                $"{row.GflopsAll:F1} ({row.MedianAll:F1})",
                row.GflopsAll / peakAll));
        }
    }

    private static void WriteJson(TextWriter output, string peakKind, double peak1, double peakAll, int threads, int repeat, List<Row> rows)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            writer.WriteStartObject();
            writer.WriteString("kernel", Gemm.KernelDescription);
            writer.WriteNumber("threads", threads);
            writer.WriteNumber("repeat", repeat);
            writer.WriteStartObject("peak");
            writer.WriteString("vector", peakKind);
            writer.WriteNumber("gflops1", Math.Round(peak1, 2));
            writer.WriteNumber("gflopsAll", Math.Round(peakAll, 2));
            writer.WriteEndObject();
            writer.WriteStartArray("shapes");
            foreach (Row row in rows)
            {
                writer.WriteStartObject();
                writer.WriteString("shape", row.Shape);
                writer.WriteString("layout", row.Layout);
                writer.WriteNumber("gflops1", Math.Round(row.Gflops1, 2));
                writer.WriteNumber("median1", Math.Round(row.Median1, 2));
                writer.WriteNumber("fraction1", Math.Round(row.Gflops1 / peak1, 4));
                writer.WriteNumber("gflopsAll", Math.Round(row.GflopsAll, 2));
                writer.WriteNumber("medianAll", Math.Round(row.MedianAll, 2));
                writer.WriteNumber("fractionAll", Math.Round(row.GflopsAll / peakAll, 4));
                writer.WriteEndObject();
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
        }

        output.WriteLine(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
    }
}
