using System.Diagnostics.CodeAnalysis;
using System.Numerics.Tensors;

namespace Sharpformer.Tensors.Kernels;

/// <summary>
/// Embedding gather and its backward scatter-add: out[n, :] = table[ids[n], :] for N = B·T token ids and a [V, C] table.
/// </summary>
public static class Embedding
{
    /// <summary>[N] ids, [V, C] table → [N, C]: out[n, :] = table[ids[n], :].</summary>
    /// <param name="ids">Token ids, each in [0, V).</param>
    /// <param name="table">The embedding table, V · C elements.</param>
    /// <param name="output">Gathered rows, N · C elements (overwritten).</param>
    /// <param name="vocab">V, the number of table rows.</param>
    /// <param name="dim">C, the embedding width.</param>
    /// <exception cref="ArgumentException">A size is negative, a span is too short, or an id is outside [0, V).</exception>
    public static void Forward(ReadOnlySpan<int> ids, ReadOnlySpan<float> table, Span<float> output, int vocab, int dim)
    {
        Check("Embedding.Forward", ids, table.Length, output.Length, vocab, dim, "table", "output");
        for (int n = 0; n < ids.Length; n++)
        {
            table.Slice(ids[n] * dim, dim).CopyTo(output.Slice(n * dim, dim));
        }
    }

    /// <summary>
    /// [N] ids, [N, C] dOut → [V, C]: dTable[ids[n], :] += dOut[n, :]. Accumulates (duplicate ids add up, and the table
    /// gradient is usually sparse), so zero <paramref name="dTable"/> first when a fresh gradient is wanted.
    /// </summary>
    /// <param name="ids">The forward ids, each in [0, V).</param>
    /// <param name="dOutput">Gradient with respect to the gathered rows, N · C elements.</param>
    /// <param name="dTable">Table gradient, V · C elements, accumulated into.</param>
    /// <param name="vocab">V.</param>
    /// <param name="dim">C.</param>
    /// <exception cref="ArgumentException">A size is negative, a span is too short, or an id is outside [0, V).</exception>
    public static void Backward(ReadOnlySpan<int> ids, ReadOnlySpan<float> dOutput, Span<float> dTable, int vocab, int dim)
    {
        Check("Embedding.Backward", ids, dTable.Length, dOutput.Length, vocab, dim, "dTable", "dOutput");
        for (int n = 0; n < ids.Length; n++)
        {
            var row = dTable.Slice(ids[n] * dim, dim);
            TensorPrimitives.Add(row, dOutput.Slice(n * dim, dim), row);
        }
    }

    /// <summary>Scalar reference of <see cref="Backward"/>.</summary>
    internal static void BackwardReference(ReadOnlySpan<int> ids, ReadOnlySpan<float> dOutput, Span<float> dTable, int dim)
    {
        for (int n = 0; n < ids.Length; n++)
        {
            for (int c = 0; c < dim; c++) dTable[(ids[n] * dim) + c] += dOutput[(n * dim) + c];
        }
    }

    private static void Check(string op, ReadOnlySpan<int> ids, int tableLength, int rowsLength, int vocab, int dim, string tableName, string rowsName)
    {
        KernelChecks.Dims(op, vocab, dim);
        KernelChecks.AtLeast(op, tableName, tableLength, (long)vocab * dim, "[V={0}, C={1}]", vocab, dim);
        KernelChecks.AtLeast(op, rowsName, rowsLength, (long)ids.Length * dim, "[N={0}, C={1}]", ids.Length, dim);
        for (int n = 0; n < ids.Length; n++)
        {
            if ((uint)ids[n] >= (uint)vocab) ThrowId(op, n, ids[n], vocab);
        }
    }

    [DoesNotReturn]
    private static void ThrowId(string op, int n, int id, int vocab) =>
        KernelChecks.Invalid(op, "ids", $"ids[{n}] = {id} is outside the vocabulary [0, {vocab}); check that the tokenizer matches the model's vocab_size.");
}
