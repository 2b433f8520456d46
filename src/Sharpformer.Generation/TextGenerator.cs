using System.Runtime.CompilerServices;
using Sharpformer.Models;
using Sharpformer.Text;

namespace Sharpformer.Generation;

/// <summary>
/// Generates continuations from a causal language model: greedy, sampling (temperature, top-k, top-p, min-p,
/// repetition penalty, seeded), beam search, stop tokens and stop sequences, and streaming text. Not thread-safe (the
/// model reuses its buffers); use one generator per thread.
/// </summary>
public sealed class TextGenerator
{
    /// <summary>Wraps <paramref name="model"/>.</summary>
    /// <param name="model">The model.</param>
    public TextGenerator(ICausalLM model)
    {
        ArgumentNullException.ThrowIfNull(model);
        Model = model;
    }

    /// <summary>The model.</summary>
    public ICausalLM Model { get; }

    /// <summary>
    /// Checks, before any work, that a prompt of <paramref name="promptTokens"/> tokens plus MaxNewTokens fits the
    /// model's context and that the options are valid (generation checks the same).
    /// </summary>
    /// <param name="promptTokens">The prompt's length in tokens.</param>
    /// <param name="options">The options.</param>
    /// <exception cref="ArgumentException">An option is invalid, or the prompt (plus MaxNewTokens) does not fit; the message says by how much.</exception>
    public void EnsureFits(int promptTokens, GenerationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        DecodingSession.CheckContext(Model, [new int[Math.Max(1, promptTokens)]], options);
    }

    /// <summary>Token ids in → new token ids out, for one prompt. Stop sequences need text: see the tokenizer overloads.</summary>
    /// <param name="prompt">[T] prompt ids.</param>
    /// <param name="options">The options (validated).</param>
    /// <param name="ct">Stops generation early (the result so far is returned, reason Cancelled).</param>
    /// <returns>The continuation.</returns>
    /// <exception cref="ArgumentException">An option is invalid, or the prompt (plus MaxNewTokens) does not fit the context.</exception>
    public GeneratedSequence Generate(IReadOnlyList<int> prompt, GenerationOptions options, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        return GenerateBatch([prompt], options, padTokenId: 0, ct)[0];
    }

    /// <summary>
    /// B prompts of any lengths, decoded together with left padding and an attention mask (beam search runs them one
    /// after another).
    /// </summary>
    /// <param name="prompts">B prompts of token ids.</param>
    /// <param name="options">The options (validated).</param>
    /// <param name="padTokenId">The id fed at padding positions (masked out, so any valid id works; HF uses pad or EOS).</param>
    /// <param name="ct">Stops generation early.</param>
    /// <returns>B continuations.</returns>
    /// <exception cref="ArgumentException">An option is invalid, or a prompt (plus MaxNewTokens) does not fit the context.</exception>
    public IReadOnlyList<GeneratedSequence> GenerateBatch(IReadOnlyList<IReadOnlyList<int>> prompts, GenerationOptions options, int padTokenId = 0, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        CheckSingleReturn(options);
        var stopIds = options.StopTokenIds ?? [];
        if (options.NumBeams > 1)
        {
            return [.. prompts.Select(p => BeamSearch.Run(Model, p, options, stopIds, ct))];
        }

        var session = new DecodingSession(Model, prompts, options, stopIds, padTokenId);
        while (!ct.IsCancellationRequested && session.Step())
        {
        }

        return [.. Enumerable.Range(0, session.Batch).Select(b => new GeneratedSequence(session.Generated(b), session.Finished(b) ?? FinishReason.Cancelled))];
    }

    /// <summary>Text in, text out for one prompt: stop tokens default to the tokenizer's EOS, stop sequences are trimmed.</summary>
    /// <param name="tokenizer">The model's tokenizer.</param>
    /// <param name="prompt">The prompt text.</param>
    /// <param name="options">The options (validated).</param>
    /// <param name="ct">Stops generation early.</param>
    /// <returns>The generated text (without the prompt).</returns>
    /// <exception cref="ArgumentException">An option is invalid, or the prompt (plus MaxNewTokens) does not fit the context.</exception>
    public string Generate(TextTokenizer tokenizer, string prompt, GenerationOptions options, CancellationToken ct = default) =>
        GenerateBatch(tokenizer, [prompt], options, ct)[0];

