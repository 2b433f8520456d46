using Sharpformer.Tensors.Kernels;

namespace Sharpformer.Tensors;

public static partial class Ops
{
    /// <summary>
    /// [..., M, K] · [..., K, N] → [..., M, N] (batched matrix product; e.g. [B, H, T, D] · [B, H, D, T]). With
    /// <paramref name="transposeA"/> A is read as [..., K, M], with <paramref name="transposeB"/> B as [..., N, K].
    /// B may be rank 2, then it is shared by every batch entry of A.
    /// </summary>
    /// <exception cref="ArgumentException">A rank is below 2, the inner dimensions differ, or the batch dimensions differ.</exception>
    public static Tensor MatMul(Tensor a, Tensor b, bool transposeA = false, bool transposeB = false)
    {
        CheckF32(nameof(MatMul), a, nameof(a));
        CheckF32(nameof(MatMul), b, nameof(b));
        if (a.Rank < 2 || b.Rank < 2) ShapeError.Mismatch(nameof(MatMul), a.Shape, b.Shape, "both operands need at least 2 dimensions");
        int m = transposeA ? a.Shape[-1] : a.Shape[-2], k = transposeA ? a.Shape[-2] : a.Shape[-1];
        int kb = transposeB ? b.Shape[-1] : b.Shape[-2], n = transposeB ? b.Shape[-2] : b.Shape[-1];
        if (k != kb) ShapeError.Mismatch(nameof(MatMul), a.Shape, b.Shape, $"inner dimensions {k} and {kb} differ (transposeA={transposeA}, transposeB={transposeB})");
        bool shareB = b.Rank == 2;
        if (!shareB && !a.Shape.Dims[..^2].SequenceEqual(b.Shape.Dims[..^2]))
        {
            ShapeError.Mismatch(nameof(MatMul), a.Shape, b.Shape, "batch dimensions must be equal, or B must be rank 2");
        }

        int batch = 1;
        foreach (int dim in a.Shape.Dims[..^2]) batch *= dim;
        var outDims = a.Shape.Dims.ToArray();
        outDims[^2] = m;
        outDims[^1] = n;
        var output = Tensor.Empty(new Shape(outDims));
        var ac = a.Contiguous();
        var bc = b.Contiguous();
        int lda = transposeA ? m : k, ldb = transposeB ? k : n;
        long strideB = shareB ? 0 : (long)k * n;
        Gemm.SgemmBatched(transposeA, transposeB, m, n, k, 1f, ac.AsReadOnlySpan<float>(), lda, (long)m * k, bc.AsReadOnlySpan<float>(), ldb, strideB, 0f, output.AsSpan<float>(), n, (long)m * n, batch);
        if (!Autograd.Needs(a, b)) return output;

        return Autograd.Record(output, nameof(MatMul), [a, b], g =>
        {
            // Forward: C = op(A) · op(B). Then d op(A) = dC · op(B)ᵀ and d op(B) = op(A)ᵀ · dC, transposed back
            // when the operand was stored transposed.
            var gs = g.AsReadOnlySpan<float>();
            var av = ac.AsReadOnlySpan<float>();
            var bv = bc.AsReadOnlySpan<float>();
            Tensor? da = null, db = null;
            if (a.RequiresGrad)
            {
                da = Tensor.Empty(a.Shape);
                var d = da.AsSpan<float>();
                for (int i = 0; i < batch; i++)
                {
                    var gi = gs.Slice(i * m * n, m * n);
                    var bi = bv[(int)(i * strideB)..];
                    var di = d.Slice(i * m * k, m * k);
                    if (!transposeA) Gemm.Sgemm(false, !transposeB, m, k, n, 1f, gi, n, bi, ldb, 0f, di, k);
                    else Gemm.Sgemm(transposeB, true, k, m, n, 1f, bi, ldb, gi, n, 0f, di, m);
                }
            }

            if (b.RequiresGrad)
            {
                db = Tensor.Zeros(b.Shape);
                var d = db.AsSpan<float>();
                for (int i = 0; i < batch; i++)
                {
                    var gi = gs.Slice(i * m * n, m * n);
                    var ai = av.Slice(i * m * k, m * k);
                    var di = d[(int)(i * strideB)..];
                    float beta = shareB ? 1f : 0f; // a shared B sums its gradient over the batch
                    if (!transposeB) Gemm.Sgemm(!transposeA, false, k, n, m, 1f, ai, lda, gi, n, beta, di, n);
                    else Gemm.Sgemm(true, transposeA, n, k, m, 1f, gi, n, ai, lda, beta, di, k);
                }
            }

            return [da, db];
        });
    }

