namespace Sharpformer.Training;

/// <summary>
/// Derives independent, reproducible seeds from a run seed and counters (step, layer, epoch, batch) with SplitMix64's
/// finalizer. Unlike <see cref="HashCode"/>, which is randomized per process, the result is the same in every process,
/// which is what lets a resumed run draw the masks of the run it continues.
/// </summary>
public static class SeedMix
{
    /// <summary>A non-negative 31-bit seed from <paramref name="seed"/> and two counters.</summary>
    /// <param name="seed">The run seed.</param>
    /// <param name="a">First counter (e.g. the step or epoch).</param>
    /// <param name="b">Second counter (e.g. the layer or batch index).</param>
    /// <returns>The derived seed.</returns>
    public static int Derive(int seed, long a, long b)
    {
        ulong x = Mix((ulong)(uint)seed + 0x9E3779B97F4A7C15UL);
        x = Mix(x ^ (ulong)a);
        x = Mix(x ^ (ulong)b);
        return (int)(x >> 33);
    }

    /// <summary>SplitMix64's finalizer: a bijective 64-bit mix (also the output function of the data generator).</summary>
    internal static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
