using Sharpformer.Tensors.Storage;

namespace Sharpformer.Tensors.Tests;

public sealed class AlignedBufferTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(17)]
    [InlineData(3 << 20)] // 12 MiB of floats: spans whole 2 MiB pages, so the huge-page advice runs
    public unsafe void Allocate_Float_StartsOnACacheLineWithTheLength(int length)
    {
        var buffer = AlignedBuffer.Allocate<float>(length);
        Assert.Equal(length, buffer.Count);
        fixed (float* p = buffer.AsSpan())
        {
            Assert.True(length == 0 || (nint)p % AlignedBuffer.Alignment == 0, $"address {(nint)p:X} is not {AlignedBuffer.Alignment}-byte aligned");
        }

        // Writable end to end, and the array owning it is pinned (the GC never moves it).
        buffer.AsSpan().Fill(2f);
        Assert.All(buffer, v => Assert.Equal(2f, v));
    }

    [Fact]
    public unsafe void Allocate_Half_IsAlignedAndDoesNotMoveAcrossCollections()
    {
        var buffer = AlignedBuffer.Allocate<Half>(1000);
        nint before;
        fixed (Half* p = buffer.AsSpan())
        {
            before = (nint)p;
        }

        for (var i = 0; i < 3; i++)
        {
            _ = new byte[1 << 16];
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        }

        fixed (Half* p = buffer.AsSpan())
        {
            Assert.Equal(before, (nint)p);
            Assert.Equal(0, (nint)p % AlignedBuffer.Alignment);
        }
    }

    [Fact]
    public unsafe void Copy_HoldsTheSourceAligned()
    {
        var source = Enumerable.Range(0, 1000).Select(i => (float)i).ToArray();
        var copy = AlignedBuffer.Copy<float>(source);
        Assert.Equal(source, copy.ToArray());
        fixed (float* p = copy.AsSpan())
        {
            Assert.Equal(0, (nint)p % AlignedBuffer.Alignment);
        }
    }

    [Fact]
    public void Allocate_NegativeLength_Throws() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => AlignedBuffer.Allocate<float>(-1));
}
