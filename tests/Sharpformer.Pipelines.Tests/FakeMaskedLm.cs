using Sharpformer.Models;
using Sharpformer.Tensors;

namespace Sharpformer.Pipelines.Tests;

/// <summary>
/// A stand-in model with C = 1 whose hidden state at position t is t, so <see cref="PredictLogits"/> knows which
/// position it is scoring and returns the logits the test prescribed for it (zeros elsewhere).
/// </summary>
internal sealed class FakeMaskedLm(int vocab, int maxPositions = 512) : IMaskedLanguageModel
{
    public Dictionary<int, float[]> LogitsAt { get; } = [];

    public int HiddenSize => 1;

    public int MaxPositions => maxPositions;

    public int VocabSize => vocab;

    public Tensor Encode(Tensor inputIds, Tensor attentionMask, Tensor tokenTypeIds)
    {
        int batch = inputIds.Shape[0], seq = inputIds.Shape[1];
        var hidden = new float[batch * seq];
        for (var i = 0; i < hidden.Length; i++)
        {
            hidden[i] = i % seq;
        }

        return Tensor.FromArray(hidden, new Shape(batch, seq, 1));
    }

    public Tensor PredictLogits(Tensor hidden)
    {
        int rows = hidden.Shape[0];
        var positions = hidden.ToArray();
        var logits = new float[rows * vocab];
        for (var r = 0; r < rows; r++)
        {
            if (LogitsAt.TryGetValue((int)positions[r], out var row))
            {
                row.CopyTo(logits.AsSpan(r * vocab, vocab));
            }
        }

        return Tensor.FromArray(logits, new Shape(rows, vocab));
    }
}
