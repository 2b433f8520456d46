using System.Diagnostics;
using Sharpformer.Tensors.Kernels;
using Sharpformer.Tensors.Threading;

namespace Sharpformer.Benchmarks;

/// <summary>
/// Attention forward and backward at training shapes, timed with an interleaved stopwatch (A, B, A, B, ... so a noisy
/// shared machine hits every variant alike), medians reported. A is the probabilities path (the forward keeps
/// P [B, H, Tq, Tk], the backward reads it); B is the log-sum-exp path (the forward keeps [B, H, Tq], the backward
/// recomputes P a block of keys at a time). Both read a fused [B, T, 3·H·D] QKV projection, as training does. Run:
/// <c>dotnet run -c Release --project benchmarks/Sharpformer.Benchmarks -- attention-training [rounds]</c>.
/// </summary>
/// <remarks>
/// Measured 2026-12-06 on the shared AMD EPYC dev machine (2 threads, Vector512 GEMM), medians of 21 rounds, builds
/// before (ccf6747: row-by-row forward keeping P, backward from P) and after run alternately. GPT-2 124M: forward
/// 471–477 → 273–277 µs, backward 863–885 → 636–665 µs, forward + backward ≈ 1350 → ≈ 925 µs. BERT-base: forward
/// 4.7–4.9 → 2.3–2.7 ms, backward 11.8–11.9 → 5.1–5.6 ms, forward + backward ≈ 16.5 → 7.4–8.3 ms. The backward is
/// 2.0–2.4× the (now GEMM-tiled) forward: it runs five tile products to the forward's two.
/// </remarks>
public static class AttentionTrainingHarness
{
    /// <summary>Times every variant on the GPT-2 124M and BERT-base shapes and prints medians and ratios.</summary>
    public static void Run(int rounds)
    {
        Console.WriteLine($"CPU: {CpuName()}; threads: {ParallelFor.MaxDegreeOfParallelism}; GEMM kernel: {Gemm.KernelDescription}");
        Measure("GPT-2 124M (B=4, H=12, T=64, D=64, causal)", 4, 12, 64, 64, causal: true, padded: false, rounds);
        Measure("BERT-base (B=8, H=12, T=128, D=64, padding mask)", 8, 12, 128, 64, causal: false, padded: true, rounds);
    }

    private static void Measure(string name, int b, int h, int t, int d, bool causal, bool padded, int rounds)
    {
        int w = h * d;
        var rng = new Random(1);
        var qkv = new float[b * t * 3 * w];
        for (int i = 0; i < qkv.Length; i++) qkv[i] = (float)(rng.NextDouble() - 0.5);
        var dOut = new float[b * t * w];
        for (int i = 0; i < dOut.Length; i++) dOut[i] = (float)(rng.NextDouble() - 0.5);
        var mask = new float[padded ? b * t : 0];
        for (int s = 0; s < (padded ? b : 0); s++)
        {
            // Sequences of varied real length, the rest padding (as in a padded batch).
            int real = t - (s * t / (2 * b));
            for (int j = 0; j < t; j++) mask[(s * t) + j] = j < real ? 1f : 0f;
        }

        var shape = new AttentionShape(b, h, t, t, d) { QueryRowStride = 3 * w, KeyRowStride = 3 * w, ValueRowStride = 3 * w };
        var output = new float[b * t * w];
        var probabilities = new float[b * h * t * t];
        var lse = new float[b * h * t];
        var dqkv = new float[qkv.Length];
        var q = qkv.AsMemory(0);
        var k = qkv.AsMemory(w);
        var v = qkv.AsMemory(2 * w);

        var variants = new (string Name, Action Body)[]
        {
            ("forward, inference (no saved state)", () => Attention.Forward(shape, q.Span, k.Span, v.Span, output, causal, mask)),
            ("A forward, keeps P", () => Attention.Forward(shape, q.Span, k.Span, v.Span, output, causal, mask, null, probabilities)),
            ("A backward, from P", () => Attention.Backward(shape, q.Span, k.Span, v.Span, probabilities, dOut, dqkv, dqkv.AsSpan(w), dqkv.AsSpan(2 * w))),
            ("B forward, keeps lse", () => Attention.Forward(shape, q.Span, k.Span, v.Span, output, causal, mask, null, default, lse)),
            ("B backward, blocked", () => Attention.Backward(shape, q.Span, k.Span, v.Span, output, lse, dOut, dqkv, dqkv.AsSpan(w), dqkv.AsSpan(2 * w), causal, mask)),
        };

        // Warm up (tiered JIT) and choose the repetitions per sample so each sample lasts about 20 ms.
        var reps = new int[variants.Length];
        for (int i = 0; i < variants.Length; i++)
        {
            for (int r = 0; r < 20; r++) variants[i].Body();
            var sw = Stopwatch.StartNew();
            int n = 0;
            while (sw.Elapsed.TotalMilliseconds < 20) { variants[i].Body(); n++; }
            reps[i] = Math.Max(1, n);
        }

        var samples = new List<double>[variants.Length];
        for (int i = 0; i < variants.Length; i++) samples[i] = [];
        for (int round = 0; round < rounds; round++)
        {
            for (int i = 0; i < variants.Length; i++)
            {
                var sw = Stopwatch.StartNew();
                for (int r = 0; r < reps[i]; r++) variants[i].Body();
                samples[i].Add(sw.Elapsed.TotalMicroseconds / reps[i]);
            }
        }

        Console.WriteLine();
        Console.WriteLine($"{name}: median of {rounds} interleaved samples");
        var medians = samples.Select(Median).ToArray();
        for (int i = 0; i < variants.Length; i++)
        {
            Console.WriteLine($"  {variants[i].Name,-38} {medians[i],10:F1} µs   (min {samples[i].Min(),8:F1}, max {samples[i].Max(),8:F1})");
        }

        Console.WriteLine($"  A: backward / forward = {medians[2] / medians[1]:F2}, forward + backward {medians[1] + medians[2]:F0} µs");
        Console.WriteLine($"  B: backward / forward = {medians[4] / medians[3]:F2}, forward + backward {medians[3] + medians[4]:F0} µs");
        Console.WriteLine($"  B backward / A backward = {medians[4] / medians[2]:F2}; B backward / inference forward = {medians[4] / medians[0]:F2}");
    }

    private static double Median(List<double> x)
    {
        var s = x.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[(s.Length / 2) - 1] + s[s.Length / 2]) / 2;
    }

    private static string CpuName()
    {
        const string CpuInfo = "/proc/cpuinfo";
        if (!File.Exists(CpuInfo)) return "unknown";
        var line = File.ReadLines(CpuInfo).FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
        return line is null ? "unknown" : line[(line.IndexOf(':') + 1)..].Trim();
    }
}