    /// <summary>
    /// [..., In] · W[Out, In]ᵀ + b[Out] → [..., Out] (a dense layer; PyTorch's weight layout, e.g. [B, T, C] → [B, T, 4C]).
    /// </summary>
    /// <exception cref="ArgumentException">W is not [Out, In] for the input's last dimension In, or b is not [Out].</exception>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias = null)
    {
        CheckF32(nameof(Linear), x, nameof(x));
        CheckF32(nameof(Linear), weight, nameof(weight));
        if (weight.Rank != 2 || x.Rank < 1 || weight.Shape[1] != x.Shape[-1])
        {
            ShapeError.Mismatch(nameof(Linear), x.Shape, weight.Shape, "the weight must be [Out, In] with In equal to the input's last dimension");
        }

        int inF = weight.Shape[1], outF = weight.Shape[0];
        if (bias is not null)
        {
            CheckF32(nameof(Linear), bias, nameof(bias));
            if (bias.Rank != 1 || bias.Shape[0] != outF) ShapeError.Mismatch(nameof(Linear), weight.Shape, bias.Shape, $"the bias must be [{outF}]");
        }

        int rows = 1;
        foreach (int dim in x.Shape.Dims[..^1]) rows *= dim;
        var xc = x.Contiguous();
        var wc = weight.Contiguous();
        var bc = bias?.Contiguous();
        var output = Tensor.Empty(WithLast(x.Shape, outF));
        Gemm.Sgemm(false, true, rows, outF, inF, 1f, xc.AsReadOnlySpan<float>(), inF, wc.AsReadOnlySpan<float>(), inF, 0f, output.AsSpan<float>(), outF, bc is null ? default : bc.AsReadOnlySpan<float>());
        if (!Autograd.Needs(x, weight, bias)) return output;

        return Autograd.Record(output, nameof(Linear), [x, weight, bias], g =>
        {
            // Forward: y[N, Out] = x[N, In] · Wᵀ + b. Then dx = dy · W, dW = dyᵀ · x, db = Σ_rows dy.
            var gs = g.AsReadOnlySpan<float>();
            Tensor? dx = null, dw = null, db = null;
            if (x.RequiresGrad)
            {
                dx = Tensor.Empty(x.Shape);
                Gemm.Sgemm(false, false, rows, inF, outF, 1f, gs, outF, wc.AsReadOnlySpan<float>(), inF, 0f, dx.AsSpan<float>(), inF);
            }

            if (weight.RequiresGrad)
            {
                // A parameter (a leaf) gets dW straight into its gradient buffer (β = 1 adds to a pending gradient, e.g.
                // a tied weight's other use): no parameter-sized temporary, no copy.
                bool overwrite = true;
                var target = weight.IsLeaf ? weight.GradTarget(out overwrite) : (dw = Tensor.Empty(weight.Shape));
                if (weight.IsLeaf)
                {
                    // Read by the optimizer only after the whole backward: written past the caches where it can be.
                    Gemm.SgemmStreamC(true, false, outF, inF, rows, 1f, gs, outF, xc.AsReadOnlySpan<float>(), inF, overwrite ? 0f : 1f, target.AsSpan<float>(), inF);
                }
                else
                {
                    Gemm.Sgemm(true, false, outF, inF, rows, 1f, gs, outF, xc.AsReadOnlySpan<float>(), inF, 0f, target.AsSpan<float>(), inF);
                }
            }

            if (bias is not null && bias.RequiresGrad)
            {
                db = Tensor.Empty(bias.Shape);
                Reductions.SumColumns(gs, db.AsSpan<float>(), rows, outF);
            }
            return [dx, dw, db];
        });
    }
}
