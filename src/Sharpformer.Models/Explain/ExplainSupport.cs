using Sharpformer.NN;
using Sharpformer.Tensors;

namespace Sharpformer.Models.Explain;

/// <summary>Checks and plumbing shared by the <see cref="IExplainableModel"/> implementations.</summary>
internal static class ExplainSupport
{
    /// <summary>Validates one sequence of ids against the vocabulary and the position table; returns them as [1, T] I32.</summary>
    public static Tensor CheckIds(ReadOnlySpan<int> ids, int vocabSize, int maxPositions, string model)
    {
        if (ids.Length == 0 || ids.Length > maxPositions)
        {
            throw new ArgumentException($"{model} explain: the input is {ids.Length} tokens; it must hold 1 … {maxPositions} (max_position_embeddings). Shorten the text.", nameof(ids));
        }

        for (int i = 0; i < ids.Length; i++)
        {
            if ((uint)ids[i] >= (uint)vocabSize)
            {
                throw new ArgumentException($"{model} explain: token id {ids[i]} at position {i} is outside the vocabulary [0, {vocabSize}); use the model's own tokenizer.", nameof(ids));
            }
        }

        return Tensor.FromArray(ids.ToArray(), new Shape(1, ids.Length));
    }

    /// <summary>Runs <paramref name="forward"/> in evaluation mode without gradients, restoring the module's mode after.</summary>
    public static T InEval<T>(Module module, Func<T> forward)
    {
        bool training = module.Training;
        module.Eval();
        try
        {
            using var noGrad = Autograd.NoGrad();
            return forward();
        }
        finally
        {
            if (training) module.Train();
        }
    }

    /// <summary>Batch-of-one outputs ([1, T, C] states, [1, H, T, T] attentions) → the trace's [T, C] and [H, T, T] tensors.</summary>
    public static ExplainTrace Squeeze(IReadOnlyList<Tensor>? hiddenStates, IReadOnlyList<Tensor>? attentions, string model)
    {
        if (hiddenStates is null || attentions is null)
        {
            throw new InvalidOperationException($"{model} explain: the forward returned no hidden states or attentions although both were requested.");
        }

        var states = hiddenStates.Select(h => h.Contiguous().Reshape(h.Shape[1], h.Shape[2])).ToList();
        var weights = attentions.Select(a => a.Contiguous().Reshape(a.Shape[1], a.Shape[2], a.Shape[3])).ToList();
        return new ExplainTrace(states, weights);
    }

    /// <summary>Rows <paramref name="rows"/> of an embedding table (any storage type), widened to a new F32 [N, C] tensor.</summary>
    public static Tensor Rows(Embedding table, ReadOnlySpan<int> rows, string model)
    {
        var values = new float[rows.Length * table.Dim];
        for (int i = 0; i < rows.Length; i++)
        {
            if ((uint)rows[i] >= (uint)table.Count)
            {
                throw new ArgumentException($"{model} explain: row {rows[i]} is outside the table [0, {table.Count}).", nameof(rows));
            }

            table.CopyRow(rows[i], values.AsSpan(i * table.Dim, table.Dim));
        }

        return Tensor.FromArray(values, new Shape(rows.Length, table.Dim));
    }

    /// <summary>Rows <paramref name="first"/> … <paramref name="first"/> + <paramref name="length"/> − 1 of a position table, checked against <paramref name="maxPositions"/>.</summary>
    public static Tensor PositionRows(Embedding table, int first, int length, int maxPositions, string model)
    {
        if (length < 1 || length > maxPositions)
        {
            throw new ArgumentOutOfRangeException(nameof(length), length, $"{model} explain: the position table covers 1 … {maxPositions} positions.");
        }

        var rows = new int[length];
        for (int i = 0; i < length; i++) rows[i] = first + i;
        return Rows(table, rows, model);
    }

    /// <summary>Validates a logit-lens call: <paramref name="layer"/> in [0, L] and <paramref name="hidden"/> F32 [N, C].</summary>
    public static void CheckLens(int layer, int numLayers, Tensor hidden, int c, string model)
    {
        ArgumentNullException.ThrowIfNull(hidden);
        if (layer < 0 || layer > numLayers)
        {
            throw new ArgumentException($"{model} explain: layer {layer} is outside [0, {numLayers}] (0 = embeddings, {numLayers} = last layer).", nameof(layer));
        }

        if (hidden.Rank != 2 || hidden.Shape[1] != c || hidden.DType != DType.F32)
        {
            throw new ArgumentException($"{model} explain: logit-lens rows must be F32 [N, C={c}], got {hidden.DType} {hidden.Shape}.", nameof(hidden));
        }
    }

    /// <summary>hidden [N, C] · tableᵀ [C, V] → [N, V]: the similarity of each row with every token embedding (for encoders without a head).</summary>
    public static Tensor ProjectOnEmbeddings(Tensor hidden, Embedding table)
    {
        using var noGrad = Autograd.NoGrad();
        var weight = table.Weight.DType == DType.F32 ? table.Weight.Value : table.Weight.Value.To(DType.F32);
        return Ops.MatMul(hidden.Contiguous(), weight.Contiguous(), transposeB: true);
    }
}
