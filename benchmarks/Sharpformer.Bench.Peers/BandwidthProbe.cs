using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Sharpformer.Tensors.Storage;
using Sharpformer.Tensors.Threading;

namespace Sharpformer.Bench.Peers;

/// <summary>
/// The machine's streaming read bandwidth, read the fastest way found here: the threads of <see cref="ParallelFor"/>
/// claim 1 MiB chunks of a 1 GiB buffer (64-byte aligned) and sum each with the widest vectors, four accumulators, and
/// a software prefetch 4 KiB ahead for every line — the access pattern of the batch-1 GEMV, which without the
/// prefetches and with smaller chunks read 30–40 % slower. The buffer comes from <see cref="AlignedBuffer.AllocatePages"/>,
/// on transparent huge pages like the quantized weights: on ordinary 4 KiB pages the probe read 2–33 % slower on the
/// 2-core Zen 5 host (six alternated rounds, 2026-12-06), so a bound measured that way sat below what our weights stream
/// at. A decode step cannot stream its weights faster than this.
/// </summary>
internal sealed unsafe class BandwidthProbe
{
    /// <summary>How the probe reads, for the report.</summary>
    public const string Description = "summing a 1 GiB buffer on transparent huge pages in 1 MiB chunks claimed by every thread (Vector512/256 loads, 4 KiB software prefetch), best of 3 passes";

    private const long Bytes = 1L << 30;
    private const int ChunkFloats = (1 << 20) / sizeof(float);
    private const int PrefetchBytes = 4096;

    private readonly byte[] _buffer; // pinned: _data points into it for the probe's life
    private readonly float* _data;
    private readonly float[] _sums;
    private readonly int _chunks;

    public BandwidthProbe()
    {
        var pages = AlignedBuffer.AllocatePages((int)Bytes);
        _buffer = pages.Array!;
        _data = (float*)Unsafe.AsPointer(ref pages.AsSpan()[0]);
        new Span<float>(_data, (int)(Bytes / sizeof(float))).Fill(1f);
        _chunks = (int)(Bytes / sizeof(float) / ChunkFloats);
        _sums = new float[_chunks];
    }

    /// <summary>Bytes per second: the best of 3 passes over the buffer.</summary>
    /// <exception cref="InvalidOperationException">The sums came out wrong (a read was skipped or raced).</exception>
    public double Measure()
    {
        var best = double.MaxValue;
        for (var pass = 0; pass < 3; pass++)
        {
            var sw = Stopwatch.StartNew();
            ParallelFor.For(_chunks, 1, (start, end) =>
            {
                for (var c = start; c < end; c++)
                {
                    _sums[c] = Sum(_data + ((long)c * ChunkFloats), ChunkFloats);
                }
            });
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
            if (_sums.Any(s => s != ChunkFloats))
            {
                throw new InvalidOperationException("bandwidth probe summed wrong: a read was skipped or raced.");
            }
        }

        return Bytes / best;
    }


    /// <summary>Σ p[0..n): n a multiple of 64.</summary>
    private static float Sum(float* p, int n)
    {
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (var i = 0; i < n; i += 64)
            {
                var line = (byte*)(p + i) + PrefetchBytes;
                if (Sse.IsSupported)
                {
                    Sse.Prefetch0(line);
                    Sse.Prefetch0(line + 64);
                    Sse.Prefetch0(line + 128);
                    Sse.Prefetch0(line + 192);
                }

                a0 += Vector512.Load(p + i);
                a1 += Vector512.Load(p + i + 16);
                a2 += Vector512.Load(p + i + 32);
                a3 += Vector512.Load(p + i + 48);
            }

            return Vector512.Sum((a0 + a1) + (a2 + a3));
        }

        Vector256<float> b0 = default, b1 = default, b2 = default, b3 = default;
        for (var i = 0; i < n; i += 32)
        {
            if (Sse.IsSupported)
            {
                var line = (byte*)(p + i) + PrefetchBytes;
                Sse.Prefetch0(line);
                Sse.Prefetch0(line + 64);
            }

            b0 += Vector256.Load(p + i);
            b1 += Vector256.Load(p + i + 8);
            b2 += Vector256.Load(p + i + 16);
            b3 += Vector256.Load(p + i + 24);
        }

        return Vector256.Sum((b0 + b1) + (b2 + b3));
    }
}
