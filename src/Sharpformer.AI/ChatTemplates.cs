namespace Sharpformer.AI;

/// <summary>The error for a model folder with no usable chat template and no prompt formatter.</summary>
internal static class ChatTemplates
{
    /// <summary>The error for a model the chat client cannot format prompts for.</summary>
    /// <param name="model">The model's name or folder.</param>
    /// <param name="templateError">Why its chat template could not be loaded, or null when it has none.</param>
    public static NotSupportedException Missing(string model, string? templateError) => new((templateError is null
        ? $"'{model}' has no chat template (no chat_template in tokenizer_config.json, no chat_template.jinja), so there is no format to turn messages into its prompt. "
        : $"'{model}' has a chat template that cannot be rendered: {templateError}. ")
        + $"Pass a prompt formatter: LocalChatClientOptions.PromptFormatter in code, --prompt-format {TranscriptPromptFormatter.Name} in the chat verb (a plain User:/Assistant: transcript for a base model).");
}
