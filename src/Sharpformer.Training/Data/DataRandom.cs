namespace Sharpformer.Training.Data;

/// <summary>
/// SplitMix64: a small, fast generator whose whole state is one 64-bit word, so a stream can be derived from
/// (seed, purpose, epoch, batch) and replayed exactly on resume. Its output is fixed by this file, not by .NET's
/// <see cref="Random"/> (whose algorithm may change between runtimes).
/// </summary>
internal struct DataRandom
{
    /// <summary>Which of the seeded streams a generator belongs to (one purpose never reuses another's numbers).</summary>
    public const ulong SplitStream = 1;

    /// <summary>The per-epoch shuffle of training blocks.</summary>
    public const ulong ShuffleStream = 2;

    /// <summary>MLM masks of training batches.</summary>
    public const ulong TrainMaskStream = 3;

    /// <summary>MLM masks of evaluation batches.</summary>
    public const ulong EvalMaskStream = 4;

    private const ulong Golden = 0x9E3779B97F4A7C15UL;

    private ulong _state;

    /// <summary>A generator starting from <paramref name="state"/>.</summary>
    public DataRandom(ulong state) => _state = state;

    /// <summary>The generator for one purpose at one (epoch, batch): each input is mixed in turn.</summary>
    public static DataRandom For(long seed, ulong stream, long epoch, long batch)
    {
        var h = Mix(unchecked((ulong)seed) + Golden);
        h = Mix(h ^ stream);
        h = Mix(h ^ unchecked((ulong)epoch));
        h = Mix(h ^ unchecked((ulong)batch));
        return new DataRandom(h);
    }

    /// <summary>The next 64 random bits.</summary>
    public ulong NextUInt64()
    {
        _state = unchecked(_state + Golden);
        return Mix(_state);
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform in [0, <paramref name="n"/>) without modulo bias (Lemire's multiply-and-reject).</summary>
    public int NextInt(int n)
    {
        System.Diagnostics.Debug.Assert(n > 0);
        var bound = (ulong)n;
        var high = Math.BigMul(NextUInt64(), bound, out var low);
        if (low < bound)
        {
            var threshold = unchecked(0UL - bound) % bound;
            while (low < threshold)
            {
                high = Math.BigMul(NextUInt64(), bound, out low);
            }
        }

        return (int)high;
    }

    /// <summary>Shuffles <paramref name="items"/> in place (Fisher–Yates, from the last element down).</summary>
    public void Shuffle<T>(Span<T> items)
    {
        for (var i = items.Length - 1; i > 0; i--)
        {
            var j = NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    private static ulong Mix(ulong z) => SeedMix.Mix(z);
}
