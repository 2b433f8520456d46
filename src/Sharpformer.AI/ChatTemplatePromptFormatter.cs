using Microsoft.Extensions.AI;
using Sharpformer.Text;

namespace Sharpformer.AI;

/// <summary>
/// Formats a conversation with the model's own chat template (<see cref="TextTokenizer.ChatTemplate"/>), as
/// transformers' <c>apply_chat_template(messages, add_generation_prompt=True)</c> does; the reply stops at the
/// template's end-of-sequence token.
/// </summary>
public sealed class ChatTemplatePromptFormatter : IChatPromptFormatter
{
    private readonly ChatTemplate _template;

    /// <summary>Wraps a chat template.</summary>
    /// <param name="template">The model's template (e.g. <c>tokenizer.ChatTemplate</c>).</param>
    public ChatTemplatePromptFormatter(ChatTemplate template)
    {
        ArgumentNullException.ThrowIfNull(template);
        _template = template;
        StopSequences = template.EosToken is { Length: > 0 } eos ? [eos] : [];
    }

    /// <summary>The template's end-of-sequence token (tokenizer config <c>eos_token</c>), when it names one.</summary>
    public IReadOnlyList<string> StopSequences { get; }

    /// <inheritdoc/>
    /// <exception cref="ArgumentException">The template rejected the conversation (e.g. roles that do not alternate); the message is the template's.</exception>
    public string Format(IReadOnlyList<ChatMessage> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        try
        {
            return _template.Render(messages.Select(m => (m.Role.Value, m.Text)), new ChatTemplateOptions { AddGenerationPrompt = true });
        }
        catch (Text.Jinja.JinjaRaisedException e)
        {
            throw new ArgumentException($"The model's chat template rejected the conversation: {e.Message}", nameof(messages), e);
        }
    }
}
