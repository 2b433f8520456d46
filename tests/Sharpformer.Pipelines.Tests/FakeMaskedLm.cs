namespace Sharpformer.Pipelines.Tests;

/// <summary>
/// A stand-in model with C = 1 whose hidden state at position t is t, so <see cref="PredictLogits"/> knows which
/// position it is scoring and returns the logits the test prescribed for it (zeros elsewhere).
/// </summary>
internal sealed class FakeMaskedLm(int vocab, int maxPositions = 512, bool hasHead = true) : IMaskedLanguageModel
{
    public Dictionary<int, float[]> LogitsAt { get; } = [];

    public int HiddenSize => 1;

    public int MaxPositions => maxPositions;

    public int VocabSize => vocab;

    public bool HasMaskedLanguageModelHead => hasHead;

    public float[] Encode(ReadOnlySpan<int> ids, ReadOnlySpan<int> attentionMask, ReadOnlySpan<int> typeIds, int batch, int seq)
    {
        var hidden = new float[batch * seq];
        for (var i = 0; i < hidden.Length; i++)
        {
            hidden[i] = i % seq;
        }

        return hidden;
    }

    public float[] PredictLogits(ReadOnlySpan<float> hidden, int rows)
    {
        var logits = new float[rows * vocab];
        for (var r = 0; r < rows; r++)
        {
            if (LogitsAt.TryGetValue((int)hidden[r], out var row))
            {
                row.CopyTo(logits.AsSpan(r * vocab, vocab));
            }
        }

        return logits;
    }
}
