using Sharpformer.Tensors.Kernels;
using Sharpformer.Tensors.Storage;

namespace Sharpformer.Tensors.Tests;

/// <summary>
/// A streamed C (non-temporal stores of whole tiles, <see cref="GemmDriver.CanStreamC"/>): the same bits as ordinary
/// stores, nothing written outside C, and streaming taken only where it is allowed.
/// </summary>
public partial class GemmTests
{
    [Theory]
    [MemberData(nameof(Tiers))]
    public unsafe void SgemmCore_StreamedC_EqualsOrdinaryStoresBitForBit(string tier)
    {
        GemmIsa isa = Enum.Parse<GemmIsa>(tier);
        if (isa == GemmIsa.Scalar) return; // the scalar tier is Gemm.Reference itself, which never streams
        bool vectorTier = isa >= GemmIsa.Vector256;

        // All past the streaming size (2^18 floats): whole tiles (576 = 48 · 12 = 96 · 6 rows, 512 = 16 · 32 columns);
        // ragged rows and columns (605 rows end in a 5-row tile; 528 and 520 columns end in a 16- or 8-column panel),
        // with padded rows (ldc > n, whose padding must stay untouched); two k blocks (k 300, never streamed).
        foreach ((int m, int n, int k, int ldc, bool streams) in new[]
        {
            (576, 512, 256, 512, true), (605, 528, 200, 528, true), (520, 520, 100, 528, true), (513, 600, 64, 640, true),
            (600, 448, 300, 448, false),
        })
        {
            for (int t = 0; t < 4; t++)
            {
                bool transA = (t & 1) != 0, transB = (t & 2) != 0;
                int lda = transA ? m : k, ldb = transB ? k : n;
                float[] a = Random(m + t, m * k), b = Random(n + t, n * k), bias = Random(3, n);
                foreach (bool withBias in new[] { false, true })
                {
                    float[] expected = new float[(m * ldc) + 16];
                    expected.AsSpan().Fill(float.NaN);
                    Gemm.SgemmCore(isa, 1, transA, transB, m, n, k, 0.75f, a, lda, b, ldb, 0f, expected.AsSpan(0, m * ldc), ldc, withBias ? bias : default);
                    foreach (int threads in new[] { 1, 2, 3 })
                    {
                        // C on a cache line, then C one float past it (never streamed).
                        ArraySegment<float> buffer = AlignedBuffer.Allocate<float>((m * ldc) + 16);
                        foreach (int offset in new[] { 0, 1 })
                        {
                            Span<float> whole = buffer.AsSpan();
                            whole.Fill(float.NaN);
                            Span<float> c = whole.Slice(offset, m * ldc);
                            fixed (float* pc = c)
                            {
                                bool allowed = GemmDriver.CanStreamC(isa, m, n, k, 0f, pc, ldc);
                                Assert.Equal(streams && vectorTier && offset == 0, allowed);
                            }

                            Gemm.SgemmCore(isa, threads, transA, transB, m, n, k, 0.75f, a, lda, b, ldb, 0f, c, ldc, withBias ? bias : default, streamC: true);
                            string what = $"{isa} t={t} {m}×{k}×{n} ldc {ldc} bias {withBias} {threads} threads offset {offset}";
                            Assert.True(c.SequenceEqual(expected.AsSpan(0, m * ldc)), $"{what}: streamed C differs from ordinary stores (padding must stay NaN)");
                            Assert.True(float.IsNaN(whole[offset + (m * ldc)]), $"{what}: written past C");
                            if (offset == 1) Assert.True(float.IsNaN(whole[0]), $"{what}: written before C");
                        }
                    }
                }
            }
        }
    }

    [Fact]
    public unsafe void CanStreamC_OnlyBetaZeroOneKBlockAlignedLargeC()
    {
        ArraySegment<float> buffer = AlignedBuffer.Allocate<float>((600 * 512) + 16);
        fixed (float* p = buffer.AsSpan())
        {
            GemmIsa isa = GemmDriver.IsSupported(GemmIsa.Vector512) ? GemmIsa.Vector512 : GemmIsa.Vector256;
            if (!GemmDriver.IsSupported(isa)) return;
            Assert.True(GemmDriver.CanStreamC(isa, 600, 512, GemmDriver.KcMax, 0f, p, 512));
            Assert.False(GemmDriver.CanStreamC(isa, 600, 512, GemmDriver.KcMax + 1, 0f, p, 512)); // two k blocks: C read back
            Assert.False(GemmDriver.CanStreamC(isa, 600, 512, 256, 1f, p, 512)); // beta reads C
            Assert.False(GemmDriver.CanStreamC(isa, 600, 512, 256, 0f, p + 4, 512)); // C off a cache line
            Assert.False(GemmDriver.CanStreamC(isa, 600, 512, 256, 0f, p, 520)); // rows off cache lines
            Assert.False(GemmDriver.CanStreamC(isa, 100, 512, 256, 0f, p, 512)); // small C
            Assert.False(GemmDriver.CanStreamC(GemmIsa.Vector128, 600, 512, 256, 0f, p, 512)); // rows narrower than a line
        }
    }
}
