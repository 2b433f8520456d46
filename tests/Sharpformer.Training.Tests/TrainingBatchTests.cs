using Sharpformer.Tensors;
using Sharpformer.Training.Data;

namespace Sharpformer.Training.Tests;

public class TrainingBatchTests
{
    [Fact]
    public void TokenCount_CountsMaskOnes_OrAllPositionsWithoutMask()
    {
        var ids = Tensor.FromArray(new[] { 5, 6, 7, 8, 9, 0 }, new Shape(2, 3));
        var mask = Tensor.FromArray(new[] { 1, 1, 1, 1, 1, 0 }, new Shape(2, 3));
        Assert.Equal(5, new TrainingBatch(ids, ids, mask).TokenCount);
        Assert.Equal(6, new TrainingBatch(ids, ids).TokenCount);
        Assert.Equal(2, new TrainingBatch(ids, ids).BatchSize);
        Assert.Equal(3, new TrainingBatch(ids, ids).SequenceLength);
    }

    [Fact]
    public void Constructor_WrongShapeOrDType_NamesTheTensor()
    {
        var ids = Tensor.FromArray(new[] { 5, 6, 7, 8 }, new Shape(2, 2));
        var wrong = Tensor.FromArray(new[] { 5, 6, 7 }, new Shape(1, 3));
        var ex = Assert.Throws<ArgumentException>(() => new TrainingBatch(ids, wrong));
        Assert.Contains("labels", ex.Message, StringComparison.Ordinal);
        var floats = Tensor.FromArray(new[] { 1f, 1f, 1f, 1f }, new Shape(2, 2));
        ex = Assert.Throws<ArgumentException>(() => new TrainingBatch(ids, ids, floats));
        Assert.Contains("attentionMask", ex.Message, StringComparison.Ordinal);
    }
}
