using Sharpformer.Tensors.Threading;

namespace Sharpformer.Tensors.Kernels;

/// <summary>
/// When a row kernel is worth splitting across cores, and into how many rows per chunk. A thread-pool hand-off costs a
/// few microseconds, about what 32K elements of a cheap row kernel take on one core, so smaller calls stay on the
/// caller's thread; chunks of ~16K elements leave enough of them for the dynamic scheduler to balance two noisy cores.
/// </summary>
internal static class RowParallel
{
    /// <summary>Elements below which a kernel runs inline.</summary>
    public const long MinElements = 32 * 1024;

    /// <summary>Target elements per chunk.</summary>
    public const int ChunkElements = 16 * 1024;

    /// <summary>True when rows · cols is large enough to split and more than one worker is allowed.</summary>
    public static bool Worth(int rows, int cols) =>
        rows > 1 && (long)rows * cols >= MinElements && ParallelFor.MaxDegreeOfParallelism > 1;

    /// <summary>
    /// Runs a row kernel's chunks across cores with <see cref="ParallelFor.ForShares"/>: the caller takes the first
    /// contiguous share of the rows and the worker the next, so consecutive row ops (the residual add with LayerNorm,
    /// the LayerNorm backward and the gradient sum after it) find their rows where the same core wrote them, instead of
    /// half of them in the other core's cache (which reads ~2× slower on this VM). The chunks themselves are the same
    /// as before, so results that depend on the chunking (per-chunk partial sums) are unchanged. GPT-2 training step, 2
    /// threads, AMD EPYC Zen 5 class: with the old ops, the add, LayerNorm and GELU rows summed 9.1 ms/step (median of
    /// 3 runs) against 10.2 with dynamic claiming.
    /// </summary>
    /// <param name="count">Items (rows or chunks).</param>
    /// <param name="grain">Items per chunk.</param>
    /// <param name="body">Runs items [start, end).</param>
    public static void For(int count, int grain, Action<int, int> body) => ParallelFor.ForShares(count, grain, body);

    /// <summary>Rows per chunk for rows of <paramref name="cols"/> elements.</summary>
    public static int Grain(int cols) => Math.Max(1, ChunkElements / Math.Max(1, cols));
}