    /// <summary>Text in, text out for B prompts (left-padded batch; see <see cref="Generate(TextTokenizer, string, GenerationOptions, CancellationToken)"/>).</summary>
    /// <param name="tokenizer">The model's tokenizer.</param>
    /// <param name="prompts">The prompt texts.</param>
    /// <param name="options">The options (validated).</param>
    /// <param name="ct">Stops generation early.</param>
    /// <returns>B generated texts.</returns>
    /// <exception cref="ArgumentException">An option is invalid, or a prompt (plus MaxNewTokens) does not fit the context.</exception>
    public IReadOnlyList<string> GenerateBatch(TextTokenizer tokenizer, IReadOnlyList<string> prompts, GenerationOptions options, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(options);
        options = WithTokenizerDefaults(tokenizer, options);
        var ids = prompts.Select(p => PromptIds(tokenizer, p)).ToList();
        if (options.NumBeams > 1)
        {
            // Beam search picks whole hypotheses, so stop sequences cut the chosen text afterwards.
            return [.. GenerateBatch(ids, options, 0, ct).Select(s => CutAtStop(tokenizer, s.Tokens, options.StopSequences))];
        }

        options.Validate();
        CheckSingleReturn(options);
        var session = new DecodingSession(Model, ids, options, options.StopTokenIds ?? [], PadId(tokenizer, options));
        var texts = prompts.Select(_ => new StreamingDetokenizer(tokenizer, options.StopSequences)).ToArray();
        var pushed = new int[texts.Length];
        while (!ct.IsCancellationRequested && session.Step())
        {
            for (int b = 0; b < texts.Length; b++)
            {
                // Only sequences that got a token this step (finished ones are fed padding).
                if (pushed[b] < session.Generated(b).Count)
                {
                    pushed[b]++;
                    PushLast(session, texts[b], b);
                }
            }
        }

        return [.. texts.Select(t => t.Text)];
    }

    /// <summary>
    /// Streams the continuation of <paramref name="prompt"/> as text pieces, each yielded as soon as it is complete
    /// UTF-8 and cannot be part of a stop sequence. Greedy or sampling (not beam search). Cancelling
    /// <paramref name="ct"/> ends the stream with <see cref="OperationCanceledException"/>.
    /// </summary>
    /// <param name="tokenizer">The model's tokenizer.</param>
    /// <param name="prompt">The prompt text.</param>
    /// <param name="options">The options (validated; NumBeams must be 1).</param>
    /// <param name="ct">Cancels generation.</param>
    /// <returns>The text pieces; concatenated they equal <see cref="Generate(TextTokenizer, string, GenerationOptions, CancellationToken)"/>'s result.</returns>
    /// <exception cref="ArgumentException">An option is invalid, NumBeams &gt; 1, or the prompt does not fit the context.</exception>
    public async IAsyncEnumerable<string> GenerateStreamingAsync(TextTokenizer tokenizer, string prompt, GenerationOptions options,
        [EnumeratorCancellation] CancellationToken ct = default)
    {
        await foreach (var update in StreamUpdatesAsync(tokenizer, prompt, options, ct).ConfigureAwait(false))
        {
            if (update.Text.Length > 0)
            {
                yield return update.Text;
            }
        }
    }

