using Sharpformer.Models;
using Sharpformer.Text;

namespace Sharpformer.Generation;

/// <summary>
/// HF's text-generation pipeline: a causal LM and its tokenizer; prompts in, generated texts out (batches are
/// left-padded with an attention mask, as decoder-only models need).
/// </summary>
public sealed class TextGenerationPipeline
{
    private readonly TextGenerator _generator;

    /// <summary>Pairs a model with its tokenizer.</summary>
    /// <param name="model">The model.</param>
    /// <param name="tokenizer">Its tokenizer.</param>
    public TextGenerationPipeline(ICausalLM model, TextTokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        _generator = new TextGenerator(model);
        Tokenizer = tokenizer;
    }

    /// <summary>The tokenizer.</summary>
    public TextTokenizer Tokenizer { get; }

    /// <summary>The generator (for token-level calls and streaming).</summary>
    public TextGenerator Generator => _generator;

    /// <summary>Generates one continuation per prompt.</summary>
    /// <param name="prompts">The prompt texts.</param>
    /// <param name="options">The options; null means <see cref="GenerationOptions"/>' defaults (greedy, 20 tokens).</param>
    /// <param name="ct">Stops generation early.</param>
    /// <returns>The generated texts, prompts excluded, in prompt order.</returns>
    /// <exception cref="ArgumentException">An option is invalid, or a prompt (plus MaxNewTokens) does not fit the context.</exception>
    public IReadOnlyList<string> Run(IReadOnlyList<string> prompts, GenerationOptions? options = null, CancellationToken ct = default) =>
        _generator.GenerateBatch(Tokenizer, prompts, options ?? new GenerationOptions(), ct);

    /// <summary>Streams one continuation; see <see cref="TextGenerator.GenerateStreamingAsync"/>.</summary>
    /// <param name="prompt">The prompt text.</param>
    /// <param name="options">The options; null means the defaults.</param>
    /// <param name="ct">Cancels generation.</param>
    /// <returns>Text pieces as they become complete UTF-8.</returns>
    public IAsyncEnumerable<string> StreamAsync(string prompt, GenerationOptions? options = null, CancellationToken ct = default) =>
        _generator.GenerateStreamingAsync(Tokenizer, prompt, options ?? new GenerationOptions(), ct);
}
