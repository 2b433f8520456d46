namespace Sharpformer.Generation;

/// <summary>
/// One step of a streamed generation (<see cref="TextGenerator.StreamUpdatesAsync"/>): the text that became final at
/// this step, the token counts so far, and, on the last update only, why generation stopped.
/// </summary>
/// <param name="Text">Text that became final at this step (possibly empty: an incomplete character or a possible stop sequence is held back).</param>
/// <param name="PromptTokens">Tokens in the prompt as the model saw it (an empty prompt counts its BOS token).</param>
/// <param name="GeneratedTokens">Tokens generated so far, including a final stop token and the tokens of a trimmed stop sequence.</param>
/// <param name="Reason">Null until the last update; then why generation stopped.</param>
public sealed record GenerationUpdate(string Text, int PromptTokens, int GeneratedTokens, FinishReason? Reason);
