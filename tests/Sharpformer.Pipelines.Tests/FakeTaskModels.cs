using Sharpformer.Models;
using Sharpformer.Tensors;

namespace Sharpformer.Pipelines.Tests;

/// <summary>What a fake task model saw in one forward call: [B, T] ids, mask and token types (null when none were passed).</summary>
internal sealed record SeenBatch(int[][] Ids, int[][] Mask, int[][]? Types);

/// <summary>The plumbing the fake task models share: reading [B, T] inputs back as rows.</summary>
internal static class FakeInputs
{
    public static SeenBatch Read(Tensor ids, Tensor mask, Tensor? types)
    {
        int batch = ids.Shape[0], length = ids.Shape[1];
        return new SeenBatch(Rows(ids, batch, length), Rows(mask, batch, length), types is null ? null : Rows(types, batch, length));
    }

    /// <summary>The ids of row <paramref name="b"/> where the mask is 1 (the unpadded input).</summary>
    public static int[] Unpadded(SeenBatch seen, int b) => seen.Ids[b].Where((_, t) => seen.Mask[b][t] == 1).ToArray();

    private static int[][] Rows(Tensor tensor, int batch, int length)
    {
        var flat = tensor.Contiguous().AsReadOnlySpan<int>().ToArray();
        return Enumerable.Range(0, batch).Select(b => flat.AsSpan(b * length, length).ToArray()).ToArray();
    }
}

/// <summary>A sequence classifier whose logits for each input come from <see cref="LogitsFor"/> (given the unpadded ids).</summary>
internal sealed class FakeSequenceClassifier(string[] labels, ClassificationProblem problem = ClassificationProblem.SingleLabel, bool usesTokenTypes = true) : ISequenceClassifier
{
    public Func<int[], float[]> LogitsFor { get; set; } = _ => new float[labels.Length];

    public List<SeenBatch> Calls { get; } = [];

    public IReadOnlyList<string> Labels => labels;

    public ClassificationProblem Problem => problem;

    public int MaxPositions => 512;

    public bool UsesTokenTypes => usesTokenTypes;

    public Tensor ClassificationLogits(Tensor inputIds, Tensor attentionMask, Tensor? tokenTypeIds)
    {
        var seen = FakeInputs.Read(inputIds, attentionMask, tokenTypeIds);
        Calls.Add(seen);
        var logits = new float[seen.Ids.Length * labels.Length];
        for (var b = 0; b < seen.Ids.Length; b++)
        {
            LogitsFor(FakeInputs.Unpadded(seen, b)).CopyTo(logits, b * labels.Length);
        }

        return Tensor.FromArray(logits, new Shape(seen.Ids.Length, labels.Length));
    }

    public Tensor ClassificationLoss(Tensor inputIds, Tensor? attentionMask, Tensor? tokenTypeIds, Tensor labels) =>
        throw new NotSupportedException("The pipelines never ask a fake classifier for a loss.");
}

/// <summary>A token classifier whose logits for token id <c>i</c> are <see cref="LogitsById"/>[i] (zeros where absent).</summary>
internal sealed class FakeTokenClassifier(string[] labels) : ITokenClassifier
{
    public Dictionary<int, float[]> LogitsById { get; } = [];

    public List<SeenBatch> Calls { get; } = [];

    public IReadOnlyList<string> Labels => labels;

    public int MaxPositions => 512;

    public bool UsesTokenTypes => true;

    public Tensor TokenLogits(Tensor inputIds, Tensor attentionMask, Tensor? tokenTypeIds)
    {
        var seen = FakeInputs.Read(inputIds, attentionMask, tokenTypeIds);
        Calls.Add(seen);
        int batch = seen.Ids.Length, length = seen.Ids[0].Length;
        var logits = new float[batch * length * labels.Length];
        for (var b = 0; b < batch; b++)
        {
            for (var t = 0; t < length; t++)
            {
                if (LogitsById.TryGetValue(seen.Ids[b][t], out var row))
                {
                    row.CopyTo(logits, ((b * length) + t) * labels.Length);
                }
            }
        }

        return Tensor.FromArray(logits, new Shape(batch, length, labels.Length));
    }

    public Tensor TokenClassificationLoss(Tensor inputIds, Tensor? attentionMask, Tensor? tokenTypeIds, Tensor labels) =>
        throw new NotSupportedException("The pipelines never ask a fake token classifier for a loss.");
}

/// <summary>A QA model whose start and end logits for token id <c>i</c> are <see cref="StartById"/>[i] and <see cref="EndById"/>[i] (0 where absent).</summary>
internal sealed class FakeQuestionAnswering(int maxPositions = 512) : IQuestionAnswering
{
    public Dictionary<int, float> StartById { get; } = [];

    public Dictionary<int, float> EndById { get; } = [];

    public List<SeenBatch> Calls { get; } = [];

    public int MaxPositions => maxPositions;

    public bool UsesTokenTypes => true;

    public (Tensor Start, Tensor End) SpanLogits(Tensor inputIds, Tensor attentionMask, Tensor? tokenTypeIds)
    {
        var seen = FakeInputs.Read(inputIds, attentionMask, tokenTypeIds);
        Calls.Add(seen);
        int batch = seen.Ids.Length, length = seen.Ids[0].Length;
        var start = new float[batch * length];
        var end = new float[batch * length];
        for (var b = 0; b < batch; b++)
        {
            for (var t = 0; t < length; t++)
            {
                start[(b * length) + t] = StartById.GetValueOrDefault(seen.Ids[b][t]);
                end[(b * length) + t] = EndById.GetValueOrDefault(seen.Ids[b][t]);
            }
        }

        return (Tensor.FromArray(start, new Shape(batch, length)), Tensor.FromArray(end, new Shape(batch, length)));
    }

    public Tensor QuestionAnsweringLoss(Tensor inputIds, Tensor? attentionMask, Tensor? tokenTypeIds, Tensor startPositions, Tensor endPositions) =>
        throw new NotSupportedException("The pipelines never ask a fake QA model for a loss.");
}

/// <summary>Softmax and sigmoid in double, independently of the pipelines' float32 code.</summary>
internal static class Reference
{
    public static double[] Softmax(IReadOnlyList<double> logits)
    {
        var max = logits.Max();
        var exp = logits.Select(l => Math.Exp(l - max)).ToArray();
        var sum = exp.Sum();
        return exp.Select(e => e / sum).ToArray();
    }

    public static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));
}
