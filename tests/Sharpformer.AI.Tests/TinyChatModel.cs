using Sharpformer.IO.Config;
using Sharpformer.IO.SafeTensors;
using Sharpformer.Models.Gpt2;

namespace Sharpformer.AI.Tests;

/// <summary>
/// A tiny random GPT-2 (Gpt2LMHeadModel.FromConfig, seeded) saved as a Hugging Face folder with the byte-level
/// tokenizer of examples/tiny-gpt2 (256 bytes + &lt;|endoftext|&gt;), so the chat client loads it like any model.
/// </summary>
internal static class TinyChatModel
{
    public const int Positions = 256;

    private static readonly Lazy<string> Lazy = new(() => Write(Path.Combine(Path.GetTempPath(), $"sharpformer-ai-tiny-gpt2-{Guid.NewGuid():N}"), withTemplate: false));

    /// <summary>The folder (written once per test run).</summary>
    public static string Folder => Lazy.Value;

    /// <summary>
    /// Writes the folder; <paramref name="withTemplate"/> adds a Jinja chat_template to tokenizer_config.json (a
    /// "&lt;|role|&gt;\ncontent\n" transcript after bos_token, the generation prompt "&lt;|assistant|&gt;\n", and
    /// raise_exception for tool messages).
    /// </summary>
    public static string Write(string folder, bool withTemplate)
    {
        Directory.CreateDirectory(folder);
        string config = $$"""
            {"model_type": "gpt2", "vocab_size": 257, "n_positions": {{Positions}}, "n_embd": 32, "n_layer": 2, "n_head": 2,
             "activation_function": "gelu_new", "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0,
             "initializer_range": 0.5, "bos_token_id": 256, "eos_token_id": 256}
            """;
        File.WriteAllText(Path.Combine(folder, "config.json"), config);
        var model = Gpt2LMHeadModel.FromConfig((Gpt2Config)ModelConfig.Parse(config), seed: 11);
        SafeTensorsWriter.Write(Path.Combine(folder, "model.safetensors"), model.StateDict().Select(kv => (kv.Key, kv.Value)));
        string example = Path.Combine(RepoRoot(), "examples", "tiny-gpt2");
        foreach (var name in new[] { "vocab.json", "merges.txt", "tokenizer_config.json" })
        {
            File.Copy(Path.Combine(example, name), Path.Combine(folder, name), overwrite: true);
        }

        if (withTemplate)
        {
            File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), """
                {"tokenizer_class": "GPT2Tokenizer", "eos_token": "<|endoftext|>", "bos_token": "<|endoftext|>",
                 "chat_template": "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'tool' %}{{ raise_exception('This template has no place for tool messages.') }}{% endif %}<|{{ message['role'] }}|>\n{{ message['content'] | trim }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"}
                """);
        }

        return folder;
    }

    public static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Sharpformer.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"Cannot find the repository root (Sharpformer.slnx) above {AppContext.BaseDirectory}.");
    }
}
