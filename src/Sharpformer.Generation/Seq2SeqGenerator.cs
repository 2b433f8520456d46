using Sharpformer.Models;

namespace Sharpformer.Generation;

/// <summary>
/// Generation for encoder-decoder models (<see cref="ISeq2SeqLM"/>) with the semantics of Hugging Face's
/// <c>generate</c> for encoder-decoders: the encoder runs once per batch, the decoder starts from the decoder start
/// token and appends one token per step; greedy, sampling, or beam search (length penalty, early stopping,
/// num_return_sequences); no-repeat n-grams, min new tokens, repetition penalty, the model's forced BOS/EOS tokens.
/// <see cref="GenerationOptions.MaxNewTokens"/> counts generated tokens (HF's max_length for encoder-decoders is one
/// more: it counts the decoder start token). Not thread-safe (the model reuses its buffers).
/// </summary>
public sealed class Seq2SeqGenerator
{
    /// <summary>Wraps <paramref name="model"/>.</summary>
    /// <param name="model">The encoder-decoder.</param>
    public Seq2SeqGenerator(ISeq2SeqLM model)
    {
        ArgumentNullException.ThrowIfNull(model);
        Model = model;
    }

    /// <summary>The model.</summary>
    public ISeq2SeqLM Model { get; }

    /// <summary>One source in, its <see cref="GenerationOptions.NumReturnSequences"/> outputs out (best first for beam search).</summary>
    /// <param name="source">[S] source token ids (EOS included when the model's tokenizer adds it).</param>
    /// <param name="options">The options (validated).</param>
    /// <param name="ct">Stops generation early (reason Cancelled).</param>
    /// <returns>The generated sequences: new tokens without the decoder start token, a final stop token included.</returns>
    /// <exception cref="ArgumentException">An option is invalid, the source is empty or longer than the model's positions, or MaxNewTokens does not fit.</exception>
    public IReadOnlyList<GeneratedSequence> Generate(IReadOnlyList<int> source, GenerationOptions options, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        return GenerateBatch([source], options, null, ct)[0];
    }

    /// <summary>
    /// B sources in, B lists of outputs out. Greedy and sampling encode and decode the batch together (right-padded
    /// sources, finished rows fed padding); beam search runs the sources one after another, NumBeams rows each.
    /// </summary>
    /// <param name="sources">B sources of token ids.</param>
    /// <param name="options">The options (validated). Stop tokens default to the model's EOS.</param>
    /// <param name="onToken">
    /// Greedy and sampling only: called after every step with (row, token) for each row that got a token, row =
    /// source index · NumReturnSequences + draw — the streaming hook. Not called for beam search.
    /// </param>
    /// <param name="ct">Stops generation early (reason Cancelled).</param>
    /// <returns>For each source its NumReturnSequences outputs.</returns>
    /// <exception cref="ArgumentException">An option is invalid, a source is empty or longer than the model's positions, or MaxNewTokens does not fit.</exception>
    public IReadOnlyList<IReadOnlyList<GeneratedSequence>> GenerateBatch(IReadOnlyList<IReadOnlyList<int>> sources, GenerationOptions options, Action<int, int>? onToken = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(sources);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Check(sources, options);
        var stopIds = options.StopTokenIds ?? [Model.SpecialTokens.EosTokenId];
        if (options.NumBeams > 1)
        {
            return [.. sources.Select(source => Beam(source, options, stopIds, ct))];
        }

        var rows = new List<IReadOnlyList<int>>();
        foreach (var source in sources)
        {
            for (int r = 0; r < options.NumReturnSequences; r++)
            {
                rows.Add(source);
            }
        }

        var flat = Greedy(rows, options, stopIds, onToken, ct);
        return [.. Enumerable.Range(0, sources.Count).Select(i => (IReadOnlyList<GeneratedSequence>)flat.GetRange(i * options.NumReturnSequences, options.NumReturnSequences))];
    }

    /// <summary>Greedy or sampled decoding of B rows at once.</summary>
    private List<GeneratedSequence> Greedy(List<IReadOnlyList<int>> sources, GenerationOptions options, IReadOnlyList<int> stopIds, Action<int, int>? onToken, CancellationToken ct)
    {
        var tokens = Model.SpecialTokens;
        int batch = sources.Count, vocab = Model.VocabSize;
        var (ids, mask) = Pad(sources, tokens.PadTokenId);
        var state = Model.Encode(ids, mask, batch, options.MaxNewTokens + 1);
        var sequences = Enumerable.Range(0, batch).Select(_ => new List<int> { tokens.DecoderStartTokenId }).ToArray();
        var reasons = new FinishReason?[batch];
        var stop = new HashSet<int>(stopIds);
        var step = new int[batch];
        var logits = new float[batch * vocab];
        var sampler = new TokenSampler(options.Seed);
        for (int generated = 0; generated < options.MaxNewTokens && reasons.Any(r => r is null); generated++)
        {
            if (ct.IsCancellationRequested)
            {
                break;
            }

            for (int b = 0; b < batch; b++)
            {
                step[b] = reasons[b] is null ? sequences[b][^1] : tokens.PadTokenId;
            }

            Model.DecodeLast(step, state, logits);
            for (int b = 0; b < batch; b++)
            {
                if (reasons[b] is not null)
                {
                    continue;
                }

                var row = logits.AsSpan(b * vocab, vocab);
                ProcessRow(row, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(sequences[b]), generated, options, stopIds, warp: true);
                int token = options.DoSample ? sampler.Sample(row) : TokenSampler.ArgMax(row);
                sequences[b].Add(token);
                onToken?.Invoke(b, token);
                if (stop.Contains(token))
                {
                    reasons[b] = FinishReason.StopToken;
                }
                else if (generated + 1 >= options.MaxNewTokens)
                {
                    reasons[b] = FinishReason.Length;
                }
            }
        }

        return [.. Enumerable.Range(0, batch).Select(b => new GeneratedSequence(sequences[b].Skip(1).ToList(), reasons[b] ?? FinishReason.Cancelled))];
    }

