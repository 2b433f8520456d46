using Sharpformer.Models;
using Sharpformer.Tensors;
using Sharpformer.Text;

namespace Sharpformer.Pipelines;

/// <summary>What the task pipelines share: encoding within the model's limit, padded [B, T] batches, and HF's score functions.</summary>
internal static class TaskBatches
{
    /// <summary>HF's limit for one input: the tokenizer's model_max_length, capped by the position table.</summary>
    public static int MaxLength(TextTokenizer tokenizer, ITaskModel model) => ModelLoader.MaxLength(tokenizer, model.MaxPositions);

    /// <summary>Encodes a text (or pair) within the model's limit (<see cref="ModelLoader.EncodeChecked(TextTokenizer, int, string, string?, PipelineOptions, string)"/>).</summary>
    public static TokenEncoding EncodeChecked(TextTokenizer tokenizer, ITaskModel model, string text, string? textPair, PipelineOptions options, string parameter) =>
        ModelLoader.EncodeChecked(tokenizer, MaxLength(tokenizer, model), text, textPair, options, parameter);

    /// <summary>
    /// The batching rule for inputs of mixed lengths: input indices sorted by length, longest first (ties keep input
    /// order), cut into consecutive batches of at most <paramref name="batchSize"/>, so each batch is padded only to its
    /// own longest input (a length bucket), not to the longest of the whole input set. Callers put each result back at
    /// its input's index, so the output order is the input order.
    /// </summary>
    /// <param name="lengths">Each input's token count.</param>
    /// <param name="batchSize">The most inputs per batch (≥ 1).</param>
    /// <returns>The batches, each a list of input indices in descending length.</returns>
    public static List<int[]> LengthBuckets(IReadOnlyList<int> lengths, int batchSize)
    {
        System.Diagnostics.Debug.Assert(batchSize >= 1, "callers validate the batch size");
        var order = Enumerable.Range(0, lengths.Count).OrderByDescending(i => lengths[i]).ToArray();
        var batches = new List<int[]>((order.Length + batchSize - 1) / batchSize);
        for (var start = 0; start < order.Length; start += batchSize)
        {
            batches.Add(order[start..Math.Min(order.Length, start + batchSize)]);
        }

        return batches;
    }

    /// <summary>
    /// B encodings → ids, attention mask and token types [B, T], right-padded to the longest with
    /// <paramref name="padId"/> (mask 0 there); token types are null when the model reads none.
    /// </summary>
    public static (Tensor Ids, Tensor Mask, Tensor? Types) Pad(IReadOnlyList<TokenEncoding> encodings, int padId, bool withTypes) =>
        Pad(encodings.Select(e => (e.Ids, e.TypeIds)).ToList(), padId, withTypes);

    /// <summary>B unpadded inputs (ids and token types of equal length each) → [B, T] tensors as the overload above.</summary>
    public static (Tensor Ids, Tensor Mask, Tensor? Types) Pad(IReadOnlyList<(IReadOnlyList<int> Ids, IReadOnlyList<int> TypeIds)> inputs, int padId, bool withTypes)
    {
        int batch = inputs.Count;
        int length = inputs.Max(e => e.Ids.Count);
        var ids = new int[batch * length];
        var mask = new int[batch * length];
        var types = new int[batch * length];
        Array.Fill(ids, padId);
        for (var b = 0; b < batch; b++)
        {
            var (inputIds, typeIds) = inputs[b];
            for (var t = 0; t < inputIds.Count; t++)
            {
                ids[(b * length) + t] = inputIds[t];
                mask[(b * length) + t] = 1;
                types[(b * length) + t] = typeIds[t];
            }
        }

        var shape = new Shape(batch, length);
        return (Tensor.FromArray(ids, shape), Tensor.FromArray(mask, shape), withTypes ? Tensor.FromArray(types, shape) : null);
    }

    /// <summary>The id used to pad batches: the tokenizer's pad token, else 0 (its positions are masked out either way).</summary>
    public static int PadId(TextTokenizer tokenizer) => tokenizer.PadTokenId ?? 0;

    /// <summary>HF's softmax over one row of logits, in float32 as numpy does it: exp(x − max) / Σ.</summary>
    public static float[] Softmax(ReadOnlySpan<float> logits)
    {
        var max = float.NegativeInfinity;
        foreach (var x in logits)
        {
            max = Math.Max(max, x);
        }

        var result = new float[logits.Length];
        var sum = 0f;
        for (var i = 0; i < logits.Length; i++)
        {
            result[i] = MathF.Exp(logits[i] - max);
            sum += result[i];
        }

        for (var i = 0; i < result.Length; i++)
        {
            result[i] /= sum;
        }

        return result;
    }

    /// <summary>HF's sigmoid, 1 / (1 + exp(−x)), elementwise.</summary>
    public static float[] Sigmoid(ReadOnlySpan<float> logits)
    {
        var result = new float[logits.Length];
        for (var i = 0; i < logits.Length; i++)
        {
            result[i] = 1f / (1f + MathF.Exp(-logits[i]));
        }

        return result;
    }

    /// <summary>The index of the largest value, the first one on ties (numpy's argmax).</summary>
    public static int ArgMax(ReadOnlySpan<float> values)
    {
        var best = 0;
        for (var i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best])
            {
                best = i;
            }
        }

        return best;
    }
}
