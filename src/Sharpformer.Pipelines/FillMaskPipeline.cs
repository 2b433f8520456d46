using Sharpformer.Models;
using Sharpformer.Tensors;
using Sharpformer.Text;

namespace Sharpformer.Pipelines;

/// <summary>One candidate for a [MASK], shaped like an entry of HF's fill-mask pipeline output.</summary>
/// <param name="Score">The softmax probability of the token at the mask (over the whole vocabulary, also with targets).</param>
/// <param name="Token">The token id.</param>
/// <param name="TokenStr">The token decoded on its own (HF's <c>token_str</c>).</param>
/// <param name="Sequence">The input with this token in place of the mask, decoded as HF does (<c>sequence</c>).</param>
public sealed record FillMaskResult(float Score, int Token, string TokenStr, string Sequence);

/// <summary>
/// HF's <c>pipeline("fill-mask")</c>: predicts the tokens behind each mask token of the input with a masked-LM model.
/// </summary>
/// <example>
/// <code>
/// var fill = await FillMaskPipeline.FromPretrainedAsync("bert-base-uncased");
/// foreach (var p in fill.Run("The heart is a [MASK] organ.")[0])
///     Console.WriteLine($"{p.TokenStr,-12} {p.Score:F4}");
/// </code>
/// </example>
public sealed class FillMaskPipeline
{
    private readonly PipelineOptions _options;

    /// <summary>Builds the pipeline over a loaded tokenizer and masked-LM model.</summary>
    /// <exception cref="NotSupportedException">The tokenizer has no mask token.</exception>
    public FillMaskPipeline(TextTokenizer tokenizer, IMaskedLanguageModel model, PipelineOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(model);
        if (tokenizer.SpecialTokens.Mask is not { } mask || tokenizer.TokenToId(mask) is not { } maskId)
        {
            throw new NotSupportedException("fill-mask needs a tokenizer with a mask token (e.g. [MASK]); this tokenizer defines none.");
        }

        Tokenizer = tokenizer;
        Model = model;
        MaskToken = mask;
        MaskTokenId = maskId;
        _options = options ?? new PipelineOptions();
    }

    /// <summary>The tokenizer.</summary>
    public TextTokenizer Tokenizer { get; }

    /// <summary>The masked-LM model.</summary>
    public IMaskedLanguageModel Model { get; }

    /// <summary>The mask token the input must contain (e.g. <c>[MASK]</c>).</summary>
    public string MaskToken { get; }

    /// <summary>The mask token's id.</summary>
    public int MaskTokenId { get; }

    /// <summary>
    /// Loads a model from a local folder or the Hub ("org/name", through the HF cache; HF_ENDPOINT and HF_HUB_OFFLINE
    /// are honoured) and builds the pipeline.
    /// </summary>
    /// <exception cref="ModelUnavailableException">Not a local folder, not cached, and the Hub cannot be reached (or offline mode is on).</exception>
    /// <exception cref="NotSupportedException">The model type is not supported, or it has no MLM head.</exception>
    public static async Task<FillMaskPipeline> FromPretrainedAsync(string modelIdOrFolder, PipelineOptions? options = null, CancellationToken ct = default)
    {
        var (tokenizer, model) = await ModelLoader.LoadMaskedLmAsync(modelIdOrFolder, options, ct).ConfigureAwait(false);
        return new FillMaskPipeline(tokenizer, model, options);
    }

    /// <summary>
    /// Fills every mask of <paramref name="text"/>: one list of the <paramref name="topK"/> best candidates per mask, in
    /// input order (HF returns a flat list for one mask and a list of lists for several; here it is always a list of lists).
    /// </summary>
    /// <param name="text">The input, holding at least one <see cref="MaskToken"/>.</param>
    /// <param name="topK">How many candidates per mask (HF's default 5); capped at the vocabulary or target count.</param>
    /// <param name="targets">Only score these words: each one's vocabulary id, else its first subword (with a warning).</param>
    /// <exception cref="ArgumentException">No mask in the input, topK below 1, no usable target, or the input is too long.</exception>
    public IReadOnlyList<IReadOnlyList<FillMaskResult>> Run(string text, int topK = 5, IReadOnlyList<string>? targets = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (topK < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(topK), topK, "fill-mask: top_k must be at least 1.");
        }

