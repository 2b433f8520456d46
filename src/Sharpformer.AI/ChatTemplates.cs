using System.Text.Json;

namespace Sharpformer.AI;

/// <summary>Where a Hugging Face model folder keeps its chat template, if it has one.</summary>
internal static class ChatTemplates
{
    /// <summary>
    /// Describes the folder's chat template: "chat_template.jinja", "tokenizer_config.json chat_template", or null when
    /// the model has none.
    /// </summary>
    public static string? Find(string folder)
    {
        if (File.Exists(Path.Combine(folder, "chat_template.jinja")))
        {
            return "chat_template.jinja";
        }

        string config = Path.Combine(folder, "tokenizer_config.json");
        if (!File.Exists(config))
        {
            return null;
        }

        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(config));
            return document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("chat_template", out var template)
                && template.ValueKind is JsonValueKind.String or JsonValueKind.Array
                ? "tokenizer_config.json chat_template"
                : null;
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{config} is not valid JSON ({e.Message}); fix or delete it.", e);
        }
    }

    /// <summary>The error for a model the chat client cannot format prompts for.</summary>
    public static NotSupportedException Missing(string model, string? template) => new(template is null
        ? $"'{model}' has no chat template (no chat_template in tokenizer_config.json, no chat_template.jinja), so there is no format to turn messages into its prompt. "
            + $"Pass a prompt formatter: LocalChatClientOptions.PromptFormatter in code, --prompt-format {TranscriptPromptFormatter.Name} in the chat verb (a plain User:/Assistant: transcript for a base model)."
        : $"'{model}' has a Jinja chat template ({template}), but Sharpformer cannot render Jinja templates yet. "
            + $"Pass a prompt formatter that writes the same format: LocalChatClientOptions.PromptFormatter in code, or --prompt-format {TranscriptPromptFormatter.Name} in the chat verb (a plain transcript the model was not trained on).");
}
