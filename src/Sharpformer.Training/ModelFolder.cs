using System.Text.Json;
using System.Text.Json.Nodes;
using Sharpformer.IO.Config;
using Sharpformer.IO.Hub;
using Sharpformer.Models;
using Sharpformer.NN;
using Sharpformer.Training.Checkpoints;

namespace Sharpformer.Training;

/// <summary>
/// How a training run writes a model as a Hugging Face folder (config.json, model.safetensors, the tokenizer files):
/// the language models of <c>train clm|mlm</c> and the task heads (<see cref="IPretrainedModel"/>) alike.
/// </summary>
public static class ModelFolder
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>The tokenizer files a saved folder carries: the Hub client's list of them, and added_tokens.json.</summary>
    public static IReadOnlyList<string> TokenizerFiles { get; } =
        [.. HubClient.OptionalModelFiles.Where(f => f != "generation_config.json"), "added_tokens.json"];

    /// <summary>
    /// config.json as a run saves it. A task head (<see cref="IPretrainedModel"/>) gives its own
    /// (<see cref="IPretrainedModel.ConfigJson"/>: the loaded file's keys, its class, the label keys); any other model
    /// gets <paramref name="configSource"/>'s keys with <c>architectures</c> set to its class. Then torch_dtype float32
    /// and, when <paramref name="dropout"/> is set, the architecture's dropout keys.
    /// </summary>
    /// <param name="configSource">The config.json (or its folder) the run started from; not read for a task head.</param>
    /// <param name="config">The validated config (its model_type picks the dropout keys).</param>
    /// <param name="model">The model being trained.</param>
    /// <param name="dropout">A dropout probability that overrides the file's, or null.</param>
    /// <returns>The JSON to write.</returns>
    public static JsonObject SavedConfig(string? configSource, ModelConfig config, Module model, float? dropout)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(model);
        JsonObject json;
        if (model is IPretrainedModel pretrained)
        {
            json = pretrained.ConfigJson();
        }
        else
        {
            ArgumentException.ThrowIfNullOrEmpty(configSource);
            string path = Directory.Exists(configSource) ? Path.Combine(configSource, "config.json") : configSource;
            json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            json["architectures"] = new JsonArray(model.GetType().Name switch
            {
                "Gpt2LMHeadModel" => "GPT2LMHeadModel",
                "LlamaForCausalLM" => config.ModelType switch
                {
                    "mistral" => "MistralForCausalLM",
                    "qwen2" => "Qwen2ForCausalLM",
                    "phi3" => "Phi3ForCausalLM",
                    _ => "LlamaForCausalLM",
                },
                var name => name,
            });
        }

        json["torch_dtype"] = "float32";
        if (dropout is float p)
        {
            string[] keys = config.ModelType switch
            {
                "gpt2" => ["resid_pdrop", "embd_pdrop", "attn_pdrop"],
                "distilbert" => ["dropout", "attention_dropout"],
                "llama" or "mistral" or "qwen2" or "phi3" => ["attention_dropout"],
                _ => ["hidden_dropout_prob", "attention_probs_dropout_prob"],
            };
            foreach (var key in keys) json[key] = p;
        }

        return json;
    }

    /// <summary>
    /// Writes config.json (atomically), model.safetensors (F32, HF names) and the tokenizer files of
    /// <paramref name="tokenizerFolder"/> into <paramref name="folder"/>. For a task head the label keys and
    /// problem_type are taken from the model now (HF records problem_type when the first labels decide it).
    /// </summary>
    /// <param name="folder">An existing folder (a checkpoint's temporary folder or the run's output).</param>
    /// <param name="model">The model.</param>
    /// <param name="config">config.json from <see cref="SavedConfig"/>.</param>
    /// <param name="tokenizerFolder">Where the tokenizer files are, or null to write none.</param>
    public static void Write(string folder, Module model, JsonObject config, string? tokenizerFolder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(config);
        if (model is IPretrainedModel pretrained)
        {
            config = (JsonObject)config.DeepClone();
            var now = pretrained.ConfigJson();
            foreach (var key in new[] { "architectures", "id2label", "label2id", "num_labels", "problem_type" })
            {
                if (now[key] is { } value) config[key] = value.DeepClone();
                else config.Remove(key);
            }
        }

        CheckpointStore.WriteAtomically(Path.Combine(folder, "config.json"), s => JsonSerializer.Serialize(s, config, Indented));
        model.SaveSafetensors(Path.Combine(folder, "model.safetensors"), new Dictionary<string, string> { ["format"] = "pt" });
        if (tokenizerFolder is null) return;
        foreach (var name in TokenizerFiles)
        {
            string source = Path.Combine(tokenizerFolder, name);
            if (File.Exists(source)) File.Copy(source, Path.Combine(folder, name), overwrite: true);
        }
    }
}
