using Sharpformer.Tensors;
using Sharpformer.Tensors.Kernels;

namespace Sharpformer.IO.Tests.Onnx;

/// <summary>
/// A deliberately plain BERT encoder forward for tests: it reads Hugging Face BertModel tensor names and runs them with
/// Gemm.Sgemm and simple loops (embedding sum, LayerNorm, multi-head attention with a padding mask, erf
/// GELU, residuals). It is the oracle that proves a converted checkpoint's names and layouts are right.
/// </summary>
internal sealed class ReferenceBert(Func<string, Tensor> weight, int layers, int heads, float eps)
{
    /// <summary>[B, T] ids, mask and token types → last_hidden_state [B, T, C] (row-major).</summary>
    public float[] Forward(long[] ids, long[] mask, long[] types, int batch, int seq)
    {
        var word = W("embeddings.word_embeddings.weight");
        var pos = W("embeddings.position_embeddings.weight");
        var type = W("embeddings.token_type_embeddings.weight");
        int c = word.Shape[1], rows = batch * seq;
        var wordData = word.ToArray();
        var posData = pos.ToArray();
        var typeData = type.ToArray();

        // x [B·T, C] = word[id] + pos[t] + type[tt]
        var x = new float[rows * c];
        for (int b = 0; b < batch; b++)
        {
            for (int t = 0; t < seq; t++)
            {
                int r = (b * seq) + t;
                for (int j = 0; j < c; j++)
                {
                    x[(r * c) + j] = wordData[(ids[r] * c) + j] + posData[(t * c) + j] + typeData[(types[r] * c) + j];
                }
            }
        }

        LayerNorm(x, rows, c, "embeddings.LayerNorm");
        for (int l = 0; l < layers; l++)
        {
            string p = $"encoder.layer.{l}";
            var q = Dense(x, rows, $"{p}.attention.self.query");
            var k = Dense(x, rows, $"{p}.attention.self.key");
            var v = Dense(x, rows, $"{p}.attention.self.value");
            var context = Attention(q, k, v, mask, batch, seq, c);
            var attn = Dense(context, rows, $"{p}.attention.output.dense");
            for (int i = 0; i < attn.Length; i++) attn[i] += x[i];
            LayerNorm(attn, rows, c, $"{p}.attention.output.LayerNorm");
            var inter = Dense(attn, rows, $"{p}.intermediate.dense");
            for (int i = 0; i < inter.Length; i++) inter[i] = Gelu(inter[i]);
            var output = Dense(inter, rows, $"{p}.output.dense");
            for (int i = 0; i < output.Length; i++) output[i] += attn[i];
            LayerNorm(output, rows, c, $"{p}.output.LayerNorm");
            x = output;
        }

        return x;
    }

    /// <summary>last_hidden_state [B, T, C] → pooler output [B, C] = tanh(dense(h[:, 0])).</summary>
    public float[] Pool(float[] hidden, int batch, int seq, int c)
    {
        var first = new float[batch * c];
        for (int b = 0; b < batch; b++) Array.Copy(hidden, b * seq * c, first, b * c, c);
        var pooled = Dense(first, batch, "pooler.dense");
        for (int i = 0; i < pooled.Length; i++) pooled[i] = MathF.Tanh(pooled[i]);
        return pooled;
    }

    private Tensor W(string name) => weight(name);

    // y [rows, out] = x [rows, in] · Wᵀ + b, with W stored [out, in] as Hugging Face Linear keeps it.
    private float[] Dense(float[] x, int rows, string prefix)
    {
        var w = W(prefix + ".weight");
        var bias = W(prefix + ".bias").ToArray();
        int outF = w.Shape[0], inF = w.Shape[1];
        var y = new float[rows * outF];
        Gemm.Sgemm(false, true, rows, outF, inF, 1f, x, inF, w.ToArray(), inF, 0f, y, outF, bias);
        return y;
    }

    private void LayerNorm(float[] x, int rows, int c, string prefix)
    {
        var gamma = W(prefix + ".weight").ToArray();
        var beta = W(prefix + ".bias").ToArray();
        for (int r = 0; r < rows; r++)
        {
            var row = x.AsSpan(r * c, c);
            double mean = 0, variance = 0;
            foreach (float value in row) mean += value;
            mean /= c;
            foreach (float value in row) variance += (value - mean) * (value - mean);
            variance /= c;
            double inv = 1.0 / Math.Sqrt(variance + eps);
            for (int j = 0; j < c; j++) row[j] = (float)(((row[j] - mean) * inv * gamma[j]) + beta[j]);
        }
    }

    // q, k, v [B·T, C] with C = H·D → context [B·T, C]; keys where mask = 0 get no weight.
    private float[] Attention(float[] q, float[] k, float[] v, long[] mask, int batch, int seq, int c)
    {
        int d = c / heads;
        float scale = 1f / MathF.Sqrt(d);
        var context = new float[batch * seq * c];
        var scores = new double[seq];
        for (int b = 0; b < batch; b++)
        {
            for (int h = 0; h < heads; h++)
            {
                for (int i = 0; i < seq; i++)
                {
                    int qi = (((b * seq) + i) * c) + (h * d);
                    double max = double.NegativeInfinity;
                    for (int j = 0; j < seq; j++)
                    {
                        if (mask[(b * seq) + j] == 0)
                        {
                            scores[j] = double.NegativeInfinity;
                            continue;
                        }

                        int kj = (((b * seq) + j) * c) + (h * d);
                        double dot = 0;
                        for (int e = 0; e < d; e++) dot += q[qi + e] * k[kj + e];
                        scores[j] = dot * scale;
                        max = Math.Max(max, scores[j]);
                    }

                    double sum = 0;
                    for (int j = 0; j < seq; j++)
                    {
                        scores[j] = double.IsNegativeInfinity(scores[j]) ? 0 : Math.Exp(scores[j] - max);
                        sum += scores[j];
                    }

                    for (int e = 0; e < d; e++)
                    {
                        double acc = 0;
                        for (int j = 0; j < seq; j++) acc += scores[j] * v[(((b * seq) + j) * c) + (h * d) + e];
                        context[qi + e] = (float)(acc / sum);
                    }
                }
            }
        }

        return context;
    }

    // GELU, erf form: 0.5·x·(1 + erf(x / √2)).
    private static float Gelu(float x) => (float)(0.5 * x * (1 + Erf(x / Math.Sqrt(2))));

    // erf by its Maclaurin series (accurate to ~1e-9 for |z| < 4); beyond that erf is ±1 to within 2e-8.
    internal static double Erf(double z)
    {
        if (Math.Abs(z) >= 4) return Math.Sign(z);
        double sum = 0, term = z;
        for (int n = 0; n < 200; n++)
        {
            double add = term / ((2 * n) + 1);
            sum += add;
            if (Math.Abs(add) < 1e-17) break;
            term *= -z * z / (n + 1);
        }

        return 2 / Math.Sqrt(Math.PI) * sum;
    }
}
