using Sharpformer.IO.SafeTensors;
using Sharpformer.Tensors;

namespace Sharpformer.Pipelines.Tests;

/// <summary>
/// A small random BertForMaskedLM folder (config.json, model.safetensors, vocab.txt, tokenizer_config.json) with HF's
/// <c>bert.</c>-prefixed names and the decoder tied to the word embeddings (no cls.predictions.decoder.weight).
/// Seeded, so it is the same each run.
/// </summary>
internal static class RandomBertMlm
{
    public const int Hidden = 32, Layers = 2, Heads = 4, Intermediate = 64, MaxPositions = 64, ModelMaxLength = 24;

    public static readonly string[] Vocab =
    [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "heart", "is", "a", "organ", ".", "cardiac", "large",
        "major", "living", "mechanical", "small", "##ly", "brain", "un", "##real", ",", "cat", "sat", "on", "mat",
    ];

    /// <summary>Writes the folder; <paramref name="withHead"/> false leaves out cls.predictions (a bare BertModel).</summary>
    public static string Write(string folder, bool withHead = true)
    {
        Directory.CreateDirectory(folder);
        var random = new Random(1234);
        var tensors = new List<(string, Tensor)>();
        void Add(string name, params int[] dims) => tensors.Add((name, Tensor.RandomNormal(dims, random, std: 0.3f)));
        void AddNorm(string prefix)
        {
            tensors.Add(($"{prefix}.weight", Tensor.RandomNormal(new[] { Hidden }, random, mean: 1f, std: 0.1f)));
            tensors.Add(($"{prefix}.bias", Tensor.RandomNormal(new[] { Hidden }, random, std: 0.1f)));
        }

        Add("bert.embeddings.word_embeddings.weight", Vocab.Length, Hidden);
        Add("bert.embeddings.position_embeddings.weight", MaxPositions, Hidden);
        Add("bert.embeddings.token_type_embeddings.weight", 2, Hidden);
        AddNorm("bert.embeddings.LayerNorm");
        for (var l = 0; l < Layers; l++)
        {
            var p = $"bert.encoder.layer.{l}";
            foreach (var proj in new[] { "attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense" })
            {
                Add($"{p}.{proj}.weight", Hidden, Hidden);
                Add($"{p}.{proj}.bias", Hidden);
            }

            AddNorm($"{p}.attention.output.LayerNorm");
            Add($"{p}.intermediate.dense.weight", Intermediate, Hidden);
            Add($"{p}.intermediate.dense.bias", Intermediate);
            Add($"{p}.output.dense.weight", Hidden, Intermediate);
            Add($"{p}.output.dense.bias", Hidden);
            AddNorm($"{p}.output.LayerNorm");
        }

        if (withHead)
        {
            Add("cls.predictions.transform.dense.weight", Hidden, Hidden);
            Add("cls.predictions.transform.dense.bias", Hidden);
            AddNorm("cls.predictions.transform.LayerNorm");
            Add("cls.predictions.bias", Vocab.Length);
        }

        SafeTensorsWriter.Write(Path.Combine(folder, "model.safetensors"), tensors);
        File.WriteAllText(Path.Combine(folder, "config.json"), $$"""
            {"model_type": "bert", "architectures": ["{{(withHead ? "BertForMaskedLM" : "BertModel")}}"], "vocab_size": {{Vocab.Length}},
             "hidden_size": {{Hidden}}, "num_hidden_layers": {{Layers}}, "num_attention_heads": {{Heads}},
             "intermediate_size": {{Intermediate}}, "hidden_act": "gelu", "max_position_embeddings": {{MaxPositions}},
             "type_vocab_size": 2, "layer_norm_eps": 1e-12, "pad_token_id": 0}
            """);
        File.WriteAllLines(Path.Combine(folder, "vocab.txt"), Vocab);
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"),
            $"{{\"do_lower_case\": true, \"model_max_length\": {ModelMaxLength}, \"tokenizer_class\": \"BertTokenizer\"}}");
        return folder;
    }
}
