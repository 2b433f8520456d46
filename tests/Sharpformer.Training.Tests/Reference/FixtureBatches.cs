using Sharpformer.Training.Data;

namespace Sharpformer.Training.Tests.Reference;

/// <summary>A fixture's batches in its order (step k uses batch k mod count), as a resumable source for the trainer.</summary>
internal sealed class FixtureBatches(ReferenceFixture fixture) : IBatchSource
{
    public long BatchesPerEpoch => fixture.Batches.Count;

    public DataPosition Position { get; set; }

    public TrainingBatch Next()
    {
        var b = fixture.Batches[(int)Position.Batch];
        Position = Position.Batch + 1 == BatchesPerEpoch ? new DataPosition(Position.Epoch + 1, 0) : Position with { Batch = Position.Batch + 1 };
        return new TrainingBatch(b.InputIds, b.Labels, b.AttentionMask);
    }
}
