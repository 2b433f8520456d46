using Sharpformer.Bench.Peers;
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
    private static readonly Lazy<string> F16FolderLazy = new(MakeF16);

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

    /// <summary>
    /// The same model saved with every 2-D tensor (wte, wpe, the four matrices per block) stored as F16 — the tensors an
    /// F16 GGUF export stores as F16 — so the export is lossless and llama.cpp and our F16 model hold identical weights.
    /// </summary>
    public static string F16Folder => F16FolderLazy.Value;

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
        Gpt2VocabFiles.Write(dir);
        return dir;
    }

    private static string MakeF16()
    {
        var dir = NewFolder("gpt2-random-f16");
        foreach (var name in new[] { "config.json", "vocab.json", "merges.txt" })
        {
            File.Copy(Path.Combine(Folder, name), Path.Combine(dir, name));
        }

        SafeTensorsWriter.Write(Path.Combine(dir, "model.safetensors"), RandomWeights().Select(t => (t.Item1, t.Item2.Rank == 2 ? t.Item2.To(DType.F16) : t.Item2)));
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
}
