using System.Diagnostics;
using System.Text;
using Sharpformer.IO.Config;
using Sharpformer.Models;
using Sharpformer.Models.Seq2Seq;
using Sharpformer.NN;
using Sharpformer.Pipelines;
using Sharpformer.Text.Training;

namespace Sharpformer.Cli.Tests;

/// <summary>
/// A temporary shipped-models root (<see cref="ShippedModels.RootVariable"/>) with tiny random stand-ins for
/// sharpformer/bert-mini-en, sharpformer/gpt-mini-en and sharpformer/transformer-de-en: tokenizers trained here by our own trainers on a few
/// sentences, models built by FromConfig with a seed and saved as safetensors. The real shipped models are trained by
/// the project; these test the mechanism (name resolution, offline fallback, the tour) without them.
/// </summary>
public sealed class ShippedModelFolders : IDisposable
{
    private static readonly string[] Sentences =
    [
        "The heart is a muscular organ that pumps blood through the body.",
        "The liver is a large organ; the heart is a hollow organ.",
        "Blood flows from the heart to the lungs and back to the heart.",
        "A heart attack happens when blood cannot reach the heart muscle.",
        "The brain, the heart and the lungs are vital organs.",
    ];

    private static readonly string[] Parallel =
    [
        "Das Herz ist ein Organ.", "The heart is an organ.", "Ich habe heute keine Zeit.", "I have no time today.",
        "Wo ist der Bahnhof?", "Where is the station?",
    ];

    public ShippedModelFolders()
    {
        Root = Path.Combine(Path.GetTempPath(), $"sharpformer-shipped-{Guid.NewGuid():N}");
        var corpus = Path.Combine(Root, "corpus.txt");
        Directory.CreateDirectory(Root);
        File.WriteAllText(corpus, string.Join('\n', Enumerable.Repeat(Sentences, 4).SelectMany(s => s)) + "\n", new UTF8Encoding(false));

        Bert = Path.Combine(Root, "sharpformer", "bert-mini-en");
        var wordPiece = TokenizerTrainer.Train([corpus], new TokenizerTrainingOptions { VocabSize = 150, MinFrequency = 1, ModelMaxLength = 64 });
        wordPiece.Save(Bert);
        WriteModel(Bert, $$"""
            {"model_type": "bert", "architectures": ["BertForMaskedLM"], "vocab_size": {{wordPiece.Result.Vocabulary.Count}}, "hidden_size": 16,
             "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 64, "type_vocab_size": 2}
            """, config => (Module)AutoModelForMaskedLM.FromConfig(config, seed: 11));

        Gpt = Path.Combine(Root, "sharpformer", "gpt-mini-en");
        var bpe = TokenizerTrainer.Train([corpus], new TokenizerTrainingOptions { Kind = TokenizerKind.ByteLevelBpe, VocabSize = 320, MinFrequency = 1, ModelMaxLength = 64 });
        bpe.Save(Gpt);
        WriteModel(Gpt, $$"""
            {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": {{bpe.Result.Vocabulary.Count}}, "n_embd": 16, "n_layer": 2,
             "n_head": 2, "n_positions": 64, "bos_token_id": 0, "eos_token_id": 0}
            """, config => (Module)AutoModelForCausalLM.FromConfig(config, seed: 12));

        Translator = Path.Combine(Root, "sharpformer", "transformer-de-en");
        var parallel = Path.Combine(Root, "parallel.txt");
        File.WriteAllText(parallel, string.Join('\n', Enumerable.Repeat(Parallel, 4).SelectMany(s => s)) + "\n", new UTF8Encoding(false));
        var shared = TokenizerTrainer.Train([parallel], new TokenizerTrainingOptions { Kind = TokenizerKind.ByteLevelBpe, VocabSize = 300, MinFrequency = 1, ModelMaxLength = 64 });
        shared.Save(Translator);
        TransformerForConditionalGeneration.FromConfig(
            new TransformerConfig
            {
                VocabSize = shared.Result.Vocabulary.Count,
                DModel = 16,
                EncoderLayers = 1,
                DecoderLayers = 2,
                NumAttentionHeads = 2,
                FfnDim = 32,
                MaxPositionEmbeddings = 64,
                PadTokenId = 0,
                BosTokenId = 0,
                EosTokenId = 0,
                DecoderStartTokenId = 0,
                InitStd = 0.3f,
            },
            seed: 13).SavePretrained(Translator);

        EmptyCache = Directory.CreateDirectory(Path.Combine(Root, "empty-hf-cache")).FullName;
        SharpformerCache = Path.Combine(Root, "sharpformer-cache");
    }

    /// <summary>The shipped-models root to put in SHARPFORMER_SHIPPED_MODELS.</summary>
    public string Root { get; }

    /// <summary>root/sharpformer/bert-mini-en.</summary>
    public string Bert { get; }

    /// <summary>root/sharpformer/gpt-mini-en.</summary>
    public string Gpt { get; }

    /// <summary>root/sharpformer/transformer-de-en.</summary>
    public string Translator { get; }

    /// <summary>An empty Hugging Face cache.</summary>
    public string EmptyCache { get; }

    /// <summary>SHARPFORMER_CACHE for the child processes (the bundled MiniLM is imported there once for the class).</summary>
    public string SharpformerCache { get; }

    public void Dispose()
    {
        if (Directory.Exists(Root)) Directory.Delete(Root, recursive: true);
    }

    private static void WriteModel(string folder, string configJson, Func<ModelConfig, Module> build)
    {
        File.WriteAllText(Path.Combine(folder, "config.json"), configJson);
        var model = build(ModelConfig.Parse(configJson));
        model.SaveSafetensors(Path.Combine(folder, "model.safetensors"), new Dictionary<string, string> { ["format"] = "pt" });
    }

    /// <summary>
    /// Runs the sharpformer command in a child process offline (HF_HUB_OFFLINE=1, an empty HF cache, a Hub endpoint
    /// that refuses connections) with <paramref name="shippedRoot"/> as the shipped-models root.
    /// </summary>
    public Task<(int Exit, string Out, string Err)> RunOfflineAsync(string shippedRoot, params string[] args) =>
        RunAsync(shippedRoot, offlineMode: true, args);

    /// <summary>
    /// Runs the sharpformer command in a child process with an empty HF cache and a Hub endpoint that refuses
    /// connections; <paramref name="offlineMode"/> sets HF_HUB_OFFLINE=1 (else the refused connection is the only hint).
    /// </summary>
    public async Task<(int Exit, string Out, string Err)> RunAsync(string shippedRoot, bool offlineMode, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add("exec");
        start.ArgumentList.Add(typeof(Program).Assembly.Location);
        foreach (var arg in args) start.ArgumentList.Add(arg);
        start.Environment["HF_HOME"] = Path.Combine(Root, "hf-home");
        start.Environment["HF_HUB_CACHE"] = EmptyCache;
        start.Environment["HF_ENDPOINT"] = "http://127.0.0.1:9";
        start.Environment["HF_HUB_OFFLINE"] = offlineMode ? "1" : "0";
        start.Environment["SHARPFORMER_CACHE"] = SharpformerCache;
        start.Environment[ShippedModels.RootVariable] = shippedRoot;
        start.WorkingDirectory = Root;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await stdout, await stderr);
    }
}
