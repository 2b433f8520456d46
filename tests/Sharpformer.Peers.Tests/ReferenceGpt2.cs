using Sharpformer.IO.SafeTensors;

namespace Sharpformer.Peers.Tests;

/// <summary>
/// A plain GPT-2 forward pass (transformers' GPT2LMHeadModel, gelu_new, tied head) over a Hugging Face folder,
/// accumulating in double: the test's stand-in for Sharpformer's GPT-2 until branch gpt2 lands. Full recompute per
/// call, no cache: only small test models go through it.
/// </summary>
internal sealed class ReferenceGpt2
{
    private readonly Dictionary<string, float[]> _w = new(StringComparer.Ordinal);
    private readonly int _c;
    private readonly int _heads;
    private readonly int _layers;
    private readonly int _vocab;
    private readonly double _eps;

    public ReferenceGpt2(string folder, int embd, int heads, int layers, int vocab, double eps)
    {
        using var file = SafeTensorsFile.Open(Path.Combine(folder, "model.safetensors"));
        foreach (var info in file.Tensors)
        {
            _w[info.Name.StartsWith("transformer.", StringComparison.Ordinal) ? info.Name["transformer.".Length..] : info.Name] = file.GetTensorAsF32(info.Name).ToArray();
        }

        (_c, _heads, _layers, _vocab, _eps) = (embd, heads, layers, vocab, eps);
    }

    /// <summary>Logits of the last position. ids: [T] → [V].</summary>
    public float[] LastLogits(IReadOnlyList<int> ids)
    {
        int t = ids.Count, c = _c;
        var x = new double[t][];
        for (var p = 0; p < t; p++)
        {
            x[p] = new double[c];
            for (var i = 0; i < c; i++)
            {
                x[p][i] = _w["wte.weight"][(ids[p] * c) + i] + _w["wpe.weight"][(p * c) + i];
            }
        }

        for (var l = 0; l < _layers; l++)
        {
            var pre = $"h.{l}.";
            var qkv = x.Select(r => Linear(LayerNorm(r, pre + "ln_1"), pre + "attn.c_attn", 3 * c)).ToArray();
            var attended = Attention(qkv);
            for (var p = 0; p < t; p++)
            {
                Add(x[p], Linear(attended[p], pre + "attn.c_proj", c));
                var up = Linear(LayerNorm(x[p], pre + "ln_2"), pre + "mlp.c_fc", 4 * c);
                for (var i = 0; i < up.Length; i++)
                {
                    up[i] = GeluNew(up[i]);
                }

                Add(x[p], Linear(up, pre + "mlp.c_proj", c));
            }
        }

        var h = LayerNorm(x[t - 1], "ln_f");
        var wte = _w["wte.weight"];
        var logits = new float[_vocab];
        for (var v = 0; v < _vocab; v++)
        {
            double s = 0;
            for (var i = 0; i < c; i++)
            {
                s += h[i] * wte[(v * c) + i];
            }

            logits[v] = (float)s;
        }

        return logits;
    }

    /// <summary>Causal multi-head attention. qkv: [T, 3C] → [T, C].</summary>
    private double[][] Attention(double[][] qkv)
    {
        int t = qkv.Length, c = _c, d = c / _heads;
        var scale = 1.0 / Math.Sqrt(d);
        var output = new double[t][];
        for (var p = 0; p < t; p++)
        {
            output[p] = new double[c];
            for (var head = 0; head < _heads; head++)
            {
                var scores = new double[p + 1];
                for (var j = 0; j <= p; j++)
                {
                    double s = 0;
                    for (var k = 0; k < d; k++)
                    {
                        s += qkv[p][(head * d) + k] * qkv[j][c + (head * d) + k];
                    }

                    scores[j] = s * scale;
                }

                var max = scores.Max();
                var sum = 0.0;
                for (var j = 0; j <= p; j++)
                {
                    scores[j] = Math.Exp(scores[j] - max);
                    sum += scores[j];
                }

                for (var j = 0; j <= p; j++)
                {
                    for (var k = 0; k < d; k++)
                    {
                        output[p][(head * d) + k] += scores[j] / sum * qkv[j][(2 * c) + (head * d) + k];
                    }
                }
            }
        }

        return output;
    }

    /// <summary>HF Conv1D: weight [in, out]. x: [in] → [out].</summary>
    private double[] Linear(double[] x, string name, int outputs)
    {
        var w = _w[name + ".weight"];
        var b = _w[name + ".bias"];
        var y = new double[outputs];
        for (var o = 0; o < outputs; o++)
        {
            y[o] = b[o];
        }

        for (var i = 0; i < x.Length; i++)
        {
            for (var o = 0; o < outputs; o++)
            {
                y[o] += x[i] * w[(i * outputs) + o];
            }
        }

        return y;
    }

    private double[] LayerNorm(double[] x, string name)
    {
        var mean = x.Average();
        var variance = x.Select(v => (v - mean) * (v - mean)).Average();
        var inv = 1.0 / Math.Sqrt(variance + _eps);
        var g = _w[name + ".weight"];
        var b = _w[name + ".bias"];
        return x.Select((v, i) => ((v - mean) * inv * g[i]) + b[i]).ToArray();
    }

    private static double GeluNew(double x) => 0.5 * x * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (x + (0.044715 * x * x * x))));

    private static void Add(double[] x, double[] y)
    {
        for (var i = 0; i < x.Length; i++)
        {
            x[i] += y[i];
        }
    }
}
