namespace Sharpformer.AI;

/// <summary>The error for a model folder with no chat template and no prompt formatter.</summary>
internal static class ChatTemplates
{
    /// <summary>The error for a model the chat client cannot format prompts for.</summary>
    public static NotSupportedException Missing(string model) => new(
        $"'{model}' has no chat template (no chat_template in tokenizer_config.json, no chat_template.jinja), so there is no format to turn messages into its prompt. "
        + $"Pass a prompt formatter: LocalChatClientOptions.PromptFormatter in code, --prompt-format {TranscriptPromptFormatter.Name} in the chat verb (a plain User:/Assistant: transcript for a base model).");
}
