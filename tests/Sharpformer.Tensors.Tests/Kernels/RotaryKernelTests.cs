using Sharpformer.Tensors.Kernels;

namespace Sharpformer.Tensors.Tests.Kernels;

public class RotaryKernelTests
{
    [Theory]
    [InlineData(1, 36, 64, 0, false)]    // one decode row: the ~1B Llama's q (32 heads) and k (4) in one call
    [InlineData(3, 4, 64, 16, true)]     // a wider row stride, the inverse (backward)
    [InlineData(5, 2, 128, 0, false)]    // D = 128: two 256-bit steps per half
    [InlineData(2, 3, 80, 8, true)]      // D/2 = 40: 256-bit, then 128-bit, then no scalar rest
    [InlineData(2, 3, 6, 0, false)]      // D/2 = 3: scalar only
    [InlineData(4, 2, 22, 2, true)]      // D/2 = 11: a 128-bit step and a scalar rest
    [InlineData(1, 1, 2, 0, false)]      // D = 2
    public void Apply_MatchesScalarReferenceBitForBit(int rows, int heads, int d, int extra, bool inverse)
    {
        int stride = (heads * d) + extra, positions = 9;
        var x = KernelTestData.Uniform(rows * stride, -3f, 3f, 7 + d);
        var cos = KernelTestData.Uniform(positions * d, -1f, 1f, 8 + d);
        var sin = KernelTestData.Uniform(positions * d, -1f, 1f, 9 + d);
        var pos = Enumerable.Range(0, rows).Select(r => (r * 5) % positions).ToArray();
        var expected = x.ToArray();
        Rotary.ApplyReference(expected, rows, stride, heads, d, pos, cos, sin, inverse);
        var actual = x.ToArray();
        Rotary.Apply(actual, rows, stride, heads, d, pos, cos, sin, inverse);
        for (int i = 0; i < x.Length; i++)
        {
            Assert.True(
                BitConverter.SingleToInt32Bits(expected[i]) == BitConverter.SingleToInt32Bits(actual[i]),
                $"value {i}: expected {expected[i]:R}, got {actual[i]:R}");
        }
    }
}
