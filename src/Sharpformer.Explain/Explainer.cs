using System.Diagnostics;
using Sharpformer.Generation;
using Sharpformer.Models;
using Sharpformer.Tensors;
using Sharpformer.Text;

namespace Sharpformer.Explain;

/// <summary>
/// Computes what the explainer page shows for one text on one model: tokens, embeddings, positions, attention per
/// layer and head, hidden-state norms, the logit lens and the output. The numbers are the model's own (its
/// <see cref="IExplainableModel.Trace"/> and head); only their display is downsampled.
/// </summary>
public static class Explainer
{
    /// <summary>Tokenizes <paramref name="text"/>, runs the model once and gathers everything the page shows.</summary>
    /// <param name="model">The model.</param>
    /// <param name="tokenizer">Its tokenizer.</param>
    /// <param name="text">The input text.</param>
    /// <param name="options">What to compute; null for the defaults.</param>
    /// <param name="modelName">How the page names the model (a folder or repository id).</param>
    /// <returns>The report.</returns>
    /// <exception cref="ArgumentException">The text encodes to no token or to more than the model's positions, or an option is out of range.</exception>
    public static ExplainReport Run(IExplainableModel model, TextTokenizer tokenizer, string text, ExplainOptions? options = null, string modelName = "")
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(text);
        options ??= new ExplainOptions();
        options.Validate();

        var encoding = tokenizer.Encode(text);
        if (encoding.Count == 0)
        {
            throw new ArgumentException("the text encodes to no token; give it some text.", nameof(text));
        }

        if (encoding.Count > model.MaxPositions)
        {
            throw new ArgumentException(
                $"the text is {encoding.Count} tokens long but the model takes at most {model.MaxPositions} (max_position_embeddings); shorten it.", nameof(text));
        }

        var ids = encoding.Ids.ToArray();
        int t = ids.Length, c = model.HiddenSize;
        var tokens = Tokens(encoding, text);

        var embeddings = model.TokenEmbeddings(ids);
        var embeddingDisplay = DisplayMatrices.Create(embeddings.AsReadOnlySpan<float>(), t, c, options.MaxCells, options.MaxColumns);
        var positions = Positions(model, t, options);

        var trace = model.Trace(ids);
        if (trace.HiddenStates.Count != model.NumLayers + 1 || trace.Attentions.Count != model.NumLayers)
        {
            throw new InvalidOperationException(
                $"explain: {model.ModelType} returned {trace.HiddenStates.Count} hidden states and {trace.Attentions.Count} attention tensors; its IExplainableModel must return L + 1 = {model.NumLayers + 1} and L = {model.NumLayers}.");
        }

        var attention = trace.Attentions.Select(a => Attention(a, model.NumHeads, t, options)).ToList();
        var norms = trace.HiddenStates.Select(h => RowNorms(h, t, c)).ToList();

        int? maskId = tokenizer.SpecialTokens.Mask is { } maskToken ? tokenizer.TokenToId(maskToken) : null;
        var maskPositions = new List<int>();
        for (int i = 0; i < t; i++)
        {
            if (maskId is int m && ids[i] == m) maskPositions.Add(i);
        }

        var lensPositions = LensPositions(t, maskPositions, options.LensMaxPositions);
        var lens = new List<IReadOnlyList<IReadOnlyList<ExplainCandidate>>>();
        float[]? lastLayerLogits = null;
        for (int layer = 0; layer <= model.NumLayers; layer++)
        {
            var rows = GatherRows(trace.HiddenStates[layer], lensPositions, c);
            var logits = model.LogitLens(layer, rows).Contiguous().ToArray<float>();
            int v = logits.Length / lensPositions.Length;
            var perPosition = new List<IReadOnlyList<ExplainCandidate>>();
            for (int r = 0; r < lensPositions.Length; r++)
            {
                perPosition.Add(Top(Softmax(logits.AsSpan(r * v, v)), options.LensTopK, tokenizer));
            }

            lens.Add(perPosition);
            if (layer == model.NumLayers) lastLayerLogits = logits;
        }