        var targetIds = targets is null ? null : ResolveTargets(targets);
        var encoding = ModelLoader.EncodeChecked(Tokenizer, Model, text, _options);
        return RunIds(encoding.Ids.ToArray(), encoding.TypeIds.ToArray(), topK, targetIds, text);
    }

    /// <summary>The part of <see cref="Run"/> after tokenization: [T] ids and token types of one unpadded input.</summary>
    internal IReadOnlyList<IReadOnlyList<FillMaskResult>> RunIds(int[] ids, int[] typeIds, int topK, int[]? targetIds, string text)
    {
        var positions = new List<int>();
        for (var t = 0; t < ids.Length; t++)
        {
            if (ids[t] == MaskTokenId)
            {
                positions.Add(t);
            }
        }

        if (positions.Count == 0)
        {
            throw new ArgumentException($"fill-mask: no mask token {MaskToken} found in the input \"{text}\"; put {MaskToken} where the word to predict goes.", nameof(text));
        }

        // [1, T] → hidden [1, T, C]; only the masked rows go through the MLM head ([P, C] → [P, V]).
        var mask = new int[ids.Length];
        Array.Fill(mask, 1);
        var shape = new Shape(1, ids.Length);
        var hidden = Model.Encode(Tensor.FromArray(ids, shape), Tensor.FromArray(mask, shape), Tensor.FromArray(typeIds, shape)).Contiguous().AsReadOnlySpan<float>();
        int c = Model.HiddenSize;
        var masked = Tensor.Empty(new Shape(positions.Count, c));
        var rows = masked.AsSpan<float>();
        for (var i = 0; i < positions.Count; i++)
        {
            hidden.Slice(positions[i] * c, c).CopyTo(rows.Slice(i * c, c));
        }

        var logits = Model.PredictLogits(masked).Contiguous();
        return FillMaskScoring.Score(Tokenizer, ids, positions, logits.AsReadOnlySpan<float>(), Model.VocabSize, topK, targetIds);
    }

    /// <summary>HF's <c>get_target_ids</c>: a word in the vocabulary is used as is, else its first subword token.</summary>
    private int[] ResolveTargets(IReadOnlyList<string> targets)
    {
        var ids = new List<int>();
        foreach (var target in targets)
        {
            ArgumentNullException.ThrowIfNull(target, nameof(targets));
            if (Tokenizer.TokenToId(target) is { } id)
            {
                ids.Add(id);
                continue;
            }

            var pieces = Tokenizer.Encode(target, options: new EncodeOptions { AddSpecialTokens = false });
            if (pieces.Count == 0)
            {
                _options.Warning?.Invoke($"The specified target token `{target}` does not exist in the model vocabulary. We cannot replace it with anything meaningful, ignoring it");
                continue;
            }

            _options.Warning?.Invoke($"The specified target token `{target}` does not exist in the model vocabulary. Replacing with `{pieces.Tokens[0]}`.");
            ids.Add(pieces.Ids[0]);
        }

        if (ids.Count == 0)
        {
            throw new ArgumentException("fill-mask: none of the targets maps to a token; pass at least one word the tokenizer knows.", nameof(targets));
        }

        return ids.Distinct().ToArray();
    }
}

/// <summary>HF's fill-mask post-processing over [P, V] logits at the mask positions.</summary>
internal static class FillMaskScoring
{
    /// <summary>
    /// Softmax over the vocabulary per mask, optionally restricted to <paramref name="targetIds"/>, top-k by score (ties:
    /// lower id first), and each candidate's HF <c>sequence</c>: the ids with the candidate in place of this mask and
    /// padding removed, decoded skipping special tokens only when there is a single mask (so the other masks show).
    /// </summary>
    public static IReadOnlyList<IReadOnlyList<FillMaskResult>> Score(
        TextTokenizer tokenizer, int[] ids, IReadOnlyList<int> positions, ReadOnlySpan<float> logits, int vocab, int topK, int[]? targetIds)
    {
        System.Diagnostics.Debug.Assert(logits.Length == positions.Count * vocab);
        var singleMask = positions.Count == 1;
        var padId = tokenizer.PadTokenId;
        var candidates = targetIds ?? Enumerable.Range(0, vocab).ToArray();
        var k = Math.Min(topK, candidates.Length);
        var results = new List<IReadOnlyList<FillMaskResult>>(positions.Count);
        var probabilities = new float[vocab];
        for (var p = 0; p < positions.Count; p++)
        {
            Softmax(logits.Slice(p * vocab, vocab), probabilities);
            var best = candidates
                .OrderByDescending(id => probabilities[id])
                .ThenBy(id => id)
                .Take(k);
            var row = new List<FillMaskResult>(k);
            foreach (var id in best)
            {
                var tokens = (int[])ids.Clone();
                tokens[positions[p]] = id;
                var kept = padId is { } pad ? tokens.Where(t => t != pad) : tokens;
                var sequence = tokenizer.Decode(kept, skipSpecialTokens: singleMask);
                row.Add(new FillMaskResult(probabilities[id], id, tokenizer.Decode([id], skipSpecialTokens: false), sequence));
            }

            results.Add(row);
        }

        return results;
    }

    // Subtracting the max keeps exp finite for large logits; the sum is in double so 30k small terms do not lose mass.
    private static void Softmax(ReadOnlySpan<float> logits, Span<float> probabilities)
    {
        var max = System.Numerics.Tensors.TensorPrimitives.Max(logits);
        double sum = 0;
        for (var i = 0; i < logits.Length; i++)
        {
            probabilities[i] = MathF.Exp(logits[i] - max);
            sum += probabilities[i];
        }

        var inv = (float)(1 / sum);
        for (var i = 0; i < logits.Length; i++)
        {
            probabilities[i] *= inv;
        }
    }
}
