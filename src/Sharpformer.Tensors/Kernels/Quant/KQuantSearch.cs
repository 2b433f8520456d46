namespace Sharpformer.Tensors.Kernels.Quant;

/// <summary>
/// The scale searches of ggml's K-quant reference quantizers, in the same float operations in the same order
/// (make_qkx2_quants for Q4_K, make_qx_quants with rmse_type 1 for Q6_K), so that the codes chosen agree with
/// llama.cpp's wherever its compiler kept the expressions unfused.
/// </summary>
internal static class KQuantSearch
{
    /// <summary>ggml's GROUP_MAX_EPS: a group whose largest magnitude is below this is all zeros.</summary>
    public const float GroupMaxEps = 1e-15f;

    /// <summary>
    /// Asymmetric codes L in [0, nmax] for x ≈ scale·L − min (min ≥ 0 returned in <paramref name="theMin"/>): the
    /// plain min/max fit, then <paramref name="steps"/> + 1 candidate inverse scales (rmin + rdelta·k + nmax)/(max − min),
    /// each refit by weighted least squares, keeping the one of least weighted squared error. Returns the scale.
    /// </summary>
    public static float MinScale(int n, int nmax, ReadOnlySpan<float> x, ReadOnlySpan<float> weights, Span<byte> codes, out float theMin, Span<byte> aux, float rmin, float rdelta, int steps)
    {
        var min = x[0];
        var max = x[0];
        var sumW = weights[0];
        var sumX = sumW * x[0];
        for (var i = 1; i < n; i++)
        {
            if (x[i] < min)
            {
                min = x[i];
            }

            if (x[i] > max)
            {
                max = x[i];
            }

            var w = weights[i];
            sumW += w;
            sumX += w * x[i];
        }

        if (min > 0)
        {
            min = 0;
        }

        if (max == min)
        {
            codes[..n].Clear();
            theMin = -min;
            return 0f;
        }

        var iscale = nmax / (max - min);
        var scale = 1 / iscale;
        var bestError = 0f;
        for (var i = 0; i < n; i++)
        {
            var l = Math.Clamp(QuantTypeInfo.NearestInt(iscale * (x[i] - min)), 0, nmax);
            codes[i] = (byte)l;
            var diff = (scale * l) + min - x[i];
            bestError += weights[i] * (diff * diff);
        }

        for (var step = 0; step <= steps; step++)
        {
            iscale = (rmin + (rdelta * step) + nmax) / (max - min);
            float sumL = 0, sumL2 = 0, sumXl = 0;
            for (var i = 0; i < n; i++)
            {
                var l = Math.Clamp(QuantTypeInfo.NearestInt(iscale * (x[i] - min)), 0, nmax);
                aux[i] = (byte)l;
                var w = weights[i];
                sumL += w * l;
                sumL2 += w * l * l;
                sumXl += w * l * x[i];
            }

            var det = (sumW * sumL2) - (sumL * sumL);
            if (det > 0)
            {
                var thisScale = ((sumW * sumXl) - (sumX * sumL)) / det;
                var thisMin = ((sumL2 * sumX) - (sumL * sumXl)) / det;
                if (thisMin > 0)
                {
                    thisMin = 0;
                    thisScale = sumXl / sumL2;
                }

                var error = 0f;
                for (var i = 0; i < n; i++)
                {
                    var diff = (thisScale * aux[i]) + thisMin - x[i];
                    error += weights[i] * (diff * diff);
                }

                if (error < bestError)
                {
                    aux[..n].CopyTo(codes);
                    bestError = error;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }

        theMin = -min;
        return scale;
    }

    /// <summary>
    /// Symmetric codes L + nmax in [0, 2·nmax) for x ≈ scale·L, L in [−nmax, nmax − 1], weighting each value by x²:
    /// the fit through the value of largest magnitude (mapped to −nmax), then 18 candidate inverse scales
    /// −(nmax + 0.1·k)/max, keeping the one whose least-squares fit explains most. Returns the scale.
    /// </summary>
    public static float SymmetricScale(int n, int nmax, ReadOnlySpan<float> x, Span<sbyte> codes)
    {
        var max = 0f;
        var amax = 0f;
        for (var i = 0; i < n; i++)
        {
            var ax = MathF.Abs(x[i]);
            if (ax > amax)
            {
                amax = ax;
                max = x[i];
            }
        }

        if (amax < GroupMaxEps)
        {
            codes[..n].Clear();
            return 0f;
        }

        var iscale = -nmax / max;
        float sumLx = 0, sumL2 = 0;
        for (var i = 0; i < n; i++)
        {
            var l = Math.Clamp(QuantTypeInfo.NearestInt(iscale * x[i]), -nmax, nmax - 1);
            codes[i] = (sbyte)(l + nmax);
            var w = x[i] * x[i];
            sumLx += w * x[i] * l;
            sumL2 += w * l * l;
        }

        var scale = sumL2 != 0 ? sumLx / sumL2 : 0f;
        var best = scale * sumLx;
        for (var k = -9; k <= 9; k++)
        {
            if (k == 0)
            {
                continue;
            }

            iscale = -(nmax + (0.1f * k)) / max;
            sumLx = 0;
            sumL2 = 0;
            for (var i = 0; i < n; i++)
            {
                var l = Math.Clamp(QuantTypeInfo.NearestInt(iscale * x[i]), -nmax, nmax - 1);
                var w = x[i] * x[i];
                sumLx += w * x[i] * l;
                sumL2 += w * l * l;
            }

            if (sumL2 > 0 && sumLx * sumLx > best * sumL2)
            {
                for (var i = 0; i < n; i++)
                {
                    codes[i] = (sbyte)(nmax + Math.Clamp(QuantTypeInfo.NearestInt(iscale * x[i]), -nmax, nmax - 1));
                }

                scale = sumLx / sumL2;
                best = scale * sumLx;
            }
        }

        return scale;
    }
}