        Debug.Assert(lastLayerLogits is not null);
        var output = Output(model, tokenizer, ids, lensPositions, lastLayerLogits, maskPositions, options);
        var info = new ExplainModelInfo(modelName, model.ModelType, model.NumLayers, model.NumHeads, c, model.VocabSize, model.IsCausal,
            KindName(model.PositionEncoding), OutputName(model.OutputKind));
        string lensHead = model.OutputKind switch
        {
            ExplainOutputKind.MaskedLanguageModel => "mlm-head",
            ExplainOutputKind.CausalLanguageModel => "final-norm+lm-head",
            _ => "word-embeddings",
        };
        return new ExplainReport(text, info, tokens, embeddingDisplay, positions, attention, norms, new ExplainLens(lensPositions, lens, lensHead), output);
    }

    /// <summary>The tokens with their text, offsets, and whether each continues the previous token's word.</summary>
    internal static List<ExplainToken> Tokens(TokenEncoding encoding, string text)
    {
        var tokens = new List<ExplainToken>(encoding.Count);
        for (int i = 0; i < encoding.Count; i++)
        {
            bool special = encoding.SpecialTokensMask.Count > i && encoding.SpecialTokensMask[i] == 1;
            var span = encoding.Offsets[i];
            int start = Math.Clamp(span.Start, 0, text.Length), end = Math.Clamp(span.End, start, text.Length);
            string piece = special || end == start ? encoding.Tokens[i] : text[start..end];

            // A sub-word continues a word: it starts where the previous token ended, and the characters on both sides
            // of the seam are letters or digits (so "organ" + "." is not one, "play" + "ing" is).
            bool subword = false;
            if (!special && i > 0 && start > 0 && start < text.Length && !(encoding.SpecialTokensMask.Count > i - 1 && encoding.SpecialTokensMask[i - 1] == 1))
            {
                var previous = encoding.Offsets[i - 1];
                subword = previous.End == start && char.IsLetterOrDigit(text[start - 1]) && char.IsLetterOrDigit(text[start]);
            }

            tokens.Add(new ExplainToken(i, encoding.Ids[i], encoding.Tokens[i], piece, special ? 0 : start, special ? 0 : end, special, subword));
        }

        return tokens;
    }

    private static ExplainPositions Positions(IExplainableModel model, int t, ExplainOptions options)
    {
        var table = model.PositionTable(t);
        int width = table.Shape[1];
        var values = table.Contiguous().ToArray<float>();
        if (model.PositionEncoding == PositionEncodingKind.Rotary)
        {
            var (cos, sin, relative) = PositionPictures.Rotary(values, t, width);
            return new ExplainPositions("rotary",
                DisplayMatrices.Create(cos, t, width, options.MaxCells, options.MaxColumns),
                DisplayMatrices.Create(sin, t, width, options.MaxCells, options.MaxColumns),
                relative);
        }

        return new ExplainPositions(KindName(model.PositionEncoding),
            DisplayMatrices.Create(values, t, width, options.MaxCells, options.MaxColumns), null,
            PositionPictures.SimilarityToFirst(values, t, width));
    }

    /// <summary>[H, T, T] → one display matrix per head and one for their exact average.</summary>
    private static ExplainLayerAttention Attention(Tensor weights, int heads, int t, ExplainOptions options)
    {
        if (weights.Rank != 3 || weights.Shape[0] != heads || weights.Shape[1] != t || weights.Shape[2] != t)
        {
            throw new InvalidOperationException($"explain: an attention tensor is {weights.Shape}; the trace must give [H={heads}, T={t}, T={t}].");
        }

        var values = weights.Contiguous().ToArray<float>();
        int size = t * t;
        var perHead = new List<DisplayMatrix>(heads);
        var average = new float[size];
        for (int h = 0; h < heads; h++)
        {
            var head = values.AsSpan(h * size, size);
            perHead.Add(DisplayMatrices.Create(head, t, t, options.MaxCells, options.MaxCells));
            for (int i = 0; i < size; i++) average[i] += head[i];
        }

        for (int i = 0; i < size; i++) average[i] /= heads;
        return new ExplainLayerAttention(perHead, DisplayMatrices.Create(average, t, t, options.MaxCells, options.MaxCells));
    }

    private static float[] RowNorms(Tensor hidden, int t, int c)
    {
        var values = hidden.Contiguous().AsReadOnlySpan<float>();
        var norms = new float[t];
        for (int i = 0; i < t; i++)
        {
            double sum = 0;
            foreach (float v in values.Slice(i * c, c)) sum += (double)v * v;
            norms[i] = (float)Math.Sqrt(sum);
        }

        return norms;
    }

    /// <summary>Every position when T ≤ max; else max evenly spaced ones, plus the [MASK] positions and the last token.</summary>
    internal static int[] LensPositions(int t, IReadOnlyList<int> masks, int max)
    {
        if (t <= max) return Enumerable.Range(0, t).ToArray();
        var chosen = new SortedSet<int>(masks) { t - 1 };
        int evenly = Math.Max(1, max - chosen.Count);
        for (int i = 0; i < evenly; i++)
        {
            chosen.Add((int)((long)i * t / evenly));
        }

        return chosen.ToArray();
    }

    private static Tensor GatherRows(Tensor hidden, int[] positions, int c)
    {
        var source = hidden.Contiguous().AsReadOnlySpan<float>();
        var rows = new float[positions.Length * c];
        for (int r = 0; r < positions.Length; r++)
        {
            source.Slice(positions[r] * c, c).CopyTo(rows.AsSpan(r * c, c));
        }

        return Tensor.FromArray(rows, new Shape(positions.Length, c));
    }

    private static ExplainOutput Output(IExplainableModel model, TextTokenizer tokenizer, int[] ids, int[] lensPositions, float[] lastLogits,
        List<int> maskPositions, ExplainOptions options)
    {
        int v = lastLogits.Length / lensPositions.Length;
        string kind = OutputName(model.OutputKind);
        if (model.OutputKind == ExplainOutputKind.CausalLanguageModel)
        {
            // The last token is always among the lens positions, and it is the last one of them.
            var scores = lastLogits.AsSpan((lensPositions.Length - 1) * v, v).ToArray();
            var raw = Top(Softmax(scores), options.TopK, tokenizer);
            var generation = new GenerationOptions { DoSample = true, Temperature = options.Temperature, TopK = options.SamplingTopK, TopP = options.TopP };
            LogitsProcessors.Apply(scores, ids, generation);
            var processed = Softmax(scores);
            int kept = processed.Count(p => p > 0f);
            var top = Top(processed, options.TopK, tokenizer).Where(candidate => candidate.Probability > 0f).ToList();
            return new ExplainOutput(kind, [], new ExplainNextToken(raw, top, options.Temperature, options.SamplingTopK, options.TopP, kept));
        }

        var masks = new List<ExplainMaskPrediction>();
        foreach (int position in maskPositions)
        {
            int row = Array.IndexOf(lensPositions, position);
            masks.Add(new ExplainMaskPrediction(position, Top(Softmax(lastLogits.AsSpan(row * v, v)), options.TopK, tokenizer)));
        }

        return new ExplainOutput(kind, masks, null);
    }

    /// <summary>[V] → softmax in double, −∞ giving 0.</summary>
    internal static float[] Softmax(ReadOnlySpan<float> scores)
    {
        float max = float.NegativeInfinity;
        foreach (float s in scores) max = Math.Max(max, s);
        var probs = new float[scores.Length];
        double sum = 0;
        var exps = new double[scores.Length];
        for (int i = 0; i < scores.Length; i++)
        {
            exps[i] = float.IsNegativeInfinity(scores[i]) ? 0 : Math.Exp(scores[i] - max);
            sum += exps[i];
        }

        for (int i = 0; i < probs.Length; i++) probs[i] = (float)(exps[i] / sum);
        return probs;
    }

    /// <summary>The k most probable ids, best first (ties: lower id first).</summary>
    internal static List<ExplainCandidate> Top(float[] probs, int k, TextTokenizer tokenizer)
    {
        var best = new List<int>(k + 1);
        for (int i = 0; i < probs.Length; i++)
        {
            if (best.Count == k && probs[i] <= probs[best[^1]]) continue;
            int at = best.Count;
            while (at > 0 && probs[best[at - 1]] < probs[i]) at--;
            best.Insert(at, i);
            if (best.Count > k) best.RemoveAt(k);
        }

        return best.Select(id => new ExplainCandidate(id, TokenText(tokenizer, id), probs[id])).ToList();
    }

    /// <summary>The decoded text of one id; ids the tokenizer does not know (a model's padded vocabulary rows) read "&lt;id N&gt;".</summary>
    private static string TokenText(TextTokenizer tokenizer, int id)
    {
        if (tokenizer.IdToToken(id) is null) return string.Create(System.Globalization.CultureInfo.InvariantCulture, $"<id {id}>");
        return tokenizer.Decode([id], skipSpecialTokens: false);
    }

    private static string KindName(PositionEncodingKind kind) => kind switch
    {
        PositionEncodingKind.Sinusoidal => "sinusoidal",
        PositionEncodingKind.Rotary => "rotary",
        _ => "learned",
    };

    private static string OutputName(ExplainOutputKind kind) => kind switch
    {
        ExplainOutputKind.MaskedLanguageModel => "masked-lm",
        ExplainOutputKind.CausalLanguageModel => "causal-lm",
        _ => "embedding-projection",
    };
}
