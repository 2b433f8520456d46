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

    [Theory]
    [InlineData(17, 64)] // under 2 MiB: cut from a shared slab, on a cache line
    [InlineData((2 << 20) - 1, 64)]
    [InlineData(2 << 20, 2 << 20)] // from 2 MiB: on a huge-page boundary
    [InlineData((5 << 20) + 3, 2 << 20)]
    public unsafe void AllocatePages_StartsOnALineOrAPage(int length, int alignment)
    {
        var buffer = AlignedBuffer.AllocatePages(length);
        Assert.Equal(length, buffer.Count);
        fixed (byte* p = buffer.AsSpan())
        {
            Assert.True((nint)p % alignment == 0, $"address {(nint)p:X} of a {length}-byte buffer is not {alignment}-byte aligned");
        }

        buffer.AsSpan().Fill(7);
        Assert.Equal(7, buffer[^1]);
    }

    [Fact]
    public void AllocatePages_SmallBuffers_DoNotOverlap()
    {
        // Buffers cut from the shared slab: each keeps its own bytes.
        var buffers = Enumerable.Range(1, 40).Select(i => AlignedBuffer.AllocatePages(i * 10_000)).ToArray();
        for (var i = 0; i < buffers.Length; i++)
        {
            buffers[i].AsSpan().Fill((byte)i);
        }

        for (var i = 0; i < buffers.Length; i++)
        {
            Assert.All(buffers[i], b => Assert.Equal((byte)i, b));
        }
    }

    [Fact]
    public void Allocate_NegativeLength_Throws() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => AlignedBuffer.Allocate<float>(-1));
}
