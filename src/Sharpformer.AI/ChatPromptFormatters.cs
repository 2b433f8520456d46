using System.Text;
using Microsoft.Extensions.AI;

namespace Sharpformer.AI;

/// <summary>
/// Turns a conversation into the prompt text a causal LM continues: what a model's chat template does.
/// <see cref="ChatTemplatePromptFormatter"/> renders the model's own template; <see cref="TranscriptPromptFormatter"/>
/// is for base models that have none (see <see cref="LocalChatClientOptions.PromptFormatter"/>).
/// </summary>
public interface IChatPromptFormatter
{
    /// <summary>
    /// Texts that end the assistant's turn in this format (e.g. the start of the next user turn); the chat client adds
    /// them to the caller's stop sequences.
    /// </summary>
    IReadOnlyList<string> StopSequences { get; }

    /// <summary>Messages → prompt text, ending where the assistant's reply begins.</summary>
    /// <param name="messages">The conversation so far (system, user and assistant messages; text only).</param>
    /// <returns>The prompt text.</returns>
    string Format(IReadOnlyList<ChatMessage> messages);
}

/// <summary>
/// A plain transcript for base models that were never trained to chat (GPT-2, a model trained with <c>train clm</c>):
/// <c>System: …</c>, then <c>User: …</c> and <c>Assistant: …</c> lines, ending with <c>Assistant:</c>. The reply
/// stops where the model starts a new <c>User:</c> line. This is not any model's chat template: a model that has one
/// answers best in its own format.
/// </summary>
public sealed class TranscriptPromptFormatter : IChatPromptFormatter
{
    /// <summary>The one instance (the format has no settings).</summary>
    public static TranscriptPromptFormatter Instance { get; } = new();

    /// <summary>The name the <c>chat --prompt-format</c> option uses for this format.</summary>
    public const string Name = "transcript";

    /// <inheritdoc/>
    public IReadOnlyList<string> StopSequences { get; } = ["\nUser:"];

    /// <inheritdoc/>
    public string Format(IReadOnlyList<ChatMessage> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var prompt = new StringBuilder();
        foreach (var message in messages)
        {
            string speaker = message.Role == ChatRole.System ? "System"
                : message.Role == ChatRole.Assistant ? "Assistant"
                : message.Role == ChatRole.User ? "User"
                : throw new ArgumentException($"The transcript format has no place for a '{message.Role}' message; use system, user and assistant messages.", nameof(messages));
            prompt.Append(speaker).Append(": ").Append(message.Text.Trim()).Append('\n');
        }

        prompt.Append("Assistant:");
        return prompt.ToString();
    }
}