    /// <summary>
    /// Streams the continuation of <paramref name="prompt"/> step by step, with token counts: one update per generated
    /// token (its <see cref="GenerationUpdate.Text"/> is the text that became final, often empty), then a last update
    /// holding the rest of the text and the <see cref="GenerationUpdate.Reason"/>. The texts concatenated equal
    /// <see cref="GenerateStreamingAsync"/>'s. Greedy or sampling (not beam search); cancelling <paramref name="ct"/>
    /// ends the stream with <see cref="OperationCanceledException"/>.
    /// </summary>
    /// <param name="tokenizer">The model's tokenizer.</param>
    /// <param name="prompt">The prompt text.</param>
    /// <param name="options">The options (validated; NumBeams must be 1).</param>
    /// <param name="ct">Cancels generation.</param>
    /// <returns>The updates; exactly the last one has a non-null reason.</returns>
    /// <exception cref="ArgumentException">An option is invalid, NumBeams &gt; 1, or the prompt does not fit the context.</exception>
    public async IAsyncEnumerable<GenerationUpdate> StreamUpdatesAsync(TextTokenizer tokenizer, string prompt, GenerationOptions options,
        [EnumeratorCancellation] CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(options);
        options = WithTokenizerDefaults(tokenizer, options);
        options.Validate();
        CheckSingleReturn(options);
        if (options.NumBeams > 1)
        {
            throw new ArgumentException("Streaming needs NumBeams = 1: beam search only knows its output at the end; call Generate instead.", nameof(options));
        }

        var promptIds = PromptIds(tokenizer, prompt);
        var session = new DecodingSession(Model, [promptIds], options, options.StopTokenIds ?? [], PadId(tokenizer, options));
        var text = new StreamingDetokenizer(tokenizer, options.StopSequences);
        FinishReason? reason = null;
        while (reason is null)
        {
            ct.ThrowIfCancellationRequested();
            // Each step is a burst of compute: run it off the caller's context so a UI thread stays responsive. A fresh
            // session always has a step to take, and every step either finishes the sequence or leaves one to take.
            await Task.Run(session.Step, ct).ConfigureAwait(false);
            string piece = PushLast(session, text, 0);
            reason = session.Finished(0);
            // The last step's piece goes out with whatever was held back.
            yield return new GenerationUpdate(reason is null ? piece : piece + text.Flush(), promptIds.Count, session.Generated(0).Count, reason);
        }
    }

    private static void CheckSingleReturn(GenerationOptions options)
    {
        if (options.NumReturnSequences != 1)
        {
            throw new ArgumentException($"GenerationOptions.NumReturnSequences = {options.NumReturnSequences}: TextGenerator returns one sequence per prompt; pass the prompt several times (sampling) or use Seq2SeqGenerator for encoder-decoders.", nameof(options));
        }
    }

    private static string PushLast(DecodingSession session, StreamingDetokenizer text, int b)
    {
        var generated = session.Generated(b);
        string piece = text.Push(generated[^1]);
        if (text.Stopped)
        {
            session.Finish(b, FinishReason.StopSequence);
        }

        return piece;
    }

    /// <summary>
    /// The prompt's ids; an empty prompt starts from the BOS token (GPT-2: &lt;|endoftext|&gt;) as HF does for
    /// unconditional generation. A prompt that already starts with the BOS token (a rendered chat template) does not
    /// get a second one from the tokenizer's post-processor (Llama's "&lt;s&gt; $A"): the double-BOS pitfall.
    /// </summary>
    internal static IReadOnlyList<int> PromptIds(TextTokenizer tokenizer, string prompt)
    {
        var encoding = tokenizer.Encode(prompt);
        var ids = encoding.Ids;
        int? bosId = tokenizer.SpecialTokens.Bos is { } bos ? tokenizer.TokenToId(bos) : null;
        if (ids.Count == 0 && bosId is { } start)
        {
            return [start];
        }

        if (ids.Count >= 2 && bosId is { } b && ids[0] == b && ids[1] == b && encoding.SpecialTokensMask[0] == 1)
        {
            return [.. ids.Skip(1)];
        }

        return [.. ids];
    }

    private static GenerationOptions WithTokenizerDefaults(TextTokenizer tokenizer, GenerationOptions options)
    {
        if (options.StopTokenIds is not null || tokenizer.SpecialTokens.Eos is not { } eos || tokenizer.TokenToId(eos) is not { } eosId)
        {
            return options;
        }

        return options with { StopTokenIds = [eosId] };
    }

    private static int PadId(TextTokenizer tokenizer, GenerationOptions options) =>
        tokenizer.PadTokenId ?? (options.StopTokenIds is { Count: > 0 } stops ? stops[0] : 0);

    private static string CutAtStop(TextTokenizer tokenizer, IReadOnlyList<int> tokens, IReadOnlyList<string> stops)
    {
        var text = new StreamingDetokenizer(tokenizer, stops);
        foreach (int token in tokens)
        {
            text.Push(token);
        }

        return text.Text;
    }
}
