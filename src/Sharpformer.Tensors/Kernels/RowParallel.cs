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

    /// <summary>Rows per chunk for rows of <paramref name="cols"/> elements.</summary>
    public static int Grain(int cols) => Math.Max(1, ChunkElements / Math.Max(1, cols));
}