    /// <summary>Beam search for one source: NumBeams copies of it encoded as one batch, then the shared beam bookkeeping.</summary>
    private IReadOnlyList<GeneratedSequence> Beam(IReadOnlyList<int> source, GenerationOptions options, IReadOnlyList<int> stopIds, CancellationToken ct)
    {
        int beams = options.NumBeams;
        var ids = new int[beams * source.Count];
        for (int b = 0; b < beams; b++)
        {
            for (int t = 0; t < source.Count; t++)
            {
                ids[(b * source.Count) + t] = source[t];
            }
        }

        var state = Model.Encode(ids, default, beams, options.MaxNewTokens + 1);
        return BeamSearch.Search(
            Model.VocabSize,
            [Model.SpecialTokens.DecoderStartTokenId],
            options,
            stopIds,
            (_, last, logits) => Model.DecodeLast(last, state, logits),
            sources => state.Reorder(sources),
            (scores, sequence, generated) => ProcessRow(scores, sequence, generated, options, stopIds, warp: false),
            ct);
    }

    /// <summary>HF's processors for an encoder-decoder row: repetition penalty, no-repeat n-gram, bad words, min new tokens, forced BOS/EOS, then the warpers when sampling.</summary>
    private void ProcessRow(Span<float> row, ReadOnlySpan<int> sequence, int generated, GenerationOptions options, IReadOnlyList<int> stopIds, bool warp)
    {
        LogitsProcessors.RepetitionPenalty(row, sequence, options.RepetitionPenalty);
        LogitsProcessors.NoRepeatNgram(row, sequence, options.NoRepeatNgramSize);
        LogitsProcessors.BadWords(row, sequence, options.BadWordsIds, stopIds);
        LogitsProcessors.MinNewTokens(row, generated, options.MinNewTokens, stopIds);
        var tokens = Model.SpecialTokens;
        if (generated == 0 && tokens.ForcedBosTokenId is { } bos)
        {
            LogitsProcessors.ForceToken(row, bos);
        }

        if (generated == options.MaxNewTokens - 1 && tokens.ForcedEosTokenId is { } eos)
        {
            LogitsProcessors.ForceToken(row, eos);
        }

        if (warp && options.DoSample)
        {
            LogitsProcessors.Temperature(row, options.Temperature);
            LogitsProcessors.TopK(row, options.TopK);
            LogitsProcessors.TopP(row, options.TopP);
            LogitsProcessors.MinP(row, options.MinP);
        }
    }

    private void Check(IReadOnlyList<IReadOnlyList<int>> sources, GenerationOptions options)
    {
        if (sources.Count == 0)
        {
            throw new ArgumentException("Seq2SeqGenerator: no sources given; pass at least one.", nameof(sources));
        }

        for (int i = 0; i < sources.Count; i++)
        {
            if (sources[i] is null || sources[i].Count == 0)
            {
                throw new ArgumentException($"Seq2SeqGenerator: source {i} has no tokens; the encoder needs at least one (the EOS token for an empty text).", nameof(sources));
            }

            if (sources[i].Count > Model.MaxSourcePositions)
            {
                throw new ArgumentException($"Seq2SeqGenerator: source {i} has {sources[i].Count} tokens but the model takes at most {Model.MaxSourcePositions}; truncate it (the pipelines do so unless told not to).", nameof(sources));
            }
        }

        if (options.MaxNewTokens + 1 > Model.MaxTargetPositions)
        {
            throw new ArgumentException($"Seq2SeqGenerator: MaxNewTokens {options.MaxNewTokens} plus the decoder start token exceeds the model's {Model.MaxTargetPositions} target positions; set MaxNewTokens to at most {Model.MaxTargetPositions - 1}.", nameof(options));
        }
    }

    /// <summary>Right-pads the sources to the longest: ids [B, S] and the mask (1 = token, 0 = padding).</summary>
    private static (int[] Ids, float[] Mask) Pad(List<IReadOnlyList<int>> sources, int padId)
    {
        int length = sources.Max(s => s.Count);
        var ids = new int[sources.Count * length];
        var mask = new float[ids.Length];
        for (int b = 0; b < sources.Count; b++)
        {
            for (int t = 0; t < length; t++)
            {
                bool real = t < sources[b].Count;
                ids[(b * length) + t] = real ? sources[b][t] : padId;
                mask[(b * length) + t] = real ? 1f : 0f;
            }
        }

        return (ids, mask);
    }
}
