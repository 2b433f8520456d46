namespace Sharpformer.Tensors;

public static partial class Ops
{
    /// <summary>
    /// ids[B, T] (I32 or I64, any shape) with table[V, C] → [B, T, C]: row ids[b, t] of the table. The table's gradient
    /// is a scatter-add of the output gradient rows (ids that repeat accumulate).
    /// </summary>
    /// <exception cref="ArgumentException">ids are not integers, the table is not [V, C], or an id is outside [0, V).</exception>
    public static Tensor Embedding(Tensor ids, Tensor table)
    {
        ArgumentNullException.ThrowIfNull(ids);
        CheckF32(nameof(Embedding), table, nameof(table));
        if (table.Rank != 2) ShapeError.Invalid(nameof(Embedding), table.Shape, "the table must be [V, C]");
        var index = ReadIds(nameof(Embedding), ids, nameof(ids));
        int vocab = table.Shape[0], c = table.Shape[1];
        for (int i = 0; i < index.Length; i++)
        {
            if ((uint)index[i] >= (uint)vocab)
            {
                throw new ArgumentException($"Embedding: id {index[i]} at flat position {i} of ids {ids.Shape} is outside the table's {vocab} rows (table {table.Shape}); check the tokenizer and the model's vocab_size.", nameof(ids));
            }
        }

        var dims = ids.Shape.Dims.ToArray().Append(c).ToArray();
        var output = Tensor.Empty(new Shape(dims));
        Kernels.Embedding.Forward(index, Read(table), output.AsSpan<float>(), vocab, c);
        if (!Autograd.Needs(table)) return output;
        return Autograd.Record(output, nameof(Embedding), [ids, table], g =>
        {
            // A parameter table gets the scatter-add straight into its gradient buffer (cleared first when nothing is
            // pending; a tied table's other use may already have written it).
            if (table.IsLeaf)
            {
                var target = table.GradTarget(out bool overwrite);
                if (overwrite) target.AsSpan<float>().Clear();
                Kernels.Embedding.Backward(index, g.AsReadOnlySpan<float>(), target.AsSpan<float>(), vocab, c);
                return [null, null];
            }

            var dt = Tensor.Zeros(table.Shape);
            Kernels.Embedding.Backward(index, g.AsReadOnlySpan<float>(), dt.AsSpan<float>(), vocab, c);
            return [null, dt];
        });
    }

    /// <summary>Integer ids as int32, from an I32 or I64 tensor.</summary>
    private static int[] ReadIds(string op, Tensor ids, string name)
    {
        switch (ids.DType)
        {
            case DType.I32:
                return ids.ToArray<int>();
            case DType.I64:
                var wide = ids.ToArray<long>();
                var narrow = new int[wide.Length];
                for (int i = 0; i < wide.Length; i++) narrow[i] = (int)Math.Clamp(wide[i], int.MinValue, int.MaxValue);
                return narrow;
            default:
                throw new ArgumentException($"{op}: {name} of shape {ids.Shape} is {ids.DType}, but token ids must be I32 or I64.", name);
        }
    }
}
